"""Charts of the portal: one stable colour per meter, model, project and API key, bars on
their dates, and balance lines over the whole range.

Colours: a palette without red (red is kept for alarms, such as a negative balance), and
each value's colour chosen from its name by a fixed hash, so "atlas-large" has the same
colour for every account and on every page. Two values of one chart whose hashes meet
take the next free colour, the first by name keeping its own. "Other" and "(none)" are
greys.

Bars: the x axis is a band scale with one slot per day (or per block of hours) of the
whole range, so quiet days read as zero, each bar sits on its own label, and no tick
falls between slots. Vega-Lite receives only the slots' keys and our own labels: no
browser time zone is involved anywhere.

Float only as bar height and line position (chart geometry); every number a person reads
in a tooltip is exact text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import altair as alt
import pandas as pd

from core.display import format_credits, format_date, format_day_short, format_wall_time
from core.money import NANOS_PER_CREDIT
from core.usage import DateRange
from core.usage.exports import format_quantity, plural
from core.usage.views import NO_VALUE

# Ten well-separated colours, none of them red: Tableau's categorical set without its red,
# with olive and navy.
PALETTE = (
    "#4e79a7",  # blue
    "#f28e2b",  # orange
    "#59a14f",  # green
    "#b07aa1",  # purple
    "#76b7b2",  # teal
    "#edc948",  # yellow
    "#9c755f",  # brown
    "#ff9da7",  # pink
    "#b6992d",  # olive
    "#2f4b7c",  # navy
)
OTHER_COLOR = "#8d939b"
NONE_COLOR = "#c5c9cf"
OTHER_PREFIX = "Other"
ALARM_COLOR = "#d62728"  # below zero: the one red of the portal's charts
CHART_HEIGHT = 320
MIN_SLOTS = 7  # fewer slots than this: bars keep the width they would have among seven
MAX_SLOTS = 240  # more hourly slots than this: hours are added up into blocks
BLOCK_HOURS = (1, 2, 3, 6, 12, 24)


# Part of every hashed name: chosen so that the demo catalog's meters, models, and each demo
# account's projects and API keys, land on distinct colours (tests/app/test_charts.py keeps it so).
HASH_SALT = "4757"


def _hashed_index(kind: str, value: str) -> int:
    digest = hashlib.blake2b(f"{HASH_SALT}{kind}\x1f{value}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % len(PALETTE)


def colors_for(kind: str, values: Iterable[str]) -> dict[str, str]:
    """A colour for each value: its own by hash, the same on every page and for every account."""
    colors: dict[str, str] = {}
    taken: set[int] = set()
    for value in sorted(set(values)):
        if value.startswith(OTHER_PREFIX):
            colors[value] = OTHER_COLOR
            continue
        if value == NO_VALUE:
            colors[value] = NONE_COLOR
            continue
        index = _hashed_index(kind, value)
        while index in taken and len(taken) < len(PALETTE):
            index = (index + 1) % len(PALETTE)
        taken.add(index)
        colors[value] = PALETTE[index]
    return colors


def _label(day: date, *, with_year: bool = False) -> str:
    return format_date(day) if with_year else format_day_short(day)


def _label_expr(ticks: Sequence[str], labels: Sequence[str]) -> str:
    """A Vega expression that shows our label for each tick value (no date parsing in the browser)."""
    return f"{json.dumps(list(labels))}[indexof({json.dumps(list(ticks))}, datum.value)]"


def block_hours(days: int) -> int:
    """Hours per bar for an hourly chart of ``days`` days: 1 up to 10 days, more beyond."""
    return next((hours for hours in BLOCK_HOURS if days * 24 / hours <= MAX_SLOTS), 24)


@dataclass(frozen=True)
class Slots:
    """The x axis of a bar chart: every slot of the range, the ticks and their labels."""

    keys: list[str]
    ticks: list[str]
    labels: list[str]
    title: str
    hours: int  # 0 for days

    def key(self, bucket: datetime) -> str:
        if not self.hours:
            return bucket.strftime("%Y-%m-%d")
        return f"{bucket:%Y-%m-%d}T{bucket.hour - bucket.hour % self.hours:02d}"


def _day_ticks(days: list[date]) -> list[date]:
    """Days to label: every day for two weeks, Mondays up to three months, then the 1st of each month."""
    if len(days) <= 14:
        return days
    if len(days) <= 92:
        return [day for day in days if day.weekday() == 0]
    return [day for day in days if day.day == 1]


def slots_for(dates: DateRange, granularity: str) -> Slots:
    days = [dates.start + timedelta(days=offset) for offset in range(dates.days)]
    multi_year = dates.start.year != dates.end.year
    if granularity == "day":
        ticks = _day_ticks(days)
        return Slots(
            keys=[day.isoformat() for day in days],
            ticks=[day.isoformat() for day in ticks],
            labels=[_label(day, with_year=multi_year and i == 0) for i, day in enumerate(ticks)],
            title=f"Day ({dates.timezone})",
            hours=0,
        )
    hours = block_hours(dates.days)
    keys = [f"{day.isoformat()}T{hour:02d}" for day in days for hour in range(0, 24, hours)]
    if dates.days == 1:
        step = max(3, hours)
        ticks = [f"{days[0].isoformat()}T{hour:02d}" for hour in range(0, 24, step)]
        labels = [f"{hour:02d}:00" for hour in range(0, 24, step)]
    else:
        tick_days = _day_ticks(days)
        ticks = [f"{day.isoformat()}T00" for day in tick_days]
        labels = [_label(day, with_year=multi_year and i == 0) for i, day in enumerate(tick_days)]
    unit = "Hour" if hours == 1 else f"{hours}-hour blocks"
    return Slots(keys=keys, ticks=ticks, labels=labels, title=f"{unit} ({dates.timezone})", hours=hours)


@dataclass(frozen=True)
class Metric:
    """What the bars measure: spend (all meters) or one meter's quantity in its unit."""

    key: str  # "spend" or a meter's name
    label: str  # "Spend (credits)", "Input tokens (tokens)"
    unit: str = ""  # the meter's unit, singular; "" for spend

    @property
    def is_spend(self) -> bool:
        return self.key == "spend"


SPEND = Metric("spend", "Spend (credits)")


def usage_chart(
    frame: pd.DataFrame,
    *,
    dates: DateRange,
    granularity: str,
    group_kind: str,
    group_label: str,
    metric: Metric,
) -> alt.Chart:
    """Stacked bars per slot and group, exact tooltips, one colour per group value."""
    slots = slots_for(dates, granularity)
    bars: dict[tuple[str, str], list] = {}
    starts: dict[str, datetime] = {}
    for bucket, group, unit, quantity, amount_nanos, events in frame[
        ["bucket", "group", "unit", "quantity", "amount_nanos", "events"]
    ].itertuples(index=False, name=None):
        key = slots.key(bucket)
        starts.setdefault(key, bucket)
        bar = bars.get((key, group))
        if bar is None:
            bar = bars[(key, group)] = [0, 0, 0, {}]
        bar[0] += int(amount_nanos)
        bar[1] += int(quantity)
        bar[2] += int(events)
        if quantity:
            bar[3][unit] = bar[3].get(unit, 0) + int(quantity)
    totals: dict[str, int] = {}
    for (_, group), (amount_nanos, quantity, _events, _units) in bars.items():
        totals[group] = totals.get(group, 0) + (amount_nanos if metric.is_spend else quantity)
    # Largest first (at the bottom of each stack and first in the legend), "Other" last.
    ranked = sorted(totals, key=lambda g: (g.startswith(OTHER_PREFIX), -totals[g], g))
    order = {group: index for index, group in enumerate(ranked)}
    rows = []
    for (key, group), (amount_nanos, quantity, events, quantities) in sorted(bars.items()):
        start = starts[key]
        if slots.hours > 1:
            block_start = start.replace(hour=start.hour - start.hour % slots.hours)
            end = block_start + timedelta(hours=slots.hours)
            when = f"{format_wall_time(block_start)}–{end:%H:%M}"
        elif slots.hours == 1:
            when = f"{format_wall_time(start)}–{start + timedelta(hours=1):%H:%M}"
        else:
            when = format_date(start.date())
        rows.append(
            {
                "slot": key,
                "group": group,
                "rank": order[group],
                "height": amount_nanos / NANOS_PER_CREDIT if metric.is_spend else float(quantity),
                "when": when,
                "spend": format_credits(amount_nanos),
                "usage": format_quantity(quantity, metric.unit)
                if not metric.is_spend
                else ", ".join(format_quantity(q, u) for u, q in sorted(quantities.items())),
                "events": f"{events:,}",
            }
        )
    colors = colors_for(group_kind, ranked)
    # Fewer slots than a week ("Today" by day): a bar as wide as among seven, not the whole chart.
    narrow = (
        {"width": alt.RelativeBandSize(0.8 * len(slots.keys) / MIN_SLOTS)}
        if len(slots.keys) < MIN_SLOTS
        else {}
    )
    tooltip = [
        alt.Tooltip("when:N", title="When"),
        alt.Tooltip("group:N", title=group_label),
        alt.Tooltip("usage:N", title="Usage"),
        alt.Tooltip("spend:N", title="Spend"),
        alt.Tooltip("events:N", title="Events"),
    ]
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar(**narrow)
        .encode(
            x=alt.X(
                "slot:O",
                title=slots.title,
                scale=alt.Scale(domain=slots.keys, paddingInner=0.2 if len(slots.keys) <= 62 else 0.05),
                axis=alt.Axis(
                    values=slots.ticks,
                    labelExpr=_label_expr(slots.ticks, slots.labels),
                    labelAngle=0,
                    labelOverlap="greedy",
                    ticks=True,
                    grid=False,
                ),
            ),
            y=alt.Y(
                "height:Q",
                stack="zero",
                title=metric.label,
                axis=alt.Axis(format=",.2~f" if metric.is_spend else "~s"),
            ),
            color=alt.Color(
                "group:N",
                title=group_label,
                scale=alt.Scale(domain=ranked, range=[colors[g] for g in ranked]),
                legend=alt.Legend(
                    orient="bottom", direction="horizontal", columns=legend_columns(ranked), labelLimit=150
                ),
            ),
            order=alt.Order("rank:Q", sort="ascending"),
            tooltip=tooltip,
        )
        .properties(height=CHART_HEIGHT)
    )


def legend_columns(values: Sequence[str]) -> int:
    """Columns of the legend below a chart: two, so that it fits a phone (390 px) however long
    the names; one when there is only one thing to name."""
    return 1 if len(values) <= 1 else 2


def quantity_label(meter_display: str, unit: str) -> str:
    return f"{meter_display} ({plural(unit, 2)})"
