"""Pure validation of raw event dicts (as parsed from JSON). No I/O in here.

Each raw event becomes a ``ValidEvent`` or a ``Rejection`` naming the field and a code:

    event         not_an_object
    event_id      required, not_a_string, too_long, invalid_character (NUL, lone surrogate)
    account_id    required, not_a_string, too_long, invalid_character, unknown_account
    meter         required, not_a_string, too_long, invalid_character, unknown_meter
    quantity      required, not_a_number, not_an_integer, not_exact, must_be_non_negative, too_large
    timestamp     required, not_a_string, not_a_timestamp, missing_offset, out_of_range,
                  in_future, too_late
    dimensions    not_an_object, too_many, invalid_character;
                  dimensions.<key>: not_a_string, too_long, invalid_character

Quantities are exact: a JSON number arrives as ``int`` or ``Decimal`` (``exact_json``), and a
fraction is rejected, never rounded. Strings must be valid Unicode that UTF-8 can encode
(a lone surrogate such as ``"\\ud800"`` cannot be stored) and hold no NUL. A timestamp whose
conversion to UTC leaves the calendar (``9999-12-31T23:00:00-05:00``) is ``out_of_range``.

Dimensions the meter does not declare are accepted and kept in the event's ``dimensions``
JSON only (a producer adding a tag must not lose usage); ``model``, ``project`` and
``api_key`` also fill the columns of the same name, which rollups group by.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson

from core.metering.model import Rejection, ValidEvent
from core.metering.settings import (
    MAX_DIMENSION_KEY_LENGTH,
    MAX_DIMENSION_VALUE_LENGTH,
    MAX_DIMENSIONS,
    MAX_EVENT_ID_LENGTH,
    MAX_FUTURE,
    MAX_QUANTITY,
)
from core.text import is_clean_text

COLUMN_DIMENSIONS = ("model", "project", "api_key")


@dataclass(frozen=True, slots=True)
class MeterInfo:
    meter_id: int
    name: str
    dimensions: frozenset[str]


@dataclass(frozen=True, slots=True)
class Window:
    """The accepted time range for event timestamps: ``earliest <= t <= latest``."""

    earliest: datetime
    latest: datetime

    @classmethod
    def around(cls, at: datetime, max_lateness: timedelta) -> Window:
        return cls(earliest=at - max_lateness, latest=at + MAX_FUTURE)


class _Invalid(Exception):
    def __init__(self, field: str | None, code: str, message: str):
        self.field = field
        self.code = code
        self.message = message


def content_hash(
    account_id: str, meter: str, quantity: int, occurred_at: datetime, dims: Mapping[str, str]
) -> str:
    """blake2b-128 of the canonical content; the event id is the key.

    The content is one JSON array (UTF-8, no spaces; the UTC time; the dimensions sorted by
    name), encoded by orjson: JSON escapes every string, so no value can run into its
    neighbour and two different events never share an encoding (a separator joined in
    plain text could be forged by a dimension value). Migration 0002 holds a frozen copy.
    """
    return _hash(account_id, meter, quantity, occurred_at.astimezone(UTC).isoformat(), sorted(dims.items()))


def _hash(
    account_id: str, meter: str, quantity: int, utc_iso: str, sorted_dims: list[tuple[str, str]]
) -> str:
    """``content_hash`` from its parts already made canonical (the UTC time's text, the sorted items)."""
    canonical = orjson.dumps([account_id, meter, quantity, utc_iso, sorted_dims])
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def _string(raw: Mapping[str, object], field: str, max_length: int) -> str:
    value = raw.get(field)
    if value is None or value == "":
        raise _Invalid(field, "required", f"{field} is required")
    if not isinstance(value, str):
        raise _Invalid(field, "not_a_string", f"{field} must be a string")
    if len(value) > max_length:
        raise _Invalid(field, "too_long", f"{field} is longer than {max_length} characters")
    if not is_clean_text(value):
        raise _Invalid(
            field,
            "invalid_character",
            f"{field} contains a NUL character or invalid Unicode (a lone surrogate)",
        )
    return value


_FLOAT_EXACT_LIMIT = 2**53  # every integer up to here is exact as a binary float


def _quantity(value: object) -> int:
    """A whole, non-negative number of units up to ``MAX_QUANTITY``, taken exactly."""
    if value is None:
        raise _Invalid("quantity", "required", "quantity is required")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, float)):
        raise _Invalid("quantity", "not_a_number", "quantity must be a JSON number, e.g. 1200")
    if isinstance(value, float):
        # Only Python callers pass floats (JSON numbers arrive as int or Decimal).
        if value != value or value in (float("inf"), float("-inf")):
            raise _Invalid("quantity", "not_a_number", "quantity must be a finite number")
        if not value.is_integer():
            raise _Invalid("quantity", "not_an_integer", f"quantity must be a whole number, not {value}")
        if abs(value) > _FLOAT_EXACT_LIMIT:
            raise _Invalid("quantity", "not_exact", "quantity is a float too large to be exact; pass an int")
        value = int(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise _Invalid("quantity", "not_a_number", "quantity must be a finite number")
        # Compare before int(): -1e999999999 would otherwise build a billion-digit integer.
        if value > MAX_QUANTITY:
            raise _Invalid("quantity", "too_large", f"quantity is over the ceiling of {MAX_QUANTITY:,}")
        if value < 0:
            raise _Invalid("quantity", "must_be_non_negative", "quantity cannot be negative")
        if value != value.to_integral_value():
            raise _Invalid("quantity", "not_an_integer", f"quantity must be a whole number, not {value}")
        value = int(value)
    if value < 0:
        raise _Invalid("quantity", "must_be_non_negative", "quantity cannot be negative")
    if value > MAX_QUANTITY:
        raise _Invalid("quantity", "too_large", f"quantity is over the ceiling of {MAX_QUANTITY:,}")
    return value


def parse_timestamp(value: object) -> datetime:
    """An RFC 3339 timestamp with an offset ("Z" or "+02:00") as an aware UTC datetime."""
    if value is None or value == "":
        raise _Invalid("timestamp", "required", "timestamp is required")
    if not isinstance(value, str):
        raise _Invalid("timestamp", "not_a_string", "timestamp must be an RFC 3339 string")
    if len(value) < 19 or len(value) > 40 or value[10] not in "Tt ":
        raise _Invalid("timestamp", "not_a_timestamp", f"{value!r} is not an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid("timestamp", "not_a_timestamp", f"{value!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise _Invalid(
            "timestamp", "missing_offset", f"{value!r} has no UTC offset; add one, e.g. 2026-11-20T12:00:00Z"
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise _Invalid(
            "timestamp", "out_of_range", f"{value!r} is outside the calendar once converted to UTC"
        ) from None


def _dimensions(value: object, seen: set[tuple[object, ...]] | None = None) -> dict[str, str]:
    """The event's dimensions, checked; ``seen`` remembers combinations already found valid.

    A batch repeats few combinations (model, project, API key), so each is checked once.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid("dimensions", "not_an_object", "dimensions must be an object of strings")
    if seen is not None:
        combination: tuple[object, ...] | None = tuple(value.items())
        try:
            if combination in seen:
                return value
        except TypeError:  # an unhashable value (a list, an object): checked below, and rejected
            combination = None
        checked = _check_dimensions(value)
        if combination is not None:
            seen.add(combination)
        return checked
    return _check_dimensions(value)


def _check_dimensions(value: dict[str, object]) -> dict[str, str]:
    if len(value) > MAX_DIMENSIONS:
        raise _Invalid("dimensions", "too_many", f"at most {MAX_DIMENSIONS} dimensions per event")
    for key, item in value.items():
        if len(key) > MAX_DIMENSION_KEY_LENGTH:
            raise _Invalid("dimensions", "too_long", f"dimension name {key[:20]!r}… is too long")
        if not is_clean_text(key):
            raise _Invalid(
                "dimensions", "invalid_character", f"dimension name {key!r} has a NUL or invalid Unicode"
            )
        if not isinstance(item, str):
            raise _Invalid(f"dimensions.{key}", "not_a_string", f"dimension {key} must be a string")
        if len(item) > MAX_DIMENSION_VALUE_LENGTH:
            raise _Invalid(
                f"dimensions.{key}",
                "too_long",
                f"dimension {key} is longer than {MAX_DIMENSION_VALUE_LENGTH}",
            )
        if not is_clean_text(item):
            raise _Invalid(
                f"dimensions.{key}",
                "invalid_character",
                f"dimension {key!r} contains a NUL character or invalid Unicode (a lone surrogate)",
            )
    return value  # type: ignore[return-value]


def validate_event(
    index: int,
    raw: object,
    *,
    meters: Mapping[str, MeterInfo],
    account_ids: Container[str],
    window: Window,
    seen_dimensions: set[tuple[object, ...]] | None = None,
) -> ValidEvent | Rejection:
    """Check one raw event against the catalogue (meters, accounts) and the time window."""
    if not isinstance(raw, dict):
        return Rejection(index, None, "event", "not_an_object", "each event must be a JSON object")
    event_id = raw.get("event_id")
    # Echoed in the answer only when it can be (an id that is itself invalid is not repeated).
    shown_id = (
        event_id
        if isinstance(event_id, str) and len(event_id) <= MAX_EVENT_ID_LENGTH and is_clean_text(event_id)
        else None
    )
    try:
        event_id = _string(raw, "event_id", MAX_EVENT_ID_LENGTH)
        account_id = _string(raw, "account_id", 64)
        meter_name = _string(raw, "meter", 64)
        quantity = _quantity(raw.get("quantity"))
        occurred_at = parse_timestamp(raw.get("timestamp"))
        dims = _dimensions(raw.get("dimensions"), seen_dimensions)
        if account_id not in account_ids:
            raise _Invalid("account_id", "unknown_account", f"account {account_id!r} does not exist")
        meter = meters.get(meter_name)
        if meter is None:
            raise _Invalid("meter", "unknown_meter", f"meter {meter_name!r} does not exist")
        if occurred_at > window.latest:
            raise _Invalid("timestamp", "in_future", "timestamp is more than 24 hours in the future")
        if occurred_at < window.earliest:
            days = (window.latest - MAX_FUTURE - window.earliest).days
            raise _Invalid("timestamp", "too_late", f"timestamp is older than the {days}-day lateness window")
    except _Invalid as invalid:
        return Rejection(index, shown_id, invalid.field, invalid.code, invalid.message)
    return ValidEvent(
        index=index,
        event_id=event_id,
        account_id=account_id,
        meter_id=meter.meter_id,
        quantity=quantity,
        occurred_at=occurred_at,
        dimensions=dims,
        content_hash=content_hash(account_id, meter_name, quantity, occurred_at, dims),
    )


# What ``datetime.isoformat()`` writes for a UTC time (no fraction when the microseconds are
# zero), so that a timestamp matching it is its own canonical text (a third of the cost).
_ISOFORMAT_UTC = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.(?!000000)[0-9]{6})?\+00:00"
)


def _passes_string_checks(value: str, max_length: int) -> bool:
    return 0 < len(value) <= max_length and is_clean_text(value)


def validate_events(
    raw_events: Sequence[object],
    *,
    meters: Mapping[str, MeterInfo],
    account_ids: Container[str],
    window: Window,
) -> tuple[list[ValidEvent], list[Rejection]]:
    """``validate_event`` on each raw event, in order: the valid ones and the rejections.

    A batch repeats few accounts, meters and dimension combinations, so the common event
    (ASCII id; known account and meter; an ``int`` quantity; dimensions checked earlier in
    the batch) takes a short path that only confirms it is valid, its checks done once
    per distinct value. Anything else, valid or not, goes through ``validate_event``,
    which names the field and the code: the outcome is the same either way.
    """
    valid: list[ValidEvent] = []
    rejected: list[Rejection] = []
    seen_dimensions: set[tuple[object, ...]] = set()  # the full path's own cache
    known_meters = {name: meter for name, meter in meters.items() if _passes_string_checks(name, 64)}
    account_passes: dict[str, bool] = {}
    dimensions_sorted: dict[tuple[object, ...], list[tuple[str, str]] | None] = {}
    earliest, latest = window.earliest, window.latest
    for index, raw in enumerate(raw_events):
        event = None
        if type(raw) is dict:
            event_id = raw.get("event_id")
            account_id = raw.get("account_id")
            meter = known_meters.get(name) if type(name := raw.get("meter")) is str else None
            quantity = raw.get("quantity")
            timestamp = raw.get("timestamp")
            if (
                meter is not None
                and type(event_id) is str
                and 0 < len(event_id) <= MAX_EVENT_ID_LENGTH
                and event_id.isascii()
                and "\x00" not in event_id
                and type(account_id) is str
                and type(quantity) is int
                and 0 <= quantity <= MAX_QUANTITY
                and type(timestamp) is str
            ):
                passes = account_passes.get(account_id)
                if passes is None:
                    passes = account_passes[account_id] = (
                        _passes_string_checks(account_id, 64) and account_id in account_ids
                    )
                if passes:
                    event = _short_path(
                        index,
                        (event_id, account_id, name, quantity, timestamp, raw.get("dimensions")),
                        meter,
                        earliest,
                        latest,
                        dimensions_sorted,
                    )
        if not event:
            event = validate_event(
                index,
                raw,
                meters=meters,
                account_ids=account_ids,
                window=window,
                seen_dimensions=seen_dimensions,
            )
        if type(event) is ValidEvent:
            valid.append(event)
        else:
            rejected.append(event)  # type: ignore[arg-type]
    return valid, rejected


def _short_path(
    index: int,
    fields: tuple[str, str, str, int, str, object],
    meter: MeterInfo,
    earliest: datetime,
    latest: datetime,
    dimensions_sorted: dict[tuple[object, ...], list[tuple[str, str]] | None],
) -> ValidEvent | None:
    """The event, when its timestamp and dimensions pass too; None sends it to the full path.

    ``fields`` are the event id, account, meter name, quantity, timestamp and dimensions,
    the first four already checked.
    """
    event_id, account_id, meter_name, quantity, timestamp, dimensions = fields
    try:
        occurred_at = parse_timestamp(timestamp)
    except _Invalid:
        return None
    if occurred_at > latest or occurred_at < earliest:
        return None
    if dimensions is None:
        dims: dict[str, str] = {}
        sorted_dims: list[tuple[str, str]] | None = []
    elif type(dimensions) is dict:
        combination = tuple(dimensions.items())
        try:
            sorted_dims = dimensions_sorted[combination]
        except KeyError:
            try:
                _check_dimensions(dimensions)
                sorted_dims = sorted(dimensions.items())
            except _Invalid:
                sorted_dims = None
            dimensions_sorted[combination] = sorted_dims
        except TypeError:  # an unhashable value: the full path rejects it
            return None
        if sorted_dims is None:
            return None
        dims = dimensions
    else:
        return None
    # The hash takes the time's text as isoformat() gives it in UTC: most clients send it so.
    utc_text = timestamp if _ISOFORMAT_UTC.fullmatch(timestamp) else occurred_at.isoformat()
    content_hash = _hash(account_id, meter_name, quantity, utc_text, sorted_dims)
    # Positional (half the cost of keywords, once per event): the order of ValidEvent's fields.
    return ValidEvent(index, event_id, account_id, meter.meter_id, quantity, occurred_at, dims, content_hash)
