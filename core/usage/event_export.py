"""The raw-event CSV: every usage event of one account in one UTC month, one row each.

Read from ``usage_events`` while the month's raw events are stored, and from the month's Parquet
file once they are archived (``core.usage.archive``): the same columns, order and formatting
either way, so the file of a month is byte-identical before and after it is archived. Rows come
in ``(occurred_at, id)`` order, read in chunks (a month of one account can be large).

Exact values: integer quantities, amounts as decimal strings with nine places (credits and US
dollars), times in UTC to the microsecond, dimensions as JSON text with sorted keys. Text cells
go through ``neutralize_formula`` (dimension values come from customers).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Account, Meter, UsageArchive, UsageEvent
from core.errors import NotFound
from core.usage.archive import (
    CHUNK_ROWS,
    dimensions_text,
    month_bounds,
    parse_month,
    read_archived_events,
)
from core.usage.exports import exact_credits, exact_usd, neutralize_formula

HEADER = (
    "event_id",
    "occurred_at_utc",
    "received_at_utc",
    "meter",
    "model",
    "project",
    "api_key",
    "dimensions",
    "quantity",
    "amount_credits",
    "amount_usd",
    "batch_id",
    "rate_card_version_id",
)
SOURCE_COLUMNS = (
    "id",
    "event_id",
    "occurred_at",
    "received_at",
    "meter_id",
    "model",
    "project",
    "api_key",
    "dimensions",
    "quantity",
    "amount_nanos",
    "batch_id",
    "rate_card_version_id",
)
_TEXT = frozenset({"event_id", "meter", "model", "project", "api_key", "dimensions"})


def utc_micros(moment: datetime) -> str:
    """ "2026-11-20T11:00:00.000000Z": every digit a stored time has."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _live_rows(session: Session, account_id: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    table = UsageEvent.__table__
    stmt = (
        select(*(table.c[name] for name in SOURCE_COLUMNS))
        .where(table.c.account_id == account_id, table.c.occurred_at >= start, table.c.occurred_at < end)
        .order_by(table.c.occurred_at, table.c.id)
        .execution_options(yield_per=CHUNK_ROWS)
    )
    for row in session.execute(stmt):
        yield dict(row._mapping)


def _cells(row: dict[str, Any], meters: dict[int, str]) -> list[object]:
    amount = int(row["amount_nanos"])
    version = row["rate_card_version_id"]
    cells: dict[str, object] = {
        "event_id": row["event_id"],
        "occurred_at_utc": utc_micros(row["occurred_at"]),
        "received_at_utc": utc_micros(row["received_at"]),
        "meter": meters.get(int(row["meter_id"]), f"meter {row['meter_id']}"),
        "model": row["model"],
        "project": row["project"],
        "api_key": row["api_key"],
        "dimensions": dimensions_text(row["dimensions"]),
        "quantity": int(row["quantity"]),
        "amount_credits": exact_credits(amount),
        "amount_usd": exact_usd(amount),
        "batch_id": int(row["batch_id"]),
        "rate_card_version_id": "" if version is None else int(version),
    }
    return [neutralize_formula(cells[name]) if name in _TEXT else cells[name] for name in HEADER]


def raw_event_rows(session: Session, account_id: str, month_key: str) -> Iterable[list[object]]:
    """The CSV's rows (without the header) for ``account_id`` and UTC month ``month_key`` (YYYY-MM)."""
    month = parse_month(month_key)
    if session.get(Account, account_id) is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    meters = {meter_id: name for meter_id, name in session.execute(select(Meter.id, Meter.name))}
    if session.get(UsageArchive, month) is not None:
        # Archived: the file holds the whole month (no raw row of it is left in the table).
        source: Iterable[dict[str, Any]] = read_archived_events(
            session, month, account_id, columns=SOURCE_COLUMNS
        )
    else:
        source = _live_rows(session, account_id, *month_bounds(month))
    return (_cells(row, meters) for row in source)


def write_raw_events_csv(session: Session, account_id: str, month_key: str, out: BinaryIO) -> int:
    """Write the CSV to ``out`` (UTF-8, CRLF lines), a chunk at a time; the number of events written."""
    rows = raw_event_rows(session, account_id, month_key)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
        if count % 10_000 == 0:
            out.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    out.write(buffer.getvalue().encode("utf-8"))
    return count


def raw_events_csv(session: Session, account_id: str, month_key: str) -> bytes:
    """The whole CSV as bytes (tests, small months); ``write_raw_events_csv`` streams it."""
    out = io.BytesIO()
    write_raw_events_csv(session, account_id, month_key, out)
    return out.getvalue()
