"""What the Usage page shows, as a value that round-trips through the address's query string.

``?range=7d&buckets=hour&stack=model&metric=output_tokens&model=atlas-large&model=atlas-mini``
restores the same view for whoever opens the link (for their own account: the account
in the link is checked against the viewer by the router). Values that do not parse fall
back to the defaults, never to an error page.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from core.text import is_clean_text
from core.usage import RANGE_PRESETS
from core.usage.ranges import MAX_RANGE_DAYS, DateRange
from core.usage.views import FILTER_DIMENSIONS, GROUP_BY, MAX_FILTER_VALUES

GRANULARITIES = {"day": "By day", "hour": "By hour"}
DEFAULT_PRESET = "30d"
SPEND = "spend"
# The query-string keys the Usage page owns (the router owns "account").
PARAMS = ("range", "from", "to", "buckets", "stack", "metric", *FILTER_DIMENSIONS)
# The detail table's first columns, in pixels: the time, the group and the money fit a phone
# (390 px) side by side, whatever the names in the data (the first two are pinned as well).
PERIOD_WIDTH = {"Day": 100, "Hour": 130}
GROUP_WIDTH = 130
SPEND_WIDTH = 100
MAX_FILE_NAME = 150  # characters of a download's name, ".csv" included
_UNSAFE = re.compile(r"[^a-z0-9_]+")
_METER_NAME = re.compile(r"^[a-z0-9_.:-]{1,64}$")
MAX_VALUE_LENGTH = 128


@dataclass(frozen=True)
class UsageView:
    preset: str = DEFAULT_PRESET
    custom: tuple[date, date] | None = None  # only for preset "custom"
    buckets: str = "day"
    stack: str = "meter"
    metric: str = SPEND  # "spend" or a meter's name
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def active_filters(self) -> dict[str, tuple[str, ...]]:
        return {dimension: values for dimension, values in self.filters.items() if values}

    def without_filters(self) -> UsageView:
        return replace(self, filters={})

    def to_params(self) -> dict[str, str | list[str]]:
        """The query string for this view; defaults are left out, so a plain link stays plain."""
        params: dict[str, str | list[str]] = {}
        if self.preset != DEFAULT_PRESET:
            params["range"] = self.preset
        if self.preset == "custom" and self.custom is not None:
            params["from"], params["to"] = self.custom[0].isoformat(), self.custom[1].isoformat()
        if self.buckets != "day":
            params["buckets"] = self.buckets
        if self.stack != "meter":
            params["stack"] = self.stack
        if self.metric != SPEND:
            params["metric"] = self.metric
        for dimension, values in self.active_filters().items():
            params[dimension] = list(values)
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> UsageView:
        """The view a query string describes; anything unknown or malformed is the default."""

        def first(key: str) -> str:
            values = params.get(key) or ()
            return str(values[0]) if values else ""

        preset = first("range") if first("range") in RANGE_PRESETS else DEFAULT_PRESET
        custom = None
        if preset == "custom":
            custom = _dates(first("from"), first("to"))
            if custom is None:
                preset = DEFAULT_PRESET
        metric = first("metric")
        filters = {
            dimension: tuple(
                dict.fromkeys(
                    str(v)[:MAX_VALUE_LENGTH]
                    for v in (params.get(dimension) or ())
                    if str(v) and is_clean_text(str(v))  # no stored value holds a NUL or a lone surrogate
                )
            )[:MAX_FILTER_VALUES]
            for dimension in FILTER_DIMENSIONS
        }
        return cls(
            preset=preset,
            custom=custom,
            buckets=first("buckets") if first("buckets") in GRANULARITIES else "day",
            stack=first("stack") if first("stack") in GROUP_BY else "meter",
            metric=metric if metric == SPEND or _METER_NAME.match(metric) else SPEND,
            filters={dimension: values for dimension, values in filters.items() if values},
        )


def _dates(start: str, end: str) -> tuple[date, date] | None:
    """Two ISO dates in order and at most ``MAX_RANGE_DAYS`` apart, or None."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        return None
    if first > last:
        first, last = last, first
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        return None
    return first, last


def has_usage_params(params: Mapping[str, Sequence[str]]) -> bool:
    return any(key in params for key in PARAMS)


def _slug(text: str) -> str:
    """Lower-case letters, digits and "_" kept; every other run of characters is one "-"."""
    return _UNSAFE.sub("-", text.lower()).strip("-") or "x"


def export_file_name(account_name: str, dates: DateRange, view: UsageView) -> str:
    """A download's name that says what it holds, safe on every file system:
    ``usage_acme-robotics_2026-11-08_2026-12-07_by-day_model-atlas-large+atlas-mini.csv``.

    Names the account, the range, the buckets, the one meter shown (if one is) and each filter.
    Longer than ``MAX_FILE_NAME``: the filters' part is cut and a short hash of the whole
    view keeps two different views from sharing a name.
    """
    parts = [
        f"usage_{_slug(account_name)}",
        dates.start.isoformat(),
        dates.end.isoformat(),
        f"by-{view.buckets}",
    ]
    extra = []
    if view.metric != SPEND:
        extra.append(f"meter-{_slug(view.metric)}")
    for dimension, values in sorted(view.active_filters().items()):
        extra.append(f"{dimension}-" + "+".join(_slug(value) for value in values))
    name = "_".join(parts + extra)
    if len(name) + len(".csv") > MAX_FILE_NAME:
        digest = hashlib.sha256(repr((name, sorted(view.active_filters().items()))).encode()).hexdigest()[:8]
        name = f"{name[: MAX_FILE_NAME - len('.csv') - len(digest) - 1]}-{digest}"
    return f"{name}.csv"
