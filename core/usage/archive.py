"""Retention: raw usage events of old UTC months moved to Parquet files, checked, then dropped.

``archive_month`` writes one month's raw events (``occurred_at`` in ``[first day, next month)``, UTC)
to ``usage_events_YYYY_MM.parquet`` in the archive directory, reading the table in chunks (a month
can hold 100 million rows; memory stays at one chunk): on PostgreSQL with ``COPY … TO STDOUT``
parsed by pyarrow's CSV reader, on SQLite row by row (the same file either way). The file is
written under a temporary name, fsynced, then renamed. Before anything is removed, the file is
read back: its row count and the sum of its ``amount_nanos`` must equal what the table holds for the
month and what the hourly rollups (``usage_rollup_hourly``, UTC hours) say for it. Only then are the
raw rows removed (``core.metering.partitions.drop_event_month``: the month's partition on
PostgreSQL) and the month recorded in ``usage_archives``, with per account, batch, meter and model
totals in ``archived_event_totals`` so that the ledger check and the statements still add up.

Rollups, ledger entries and batches are kept: the Usage page and the usage exports read the
rollups, the raw-event CSV of an archived month reads its file (``read_archived_events``).

Types in the file are exact: integers are int64 (``amount_nanos`` too), times are microsecond UTC
timestamps, ``usage_date`` a date, ``dimensions`` JSON text (sorted keys). Nothing goes through a float.

Settings: ``METERLINE_RAW_RETENTION_MONTHS`` (default 13) and ``METERLINE_ARCHIVE_DIR`` (default
``var/archive``, beside the SQLite default database).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from sqlalchemy import BigInteger, DateTime, Text, func, insert, literal, select, type_coerce
from sqlalchemy.orm import Session

from core.clock import Clock, system_clock
from core.db.engine import DEFAULT_SQLITE_PATH
from core.db.models import ArchivedEventTotal, UsageArchive, UsageEvent, UsageRollupHourly
from core.errors import BillingError, Conflict, NotFound, ValidationError
from core.metering.partitions import add_months, drop_event_month, month_bounds, month_of
from core.metering.settings import max_lateness

DEFAULT_RETENTION_MONTHS = 13
RETENTION_VARIABLE = "METERLINE_RAW_RETENTION_MONTHS"
ARCHIVE_DIR_VARIABLE = "METERLINE_ARCHIVE_DIR"
CHUNK_ROWS = 100_000  # rows read from the table at once, and one Parquet row group
INT64_MAX = 2**63 - 1
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

# The file's columns, in the table's order, with exact types.
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("event_id", pa.string()),
        ("account_id", pa.string()),
        ("meter_id", pa.int64()),
        ("quantity", pa.int64()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("usage_date", pa.date32()),
        ("model", pa.string()),
        ("project", pa.string()),
        ("api_key", pa.string()),
        ("dimensions", pa.string()),  # JSON text, sorted keys
        ("amount_nanos", pa.int64()),
        ("rate_card_version_id", pa.int64()),
        ("content_hash", pa.string()),
        ("batch_id", pa.int64()),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)
COLUMNS = tuple(SCHEMA.names)


class ArchiveCheckFailed(BillingError):
    """The file read back does not match the table or the rollups: nothing was removed."""

    default_code = "archive_check_failed"


@dataclass(frozen=True)
class ArchiveResult:
    """What ``archive_month`` did (or, with ``dry_run``, would do) for one month."""

    month: date
    rows: int  # raw events of the month (in the file, or that would go in it)
    amount_nanos: int
    path: Path
    size_bytes: int = 0  # 0 on a dry run or a month without rows
    seconds: float = 0.0
    dry_run: bool = False
    archived: bool = False  # True only when a file was written, checked, and the rows removed

    def describe(self) -> str:
        from core.usage.exports import exact_credits

        name = f"{self.month:%Y-%m}"
        if self.rows == 0:
            return f"{name}: no raw events, nothing to do"
        amount = exact_credits(self.amount_nanos)
        if self.dry_run:
            return f"{name}: would archive {self.rows:,} events ({amount} credits) to {self.path}"
        return (
            f"{name}: archived {self.rows:,} events ({amount} credits) to {self.path}, "
            f"{self.size_bytes:,} bytes, {self.seconds:.1f} s"
        )


# --- settings ------------------------------------------------------------------------------------


def retention_months() -> int:
    """Whole months of raw events kept before the current one (``METERLINE_RAW_RETENTION_MONTHS``)."""
    raw = os.environ.get(RETENTION_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_RETENTION_MONTHS
    months = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 4 else 0
    if months <= 0:
        raise ValidationError(
            f"{RETENTION_VARIABLE} must be a positive whole number of months, not {raw!r}",
            code="bad_setting",
            field=RETENTION_VARIABLE,
        )
    return months


def archive_dir() -> Path:
    """Where the Parquet files go (``METERLINE_ARCHIVE_DIR``, default ``var/archive``)."""
    raw = os.environ.get(ARCHIVE_DIR_VARIABLE, "").strip()
    return Path(raw) if raw else DEFAULT_SQLITE_PATH.parent / "archive"


# --- months --------------------------------------------------------------------------------------


def parse_month(text: str, *, field: str = "month") -> date:
    """``YYYY-MM`` as the first day of that month; a ValidationError naming ``field`` otherwise."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise ValidationError(
            f"{field} is a month written YYYY-MM, e.g. 2025-09", code="invalid", field=field
        )
    return date(int(match.group(1)), int(match.group(2)), 1)


def lateness_limit(now: datetime) -> date:
    """The first month that is not entirely older than the lateness window: events may still arrive."""
    oldest_accepted = now - max_lateness()
    return month_of(oldest_accepted)  # its month is still open to late events


def retention_limit(now: datetime) -> date:
    """The latest ``--before`` allowed at ``now``: months before it are past both the retention period
    and the lateness window."""
    return min(add_months(month_of(now), -retention_months()), lateness_limit(now))


def file_name(month: date) -> str:
    return f"usage_events_{month:%Y_%m}.parquet"


# --- writing -------------------------------------------------------------------------------------


def dimensions_text(dimensions: Any) -> str:
    """The JSON text a file (and the raw-event CSV) holds for an event's dimensions: sorted keys."""
    if isinstance(dimensions, (str, bytes)):  # the stored text, read without decoding
        dimensions = orjson.loads(dimensions)
    return orjson.dumps(dimensions or {}, option=orjson.OPT_SORT_KEYS).decode()


def _chunk_table(rows: Sequence[Any]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    arrays = []
    for index, field in enumerate(SCHEMA):
        values = columns[index]
        if field.name == "dimensions":
            values = [dimensions_text(value) for value in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _month_rows(session: Session, start: datetime, end: datetime) -> Iterator[Sequence[Any]]:
    """The month's events in chunks, ordered by account and time (so a file read for one account
    skips the row groups of others, by their statistics)."""
    table = UsageEvent.__table__
    postgres = session.get_bind().dialect.name == "postgresql"

    def column(name: str) -> Any:
        # The cheapest exact reading: JSON as its stored text; on PostgreSQL, times as the driver's
        # aware datetimes (SQLite keeps naive UTC text: its UTCDateTime type reads it).
        if name == "dimensions":
            return type_coerce(table.c[name], Text)
        if postgres and name in ("occurred_at", "received_at"):
            return type_coerce(table.c[name], DateTime(timezone=True))
        return table.c[name]

    stmt = (
        select(*(column(name) for name in COLUMNS))
        .where(table.c.occurred_at >= start, table.c.occurred_at < end)
        .order_by(table.c.account_id, table.c.occurred_at, table.c.id)
        .execution_options(yield_per=CHUNK_ROWS)
    )
    yield from session.execute(stmt).partitions(CHUNK_ROWS)


# On PostgreSQL the month is read with COPY … TO STDOUT (FORMAT csv) and parsed by pyarrow's CSV
# reader (C++), not row by row in Python. Times leave the server as integer microseconds since the
# epoch and the local day as days since the epoch (exact whatever the session's TimeZone or DateStyle;
# EXTRACT is numeric, hence exact, from PostgreSQL 14); every column has an explicit type, so nothing
# is guessed and nothing goes through a float. The dimensions leave as their stored text and are
# rewritten by ``dimensions_text`` once per distinct value in a chunk (PostgreSQL's own JSON output
# orders and spaces keys otherwise).
_COPY_EXPRESSIONS = {
    "occurred_at": "(extract(epoch FROM occurred_at) * 1000000)::bigint",
    "usage_date": "usage_date - DATE '1970-01-01'",
    "dimensions": "dimensions::text",
    "received_at": "(extract(epoch FROM received_at) * 1000000)::bigint",
}
_COPY_TYPES = {"occurred_at": pa.int64(), "usage_date": pa.int32(), "received_at": pa.int64()}
_COPY_BLOCK = 1 << 22  # bytes the CSV reader asks for at once


def _uses_copy(session: Session) -> bool:
    dialect = session.get_bind().dialect
    version = dialect.server_version_info or (0,)
    return dialect.name == "postgresql" and dialect.driver == "psycopg" and version >= (14,)


class _CopyStream:
    """A read-only file over a psycopg COPY TO STDOUT (which hands out one row at a time)."""

    def __init__(self, copy: Any) -> None:
        self._copy = copy
        self._rest = b""
        self._done = False
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        pieces = [self._rest] if self._rest else []
        held = len(self._rest)
        read = self._copy.read
        while (size < 0 or held < size) and not self._done:
            data = read()
            if not data:
                self._done = True
                break
            pieces.append(data)
            held += len(data)
        block = b"".join(pieces)
        if size < 0 or len(block) <= size:
            self._rest = b""
            return block
        self._rest = block[size:]
        return block[:size]

    def close(self) -> None:
        self.closed = True


def _copy_tables(session: Session, start: datetime, end: datetime) -> Iterator[pa.Table]:
    """PostgreSQL: the month's events, in the order of ``_month_rows``, as tables of ``CHUNK_ROWS``."""
    import pyarrow.csv as pcsv

    columns = ", ".join(_COPY_EXPRESSIONS.get(name, name) for name in COLUMNS)
    query = (
        f"COPY (SELECT {columns} FROM {UsageEvent.__tablename__} "
        "WHERE occurred_at >= %s AND occurred_at < %s ORDER BY account_id, occurred_at, id) "
        "TO STDOUT (FORMAT csv, ENCODING 'UTF8')"
    )
    types = {field.name: _COPY_TYPES.get(field.name, field.type) for field in SCHEMA}
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(query, (start, end)) as copy:
        reader = pcsv.open_csv(
            _CopyStream(copy),
            read_options=pcsv.ReadOptions(column_names=list(COLUMNS), block_size=_COPY_BLOCK),
            parse_options=pcsv.ParseOptions(newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types=types,
                null_values=[""],  # COPY writes NULL unquoted and empty, an empty string as ""
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        try:
            pending: list[pa.RecordBatch] = []
            held = 0
            for batch in reader:
                pending.append(batch)
                held += batch.num_rows
                while held >= CHUNK_ROWS:
                    table = pa.Table.from_batches(pending)
                    yield _copied_chunk(table.slice(0, CHUNK_ROWS))
                    rest = table.slice(CHUNK_ROWS)
                    pending, held = rest.to_batches(), rest.num_rows
            if held:
                yield _copied_chunk(pa.Table.from_batches(pending))
        finally:
            reader.close()  # its read-ahead stops before the COPY is ended (cancelled on an error)


def _copied_chunk(table: pa.Table) -> pa.Table:
    """A chunk as the CSV reader typed it, in the file's types."""
    arrays = []
    for field in SCHEMA:
        column = table.column(field.name).combine_chunks()
        if field.name == "dimensions":
            encoded = pc.dictionary_encode(column)
            texts = pa.array(
                [dimensions_text(value) for value in encoded.dictionary.to_pylist()], pa.string()
            )
            column = pc.take(texts, encoded.indices)
        elif column.type != field.type:
            column = column.cast(field.type)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _month_tables(
    session: Session, start: datetime, end: datetime, *, copy: bool | None = None
) -> Iterator[pa.Table]:
    """The month's events as tables of at most ``CHUNK_ROWS`` rows (one row group each): by COPY on
    PostgreSQL 14 and later (``copy`` forces a path, for the tests), row by row otherwise."""
    if _uses_copy(session) if copy is None else copy:
        yield from _copy_tables(session, start, end)
    else:
        for rows in _month_rows(session, start, end):
            yield _chunk_table(rows)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(session: Session, month: date, directory: Path, *, copy: bool | None = None) -> Path:
    """Write the month's rows to a temporary file in ``directory``, fsync it, rename it; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / file_name(month)
    temporary = directory / f".{target.name}.{os.getpid()}.tmp"
    start, end = month_bounds(month)
    try:
        with pq.ParquetWriter(temporary, SCHEMA, compression="zstd") as writer:
            for table in _month_tables(session, start, end, copy=copy):
                writer.write_table(table, row_group_size=CHUNK_ROWS)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_dir(directory)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def _file_totals(path: Path) -> tuple[int, int]:
    """(rows, sum of amount_nanos) of a file read back; the sum exact (decimal, never int64 or float)."""
    rows = 0
    amount = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1_000_000, columns=["amount_nanos"]):
        rows += batch.num_rows
        total = pc.sum(batch.column(0).cast(pa.decimal128(38, 0))).as_py()
        amount += int(total or 0)
    return rows, amount


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _table_totals(session: Session, start: datetime, end: datetime) -> tuple[int, int]:
    count, amount = session.execute(
        select(func.count(), func.sum(UsageEvent.amount_nanos)).where(
            UsageEvent.occurred_at >= start, UsageEvent.occurred_at < end
        )
    ).one()
    return int(count or 0), int(amount or 0)


def _rollup_totals(session: Session, start: datetime, end: datetime) -> tuple[int, int]:
    hourly = UsageRollupHourly
    count, amount = session.execute(
        select(func.sum(hourly.event_count), func.sum(hourly.amount_nanos)).where(
            hourly.hour_start >= start, hourly.hour_start < end
        )
    ).one()
    return int(count or 0), int(amount or 0)


def _record_totals(session: Session, month: date, start: datetime, end: datetime) -> tuple[int, int]:
    """Insert the month's per account, batch, meter and model totals; (events, amount) they hold."""
    event = UsageEvent
    session.execute(
        insert(ArchivedEventTotal).from_select(
            [
                "account_id",
                "month",
                "batch_id",
                "meter_id",
                "model",
                "event_count",
                "quantity",
                "amount_nanos",
            ],
            select(
                event.account_id,
                literal(month),
                event.batch_id,
                event.meter_id,
                event.model,
                func.count().cast(BigInteger),
                func.sum(event.quantity).cast(BigInteger),
                func.sum(event.amount_nanos).cast(BigInteger),
            )
            .where(event.occurred_at >= start, event.occurred_at < end)
            .group_by(event.account_id, event.batch_id, event.meter_id, event.model),
        )
    )
    total = ArchivedEventTotal
    count, amount = session.execute(
        select(func.sum(total.event_count), func.sum(total.amount_nanos)).where(total.month == month)
    ).one()
    return int(count or 0), int(amount or 0)


def check_archivable(month: date, now: datetime) -> None:
    """Refuse a month that is not entirely older than the lateness window (events may still arrive)."""
    limit = lateness_limit(now)
    if month >= limit:
        _, end = month_bounds(month)
        raise ValidationError(
            f"{month:%Y-%m} is not entirely older than the lateness window "
            f"(METERLINE_MAX_LATENESS_DAYS = {max_lateness().days}): events for it are accepted until "
            f"{end + max_lateness():%Y-%m-%d %H:%M} UTC; the latest month that can be archived now is "
            f"{add_months(limit, -1):%Y-%m}",
            code="month_too_recent",
            field="month",
        )


def archive_month(
    session: Session, month: date, directory: Path, *, dry_run: bool = False, clock: Clock = system_clock
) -> ArchiveResult:
    """Archive the raw events of UTC ``month`` in the caller's write transaction (see the module doc).

    A month without raw rows is a no-op. Raises ValidationError for a month inside the lateness
    window, Conflict for a month archived before that holds raw rows again, ArchiveCheckFailed when
    the file read back disagrees with the table or the rollups (the raw rows are then kept, the file
    removed). The caller commits: until then nothing is removed.
    """
    month = month.replace(day=1)
    started = time.perf_counter()
    check_archivable(month, clock())
    start, end = month_bounds(month)
    target = Path(directory) / file_name(month)
    rows, amount = _table_totals(session, start, end)
    if rows == 0:
        return ArchiveResult(month, 0, 0, target, dry_run=dry_run)
    if session.get(UsageArchive, month) is not None:
        raise Conflict(
            f"{month:%Y-%m} was archived before, yet {rows:,} raw events of it are stored (a backfill "
            "past the lateness window?): they are left in place",
            code="already_archived",
            field="month",
        )
    if amount > INT64_MAX:
        raise ValidationError(
            f"{month:%Y-%m}: the month's amount {amount} does not fit a 64-bit total", field="month"
        )
    if dry_run:
        return ArchiveResult(month, rows, amount, target, dry_run=True)

    path = _write_file(session, month, Path(directory))
    file_rows, file_amount = _file_totals(path)
    rolled_rows, rolled_amount = _rollup_totals(session, start, end)
    held_rows, held_amount = _table_totals(session, start, end)  # again: nothing may have moved since
    problems = []
    if (file_rows, file_amount) != (held_rows, held_amount) or (held_rows, held_amount) != (rows, amount):
        problems.append(
            f"the file holds {file_rows:,} events and {file_amount} nanos, the table {held_rows:,} and "
            f"{held_amount}"
        )
    if (file_rows, file_amount) != (rolled_rows, rolled_amount):
        problems.append(
            f"the file holds {file_rows:,} events and {file_amount} nanos, the hourly rollups of the "
            f"month {rolled_rows:,} and {rolled_amount}"
        )
    if problems:
        path.unlink(missing_ok=True)
        raise ArchiveCheckFailed(
            f"{month:%Y-%m} not archived, its raw events are left in place: " + "; ".join(problems)
        )
    totals = _record_totals(session, month, start, end)
    if totals != (rows, amount):
        raise ArchiveCheckFailed(
            f"{month:%Y-%m} not archived: its per-batch totals hold {totals}, the table ({rows}, {amount})"
        )
    removed = drop_event_month(session, month)
    if removed != rows:
        raise ArchiveCheckFailed(
            f"{month:%Y-%m} not archived: removing its raw events took {removed:,} rows, not {rows:,}"
        )
    sha256, size = _sha256(path)
    session.add(
        UsageArchive(
            month=month,
            path=str(path.resolve()),
            row_count=rows,
            amount_nanos=amount,
            sha256=sha256,
            size_bytes=size,
            archived_at=clock(),
        )
    )
    session.flush()
    return ArchiveResult(
        month, rows, amount, path, size, time.perf_counter() - started, dry_run=False, archived=True
    )


def months_with_raw_events(session: Session, before: date) -> list[date]:
    """The UTC months before ``before`` that still hold raw events, oldest first."""
    start, _ = month_bounds(before)
    oldest = session.scalar(select(func.min(UsageEvent.occurred_at)).where(UsageEvent.occurred_at < start))
    if oldest is None:
        return []
    months = []
    month = month_of(oldest)
    while month < before:
        first, end = month_bounds(month)
        event = UsageEvent
        within = (event.occurred_at >= first, event.occurred_at < end)
        if session.scalar(select(event.id).where(*within).limit(1)):
            months.append(month)
        month = add_months(month, 1)
    return months


def check_before(before: date, now: datetime) -> None:
    """Refuse ``--before`` months that reach into the retention period or the lateness window."""
    limit = retention_limit(now)
    if before > limit:
        raise ValidationError(
            f"--before {before:%Y-%m} would archive months inside the retention period "
            f"({RETENTION_VARIABLE} = {retention_months()} months) or the lateness window "
            f"(METERLINE_MAX_LATENESS_DAYS = {max_lateness().days} days); the latest --before allowed "
            f"now is {limit:%Y-%m}",
            code="month_too_recent",
            field="before",
        )


# --- reading back --------------------------------------------------------------------------------


def archived_months(session: Session, start: datetime, end: datetime) -> list[date]:
    """Archived UTC months that overlap ``[start, end)``."""
    first = month_of(start)
    last = month_of(end - timedelta(microseconds=1))
    return list(
        session.scalars(
            select(UsageArchive.month)
            .where(UsageArchive.month >= first, UsageArchive.month <= last)
            .order_by(UsageArchive.month)
        )
    )


def archive_path(record: UsageArchive) -> Path:
    """The file of an archived month: where it was written, else in today's archive directory."""
    for path in (Path(record.path), archive_dir() / file_name(record.month)):
        if path.is_file():
            return path
    raise NotFound(
        f"the archive of {record.month:%Y-%m} is not at {record.path} nor in {archive_dir()} "
        f"({ARCHIVE_DIR_VARIABLE})",
        code="archive_missing",
    )


def read_archived_events(
    session: Session,
    month: date,
    account_id: str,
    *,
    columns: Sequence[str] = COLUMNS,
    windows: Sequence[tuple[datetime, datetime]] = (),
) -> Iterator[dict[str, Any]]:
    """The archived events of ``account_id`` in ``month``, in (occurred_at, id) order, as dicts of
    exact Python values (ints, aware UTC datetimes, str); only those inside one of ``windows`` if given."""
    record = session.get(UsageArchive, month.replace(day=1))
    if record is None:
        raise NotFound(f"{month:%Y-%m} is not archived", code="not_archived", field="month")
    dataset = ds.dataset(archive_path(record), format="parquet", schema=SCHEMA)
    condition = ds.field("account_id") == account_id
    if windows:
        inside = None
        for low, high in windows:
            one = (ds.field("occurred_at") >= pa.scalar(low, type=SCHEMA.field("occurred_at").type)) & (
                ds.field("occurred_at") < pa.scalar(high, type=SCHEMA.field("occurred_at").type)
            )
            inside = one if inside is None else inside | one
        condition = condition & inside
    for batch in dataset.to_batches(  # one thread: batches in file order
        columns=list(columns), filter=condition, batch_size=CHUNK_ROWS, use_threads=False
    ):
        yield from batch.to_pylist()


# --- the periodic job ----------------------------------------------------------------------------

CHECKED_SETTING = "archive.retention_checked_before"


def claim_due_months(session: Session, *, clock: Clock = system_clock) -> list[date]:
    """The periodic jobs' step: the months now past the retention period that hold raw events.

    Cheap when there is nothing to do: one settings row says up to which month this was last done,
    and only when the retention limit moves on (once a month) are the events looked at. The row is
    updated here, before archiving: a month that fails is logged and left for ``meterline events
    archive``, never retried every minute (each try would write the whole file again).
    """
    from core.db.models import Setting

    limit = retention_limit(clock())
    stored = session.get(Setting, CHECKED_SETTING)
    if stored is not None and stored.value == limit.isoformat():
        return []
    if stored is None:
        session.add(Setting(key=CHECKED_SETTING, value=limit.isoformat()))
    else:
        stored.value = limit.isoformat()
    months = months_with_raw_events(session, limit)
    session.flush()
    return months
