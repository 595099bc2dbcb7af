"""The query of the Usage & Cost API, checked: range, bucket, grouping, page size and cursor.

Pure (no database). ``parse_report_query`` turns the query string's ``(name, value)`` pairs into
a ``ReportQuery`` or raises ``ValidationError`` naming the parameter (HTTP 422):

    account_id  the account (a customer key's own when left out; required with the server token)
    start, end  RFC 3339 with an offset (``Z`` or ``+02:00``); ``end`` exclusive, after ``start``;
                both on a bucket boundary in UTC (a whole minute, a whole hour, midnight UTC)
    bucket      ``1m`` (ranges of at most 24 hours), ``1h`` or ``1d`` (ranges of at most 366 days);
                default ``1d``. Buckets are UTC: a ``1d`` bucket starts at midnight UTC
    group_by    repeatable: ``meter``, ``model``, ``project``, ``api_key``
    limit       buckets per page: ``1m`` default 60, at most 1,440; ``1h`` 24 / 168; ``1d`` 7 / 31
    page        the ``next_page`` of the previous answer

The cursor is opaque to clients: base64url JSON holding where the next page starts and a
fingerprint of the query (kind, account, range, bucket, grouping). It carries nothing a client
could not ask for directly, so it is validated rather than signed: a cursor of another query, of
another account, or not on a bucket of this range is refused (422 naming ``page``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from core.errors import ValidationError
from core.text import is_clean_text
from core.usage.ranges import MAX_RANGE_DAYS

ReportKind = Literal["usage", "costs"]

BUCKETS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
DEFAULT_BUCKET = "1d"
# Buckets per page: (default, most), as OpenAI's usage API pages them.
PAGE_LIMITS: dict[str, tuple[int, int]] = {"1m": (60, 1_440), "1h": (24, 168), "1d": (7, 31)}
MAX_RANGE: dict[str, timedelta] = {
    "1m": timedelta(hours=24),
    "1h": timedelta(days=MAX_RANGE_DAYS),
    "1d": timedelta(days=MAX_RANGE_DAYS),
}
GROUP_BY = ("meter", "model", "project", "api_key")
MAX_ACCOUNT_ID = 64
MAX_VALUE_LENGTH = 200  # any single parameter's value
MAX_GROUP_BY_VALUES = 16
COMMON_PARAMETERS = ("account_id", "start", "end", "bucket", "group_by", "limit", "page")
_CURSOR_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ReportQuery:
    """A checked query; ``page_start`` is where this page begins (``start`` without a cursor)."""

    kind: ReportKind
    account_id: str | None  # as asked; the caller decides the account (``resolved``)
    start: datetime
    end: datetime
    bucket: str
    group_by: tuple[str, ...]  # in ``GROUP_BY`` order, no repeats
    limit: int
    page: str | None = None
    page_start: datetime | None = None

    @property
    def width(self) -> timedelta:
        return BUCKETS[self.bucket]

    def first(self) -> datetime:
        return self.page_start or self.start

    def page_end(self) -> datetime:
        """The end of this page: ``limit`` buckets on, or the range's end (never past it)."""
        first = self.first()
        buckets = min(self.limit, (self.end - first) // self.width)
        return first + buckets * self.width

    def bucket_starts(self) -> list[datetime]:
        first, width = self.first(), self.width
        return [first + i * width for i in range((self.page_end() - first) // width)]

    def has_more(self) -> bool:
        return self.page_end() < self.end

    def fingerprint(self, account_id: str) -> str:
        text = json.dumps(
            [self.kind, account_id, _stamp(self.start), _stamp(self.end), self.bucket, list(self.group_by)],
            separators=(",", ":"),
        )
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def next_page(self, account_id: str) -> str | None:
        """The cursor of the page after this one, or None on the last page."""
        if not self.has_more():
            return None
        body = {"v": _CURSOR_VERSION, "at": _stamp(self.page_end()), "q": self.fingerprint(account_id)}
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def resolved(self, account_id: str) -> ReportQuery:
        """This query for the account the caller may read, its cursor checked against it."""
        query = replace(self, account_id=account_id)
        if self.page is None:
            return replace(query, page_start=self.start)
        return replace(query, page_start=_cursor_start(query, account_id, self.page))


def _stamp(moment: datetime) -> int:
    """Whole seconds since the epoch (every bucket boundary is a whole minute)."""
    return (moment - _EPOCH) // timedelta(seconds=1)


def _bad_page(
    message: str = "page is not a next_page this query gave; start again without page",
) -> ValidationError:
    return ValidationError(message, code="invalid_page", field="page")


def _cursor_start(query: ReportQuery, account_id: str, page: str) -> datetime:
    try:
        raw = base64.urlsafe_b64decode(page + "=" * (-len(page) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _bad_page() from None
    if not isinstance(body, dict) or body.get("v") != _CURSOR_VERSION:
        raise _bad_page()
    seconds, fingerprint = body.get("at"), body.get("q")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not isinstance(fingerprint, str):
        raise _bad_page()
    if fingerprint != query.fingerprint(account_id):
        raise _bad_page(
            "page belongs to another query: pass next_page with the same account, range, bucket and group_by"
        )
    if not _stamp(query.start) < seconds < _stamp(query.end):
        raise _bad_page()
    start = _EPOCH + timedelta(seconds=seconds)
    if (start - query.start) % query.width:
        raise _bad_page()
    return start


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ValidationError(f"give {name} once", code="repeated", field=name)
    return values[0]


def _rfc3339(text: str, name: str) -> datetime:
    """An RFC 3339 time with an offset, as an aware UTC datetime; else a ValidationError naming ``name``."""
    if not 19 <= len(text) <= 40 or text[10] not in "Tt ":
        raise ValidationError(
            f"{name} is not an RFC 3339 time, e.g. 2026-11-01T00:00:00Z", code="not_a_timestamp", field=name
        )
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"{name} is not an RFC 3339 time, e.g. 2026-11-01T00:00:00Z", code="not_a_timestamp", field=name
        ) from None
    if parsed.tzinfo is None:
        raise ValidationError(
            f"{name} needs a UTC offset, e.g. Z or +02:00", code="missing_offset", field=name
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValidationError(
            f"{name} is outside the calendar once in UTC", code="out_of_range", field=name
        ) from None


def _moment(params: dict[str, list[str]], name: str, bucket: str) -> datetime:
    text = _single(params, name)
    if text is None or text == "":
        raise ValidationError(
            f"{name} is required: an RFC 3339 time, e.g. 2026-11-01T00:00:00Z", code="required", field=name
        )
    moment = _rfc3339(text, name)
    width = BUCKETS[bucket]
    if (moment - _EPOCH) % width:
        edge = {"1m": "a whole minute", "1h": "a whole hour in UTC", "1d": "midnight UTC"}[bucket]
        raise ValidationError(
            f"{name} must fall on a bucket boundary for bucket={bucket}: {edge}",
            code="not_aligned",
            field=name,
        )
    return moment


def _limit(params: dict[str, list[str]], bucket: str) -> int:
    default, most = PAGE_LIMITS[bucket]
    text = _single(params, "limit")
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 7 or not 1 <= int(text) <= most:
        raise ValidationError(
            f"limit is a whole number of buckets from 1 to {most:,} for bucket={bucket}",
            code="out_of_range",
            field="limit",
        )
    return int(text)


def _group_by(params: dict[str, list[str]]) -> tuple[str, ...]:
    values = params.get("group_by", [])
    if len(values) > MAX_GROUP_BY_VALUES:
        raise ValidationError("group_by is repeated too often", code="too_many", field="group_by")
    for value in values:
        if value not in GROUP_BY:
            raise ValidationError(
                f"group by {', '.join(GROUP_BY)} (repeat group_by for several), not {value[:40]!r}",
                code="unknown_group_by",
                field="group_by",
            )
    return tuple(name for name in GROUP_BY if name in values)


def parse_report_query(
    kind: ReportKind, pairs: Iterable[tuple[str, str]], *, extra: Iterable[str] = ()
) -> ReportQuery:
    """The checked query of ``GET /api/v1/usage`` or ``/costs`` (``extra``: parameters the route
    reads itself, e.g. ``format``); any other parameter is refused, naming it."""
    params: dict[str, list[str]] = {}
    allowed = set(COMMON_PARAMETERS) | set(extra)
    for name, value in pairs:
        if name not in allowed:
            shown = name[:40] if is_clean_text(name) else "?"
            raise ValidationError(
                f"unknown parameter {shown!r}; use {', '.join(sorted(allowed))}",
                code="unknown_parameter",
                field=shown,
            )
        if len(value) > MAX_VALUE_LENGTH or not is_clean_text(value):
            raise ValidationError(f"{name} is too long or holds a NUL", code="invalid", field=name)
        params.setdefault(name, []).append(value)

    bucket = _single(params, "bucket") or DEFAULT_BUCKET
    if bucket not in BUCKETS:
        raise ValidationError(f"bucket is one of {', '.join(BUCKETS)}", code="unknown_bucket", field="bucket")
    start = _moment(params, "start", bucket)
    end = _moment(params, "end", bucket)
    if end <= start:
        raise ValidationError("end must be after start (end is exclusive)", code="empty_range", field="end")
    if end - start > MAX_RANGE[bucket]:
        most = "24 hours" if bucket == "1m" else f"{MAX_RANGE_DAYS} days"
        raise ValidationError(
            f"bucket={bucket} reads at most {most} at once; narrow the range or use a larger bucket",
            code="range_too_long",
            field="end",
        )
    account_id = _single(params, "account_id")
    if account_id is not None and not 0 < len(account_id) <= MAX_ACCOUNT_ID:
        raise ValidationError(
            f"account_id is 1 to {MAX_ACCOUNT_ID} characters", code="invalid", field="account_id"
        )
    return ReportQuery(
        kind=kind,
        account_id=account_id,
        start=start,
        end=end,
        bucket=bucket,
        group_by=_group_by(params),
        limit=_limit(params, bucket),
        page=_single(params, "page") or None,
    )
