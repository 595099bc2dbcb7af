"""Bare database baselines for the ingest bench: the database's own pace on the same events.

Issue 11 defines the baseline: for the same events and batches, PostgreSQL ``COPY`` into a
temporary table, ``INSERT … ON CONFLICT DO NOTHING`` of the keys into the dedupe table
(``usage_event_keys``, under the month of arrival) and of the events whose key went in into
the events table, the rollup upserts (hourly and daily, as the schema has) and a balance
update (one ``UPDATE`` per account per batch), from as many connections as the HTTP run has
clients, each taking the next batch as the clients do. SQLite likewise (``INSERT OR IGNORE``
of the keys, the events they let in, both upserts, the balance updates) from one connection:
SQLite has one writer. The application's look-up of the window's earlier months is left out.

Both write into a fresh copy of the seeded bench database, so the tables, indexes and
CHECK constraints are the ones ingestion writes to. Nothing of the application runs: no
HTTP, no parsing or validation, no rating (an amount per unit of meter stands in), no
dedupe lookup, no ingest batch row, no ledger entries, no grants. The rows are prepared
before the clock starts; the clock runs from the first batch to the last commit.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors

# Nano-credits per unit: a stand-in for rating, so that rollups and balances move by real amounts.
PRICE_NANOS = {
    "input_tokens": 2_500,
    "output_tokens": 12_000,
    "requests": 1_000_000,
    "cached_input_tokens": 250,
}
MAX_DEADLOCK_RETRIES = 5

# The temporary table COPY fills (one per connection, emptied at each commit).
_INCOMING = (
    "CREATE TEMP TABLE incoming (account_id text, event_id text, meter_id int8, quantity int8, "
    "occurred_at timestamptz, usage_date date, model text, project text, api_key text, dimensions text, "
    "amount_nanos int8, content_hash text, received_at timestamptz) ON COMMIT DELETE ROWS"
)
_INCOMING_TYPES = (
    "text",
    "text",
    "int8",
    "int8",
    "timestamptz",
    "date",
    "text",
    "text",
    "text",
    "text",
    "int8",
    "text",
    "timestamptz",
)
_ROLLUP_KEYS = "meter_id, model, project, api_key"


def _rollup_upsert(table: str, period_column: str, period_expression: str) -> str:
    keys = f"account_id, {period_column}, {_ROLLUP_KEYS}"
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in ("quantity", "amount_nanos", "event_count"))
    # Sorted, so that two connections take the rows' locks in the same order (no deadlock).
    return (
        f"INSERT INTO {table} ({keys}, quantity, amount_nanos, event_count) "
        f"SELECT account_id, {period_expression}, {_ROLLUP_KEYS}, sum(quantity), sum(amount_nanos), count(*) "
        f"FROM ins GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6 "
        f"ON CONFLICT ({keys}) DO UPDATE SET {adds}"
    )


# One statement: insert the new events, add them to both rollups, return each account's sum.
_PG_WRITE = f"""
WITH claimed AS (
    INSERT INTO usage_event_keys (account_id, event_id, received_month, content_hash, occurred_at)
    SELECT account_id, event_id, date_trunc('month', received_at AT TIME ZONE 'UTC')::date, content_hash,
           occurred_at
    FROM incoming ORDER BY account_id, event_id
    ON CONFLICT (account_id, event_id, received_month) DO NOTHING
    RETURNING account_id, event_id
), ins AS (
    INSERT INTO usage_events (account_id, event_id, meter_id, quantity, occurred_at, usage_date, model,
                              project, api_key, dimensions, amount_nanos, content_hash, batch_id, received_at)
    SELECT DISTINCT ON (i.account_id, i.event_id) i.account_id, i.event_id, meter_id, quantity, occurred_at,
           usage_date, model, project, api_key, dimensions::json, amount_nanos, content_hash, %(batch_id)s,
           received_at
    FROM incoming i JOIN claimed c ON c.account_id = i.account_id AND c.event_id = i.event_id
    RETURNING account_id, occurred_at, usage_date, {_ROLLUP_KEYS}, quantity, amount_nanos
), hourly AS (
    {_rollup_upsert("usage_rollup_hourly", "hour_start", "date_trunc('hour', occurred_at)")}
), daily AS (
    {_rollup_upsert("usage_rollup_daily", "usage_date", "usage_date")}
)
SELECT account_id, sum(amount_nanos)::int8 FROM ins GROUP BY account_id ORDER BY account_id
"""
_BALANCE = "UPDATE accounts SET balance_nanos = balance_nanos - %s WHERE id = %s"

# Row: the temp table's columns, in order.
BareRow = tuple[str, str, int, int, datetime, date, str, str, str, str, int, str, datetime]


@dataclass(frozen=True)
class BareResult:
    seconds: float
    deadlocks_retried: int = 0


def prepare(
    batches: Sequence[Sequence[dict[str, Any]]], meter_ids: dict[str, int], now: datetime
) -> list[list[BareRow]]:
    """The rows each batch writes: what validation and rating would hand the store, made up front."""
    prepared = []
    for batch in batches:
        rows: list[BareRow] = []
        for event in batch:
            dims = event.get("dimensions") or {}
            dims_json = json.dumps(dims, separators=(",", ":"))
            occurred = datetime.fromisoformat(event["timestamp"]).astimezone(UTC)
            quantity = event["quantity"]
            content = f"{event['account_id']}|{event['meter']}|{quantity}|{occurred.isoformat()}|{dims_json}"
            rows.append(
                (
                    event["account_id"],
                    event["event_id"],
                    meter_ids[event["meter"]],
                    quantity,
                    occurred,
                    occurred.date(),  # the bench accounts keep UTC days
                    dims.get("model", ""),
                    dims.get("project", ""),
                    dims.get("api_key", ""),
                    dims_json,
                    quantity * PRICE_NANOS[event["meter"]],
                    hashlib.blake2b(content.encode(), digest_size=16).hexdigest(),
                    now,
                )
            )
        prepared.append(rows)
    return prepared


def meter_ids_postgres(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        return {name: meter_id for meter_id, name in conn.execute("SELECT id, name FROM meters")}


def meter_ids_sqlite(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {name: meter_id for meter_id, name in conn.execute("SELECT id, name FROM meters")}
    finally:
        conn.close()


def _write_batch_postgres(conn: psycopg.Connection, rows: list[BareRow], batch_id: int) -> None:
    with conn.transaction():
        with conn.cursor() as cursor, cursor.copy("COPY incoming FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_INCOMING_TYPES)
            for row in rows:
                copy.write_row(row)
        spent = conn.execute(_PG_WRITE, {"batch_id": batch_id}).fetchall()
        with conn.cursor() as cursor:
            cursor.executemany(_BALANCE, [(amount, account_id) for account_id, amount in spent])


def bare_postgres(conninfo: str, batches: list[list[BareRow]], connections: int) -> BareResult:
    """The baseline on PostgreSQL from ``connections`` threads, each with its own connection."""
    conns = []
    for _ in range(connections):
        conn = psycopg.connect(conninfo, autocommit=True)
        conn.execute("SET TimeZone = 'UTC'")  # hour_start is the UTC hour, as ingestion computes it
        conn.execute(_INCOMING)
        conns.append(conn)
    deadlocks = [0]

    def write(conn: psycopg.Connection, index: int, rows: list[BareRow]) -> None:
        for attempt in range(MAX_DEADLOCK_RETRIES + 1):
            try:
                _write_batch_postgres(conn, rows, 1_000_000 + index)
                return
            except psycopg.errors.DeadlockDetected:
                if attempt == MAX_DEADLOCK_RETRIES:
                    raise
                deadlocks[0] += 1

    try:
        seconds = _run_threads(conns, batches, write)
    finally:
        for conn in conns:
            conn.close()
    return BareResult(seconds, deadlocks[0])


def _run_threads(
    conns: list[psycopg.Connection],
    batches: list[list[BareRow]],
    write: Callable[[psycopg.Connection, int, list[BareRow]], None],
) -> float:
    """Each thread takes the next batch, as the HTTP clients do; seconds from start to the last commit."""
    lock = threading.Lock()
    next_batch = [0]
    errors: list[BaseException] = []
    ready = threading.Barrier(len(conns) + 1)

    def worker(conn: psycopg.Connection) -> None:
        ready.wait()
        while not errors:
            with lock:
                index = next_batch[0]
                next_batch[0] += 1
            if index >= len(batches):
                return
            try:
                write(conn, index, batches[index])
            except BaseException as error:  # reported by the caller, after every thread stopped
                errors.append(error)
                return

    threads = [threading.Thread(target=worker, args=(conn,)) for conn in conns]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"bare baseline failed: {errors[0]!r}") from errors[0]
    return elapsed


def _sqlite_text(moment: datetime) -> str:
    """SQLAlchemy's SQLite text of a UTC datetime, as ingestion writes it."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_rollup(table: str, period_column: str, period_expression: str) -> str:
    keys = f"account_id, {period_column}, {_ROLLUP_KEYS}"
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in ("quantity", "amount_nanos", "event_count"))
    return (
        f"INSERT INTO {table} ({keys}, quantity, amount_nanos, event_count) "
        f"SELECT account_id, {period_expression}, {_ROLLUP_KEYS}, sum(quantity), sum(amount_nanos), count(*) "
        f"FROM usage_events WHERE id > ? GROUP BY 1, 2, 3, 4, 5, 6 "
        f"ON CONFLICT ({keys}) DO UPDATE SET {adds}"
    )


_SQLITE_COLUMNS = (
    "account_id, event_id, meter_id, quantity, occurred_at, usage_date, "
    "model, project, api_key, dimensions, amount_nanos, content_hash, received_at, batch_id"
)
# A batch's rows, one per key (a key twice in a batch counts once), then the keys the dedupe
# table lets in (rowids past the last before the batch), then their events.
_SQLITE_INCOMING = (
    "CREATE TEMP TABLE incoming (account_id, event_id, meter_id, quantity, occurred_at, usage_date, model, "
    "project, api_key, dimensions, amount_nanos, content_hash, received_at, batch_id, "
    "PRIMARY KEY (account_id, event_id))"
)
_SQLITE_INSERT = f"INSERT OR IGNORE INTO incoming ({_SQLITE_COLUMNS}) VALUES ({', '.join('?' * 14)})"
_SQLITE_KEYS = (
    "INSERT OR IGNORE INTO usage_event_keys "
    "(account_id, event_id, received_month, content_hash, occurred_at) "
    "SELECT account_id, event_id, substr(received_at, 1, 7) || '-01', content_hash, occurred_at FROM incoming"
)
_SQLITE_EVENTS = (
    f"INSERT INTO usage_events ({_SQLITE_COLUMNS}) SELECT "
    + ", ".join(f"i.{c.strip()}" for c in _SQLITE_COLUMNS.split(","))
    + " FROM incoming i JOIN usage_event_keys k ON k.account_id = i.account_id "
    "AND k.event_id = i.event_id AND k.rowid > ?"
)
_SQLITE_HOURLY = _sqlite_rollup(
    "usage_rollup_hourly", "hour_start", "strftime('%Y-%m-%d %H:00:00.000000', occurred_at)"
)
_SQLITE_DAILY = _sqlite_rollup("usage_rollup_daily", "usage_date", "usage_date")


def bare_sqlite(path: Path, batches: list[list[BareRow]]) -> BareResult:
    """The baseline on SQLite (WAL, synchronous=NORMAL as the app runs it) from one connection."""
    sqlite_batches = [
        [
            (
                *row[:4],
                _sqlite_text(row[4]),
                row[5].isoformat(),
                *row[6:12],
                _sqlite_text(row[12]),
                1_000_000 + i,
            )
            for row in rows
        ]
        for i, rows in enumerate(batches)
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        conn.execute(_SQLITE_INCOMING)
        for rows in sqlite_batches:
            conn.execute("BEGIN IMMEDIATE")
            last_id = conn.execute("SELECT coalesce(max(id), 0) FROM usage_events").fetchone()[0]
            last_key = conn.execute("SELECT coalesce(max(rowid), 0) FROM usage_event_keys").fetchone()[0]
            conn.executemany(_SQLITE_INSERT, rows)
            conn.execute(_SQLITE_KEYS)
            conn.execute(_SQLITE_EVENTS, (last_key,))
            conn.execute("DELETE FROM incoming")
            # The rows this batch inserted are the ones past the last id (the keys let in no others).
            conn.execute(_SQLITE_HOURLY, (last_id,))
            conn.execute(_SQLITE_DAILY, (last_id,))
            spent = conn.execute(
                "SELECT account_id, sum(amount_nanos) FROM usage_events WHERE id > ? "
                "GROUP BY account_id ORDER BY account_id",
                (last_id,),
            ).fetchall()
            conn.executemany(
                "UPDATE accounts SET balance_nanos = balance_nanos - ? WHERE id = ?",
                [(amount, account_id) for account_id, amount in spent],
            )
            conn.execute("COMMIT")
        return BareResult(time.perf_counter() - started)
    finally:
        conn.close()
