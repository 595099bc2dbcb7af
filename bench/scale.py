"""Scale benchmark: ingestion, usage view, dedupe and archive over a table already holding N events.

    python -m bench scale [--preload N] [--layout today|head|both] [--rebuild] [--drop] …
    python -m bench ingest --preload N …          (the same part, reached from the ingest bench)

Two scratch PostgreSQL databases, kept between runs (``--rebuild`` fills them again,
``--drop`` drops them and stops):

- *today's table*: migrated to alembic revision 0017 (one ``usage_events`` table, with the
  unique ``(account_id, event_id)`` index every insert probes);
- *head*: migrated to the newest revision (from 0018 on: ``usage_events`` partitioned by
  month, dedupe in ``usage_event_keys``).

Each row of the output is labelled with the layout found in the database at run time
(``pg_partitioned_table``), not with what was asked for: before the partitioning is merged
both databases hold the same one table.

The fill (``--preload N``, default 50,000,000) spreads N events over 13 calendar months
(the current one up to now) and ``--accounts`` accounts (1,000; sizes skewed: account k
gets a share proportional to 1/(k+1), so ``acc_0000`` holds about 13 %), three meters
plus cached tokens, four models, two projects and API keys per account. Events are
written by binary ``COPY`` from a generator, chunk by chunk (never N rows in memory), with
the events' indexes dropped during the load and re-created after; then by SQL: one
ingest batch per account and month, the hourly and daily rollups (``INSERT … SELECT …
GROUP BY``) and, when the table exists, the ``usage_event_keys`` of the events received
inside the dedupe window. Each account gets a purchased grant that covers its usage and
10,000 credits more, and one usage debit per batch, so ``meterline ledger check`` passes
(``--ledger-check`` runs it after the fill: minutes at 50M). Content hashes are the real
ones, so a resent event is recognised as the same event.

Measured on each layout:

- the fill's pace (events/s, each step's time) and the size on disk per event: table
  (heap + TOAST, summed over partitions) and each index, plus ``usage_event_keys``;
- ingestion of new events (``--events``, default 100,000; bench/ingest.py's bench shape
  over the ``--ingest-accounts`` largest accounts, default 20 as there; 5 % resent) through
  ``meterline api serve --workers 2`` from ``--clients`` kept-alive clients (its client):
  events/s and CPU per 1,000 events;
  each unique event stored once, balances moved by exactly the new events' amounts;
- the usage view (``core.usage.views.usage_frame``, 30 days by day by meter) of the largest
  account, p50/p95 of ``--runs``;
- dedupe: a sample of stored events resent unchanged (received in the last 7 days, from the
  previous calendar month within the lateness limit, and from older months, which are past
  the limit): none may be stored or debited again (stored count and balances of the sampled
  accounts unchanged);
- the archive (``core.usage.archive.archive_month``, when this build has it, on databases
  at the newest revision): the oldest month still held, seconds per million events. The
  month is gone afterwards: the next run archives the next one (``--no-archive`` skips).

After the partitioning is merged, this build's server expects the new schema: on the 0017
database the ingestion and dedupe runs then need the old code, given with ``--today-code
DIR`` (a checkout of the commit before the merge, e.g. ``git worktree add /tmp/ml-0017
<commit>``), which the server is started from (``PYTHONPATH``); without it they are skipped
there and said so.

A 50M fill needs about 30 GB per database: the bench checks the free space of PostgreSQL's
data directory first and refuses when it is short (``--skip-disk-check`` to override).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import psycopg
from sqlalchemy import select

from bench import _data
from bench._data import database_urls
from bench._report import Row, median, p95, print_table
from bench._scratch import CARD, TOKEN
from bench.ingest import MODELS, PROJECTS, SERVER_ENV, Workload, _hourly_keys_per_1000, post_all
from bench.usage_view import _time
from core.metering.partitions import key_window_start, month_start
from core.metering.store import EVENT_COLUMNS, PG_EVENT_TYPES

TODAY_REVISION = "0017"
DB_NAMES = {"today": "meterline_bench_scale_0017", "head": "meterline_bench_scale_head"}
LABELS = {"today": "today's table (0017)", "head": "head"}
MARKER_KEY = "bench.scale_dataset"
MONTHS = 13
CHUNK_EVENTS = 200_000
PROGRESS_EVERY = 1_000_000
BYTES_PER_EVENT_ESTIMATE = 600  # table + indexes + rollups + keys, measured 2M-event fills: about 500
DISK_MARGIN_BYTES = 5 * 1024**3
HEADROOM_NANOS = 10_000 * 10**9  # credits each account holds above its preloaded usage
NANOS_PER_CREDIT = 10**9
ZONES = {3: "America/New_York", 6: "Europe/Berlin", 9: "Asia/Tokyo"}  # account k % 10 -> zone
# Meter, share of events (cumulative), nanos per unit (atlas-mini input is cheaper).
FILL_METERS = (
    ("input_tokens", 0.45, 3_000),
    ("output_tokens", 0.80, 15_000),
    ("cached_input_tokens", 0.90, 300),
    ("requests", 1.00, 1_000_000),
)
WIRE_METERS = ("input_tokens", "output_tokens", "requests")  # the ingestion workload's, as bench/ingest
_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[bench.scale {time.perf_counter() - _STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def account_id(k: int) -> str:
    return f"acc_{k:04d}"


def account_zone(k: int) -> str:
    return ZONES.get(k % 10, "UTC")


def cumulative_weights(accounts: int) -> list[float]:
    total, out = 0.0, []
    for k in range(accounts):
        total += 1.0 / (k + 1)
        out.append(total)
    return out


def month_starts(end: datetime, months: int) -> list[datetime]:
    """First instants (UTC) of the ``months`` calendar months ending with ``end``'s, plus the next one."""
    year, month = end.year, end.month
    starts = []
    for _ in range(months + 1):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    starts.reverse()
    nxt = (end.year + 1, 1) if end.month == 12 else (end.year, end.month + 1)
    return [*starts[1:], datetime(nxt[0], nxt[1], 1, tzinfo=UTC)]


# Databases ------------------------------------------------------------------------------------


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from core.db.migrate import alembic_config

    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())


def _admin() -> psycopg.Connection:
    return psycopg.connect(_data._admin_conninfo(), autocommit=True)


def database_exists(name: str) -> bool:
    with _admin() as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def drop_database(name: str) -> None:
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def read_marker(psycopg_url: str) -> dict[str, Any] | None:
    try:
        with psycopg.connect(psycopg_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = %s", (MARKER_KEY,)).fetchone()
    except psycopg.Error:
        return None
    return json.loads(row[0]) if row else None


def write_marker(psycopg_url: str, marker: dict[str, Any]) -> None:
    with psycopg.connect(psycopg_url) as conn:
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (MARKER_KEY, json.dumps(marker)),
        )


@dataclass(frozen=True)
class Layout:
    partitioned: bool
    event_partitions: int  # partitions of usage_events (0: one table)
    keys_table: bool  # usage_event_keys exists
    revision: str

    def describe(self) -> str:
        if not self.partitioned:
            text = "one usage_events table"
        else:
            text = f"usage_events partitioned ({self.event_partitions} partitions)"
        if self.keys_table:
            text += " + usage_event_keys"
        return f"{text}, revision {self.revision}"


def detect_layout(psycopg_url: str) -> Layout:
    with psycopg.connect(psycopg_url) as conn:
        partitioned = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'usage_events'::regclass)"
        ).fetchone()[0]
        parts = 0
        if partitioned:
            parts = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'usage_events'::regclass"
            ).fetchone()[0]
        keys = conn.execute("SELECT to_regclass('usage_event_keys') IS NOT NULL").fetchone()[0]
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    return Layout(bool(partitioned), int(parts), bool(keys), str(revision))


def check_disk(events: int, databases: int) -> tuple[bool, str]:
    """Whether PostgreSQL's data directory has room for ``databases`` fills of ``events`` events."""
    with _admin() as admin:
        directory = admin.execute("SHOW data_directory").fetchone()[0]
    path = Path(directory)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        free = shutil.disk_usage("/").free
    need = events * BYTES_PER_EVENT_ESTIMATE * databases + DISK_MARGIN_BYTES
    gib = 1024**3
    note = f"{free / gib:,.1f} GiB free at {path}, a fill of {databases} x {events:,} events needs about "
    note += (
        f"{need / gib:,.1f} GiB ({BYTES_PER_EVENT_ESTIMATE} B/event + {DISK_MARGIN_BYTES // gib} GiB margin)"
    )
    return free >= need, note


# The fill -------------------------------------------------------------------------------------


@dataclass
class FillPlan:
    events: int
    accounts: int
    start: datetime
    end: datetime
    months: list[datetime]  # month starts, plus the month after the last
    meter_ids: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)

    def batch_id(self, month_index: int, k: int) -> int:
        return month_index * self.accounts + k + 1


def _combos(accounts: int) -> list[list[tuple[str, str, str, str, list[tuple[str, str]]]]]:
    """Per account, its (model, project, api_key, dims JSON, sorted dims) combinations, model-major."""
    out = []
    for k in range(accounts):
        rows = []
        for model in MODELS:
            for p, project in enumerate(PROJECTS):
                dims = {"model": model, "project": f"{project}-{k}", "api_key": f"key_{k}_{p}"}
                rows.append((model, dims["project"], dims["api_key"], json.dumps(dims), sorted(dims.items())))
        out.append(rows)
    return out


# The stored columns, id first: the fill writes ids of its own.
_EVENT_COPY_COLUMNS = ", ".join(("id", *EVENT_COLUMNS))
_EVENT_COPY_TYPES = ("int8", *PG_EVENT_TYPES)


class EventSource:
    """The fill's events in time order, written chunk by chunk; batch totals kept as it goes."""

    def __init__(self, plan: FillPlan, seed: int = 20) -> None:
        self.plan = plan
        self.rng = random.Random(seed)
        self.cumulative = cumulative_weights(plan.accounts)
        self.combos = _combos(plan.accounts)
        self.ids = [account_id(k) for k in range(plan.accounts)]
        self.zones = [account_zone(k) for k in range(plan.accounts)]
        self.start_ts = plan.start.timestamp()
        self.step = (plan.end.timestamp() - self.start_ts) / plan.events
        self.bounds = [m.timestamp() for m in plan.months]
        batches = len(plan.months) * plan.accounts
        self.batch_counts = [0] * batches
        self.batch_amounts = [0] * batches
        self._offsets: dict[tuple[str, int], timedelta] = {}
        self.meters = [(name, share, price, plan.meter_ids[name]) for name, share, price in FILL_METERS]

    def _local_date(self, zone: str, moment: datetime, ts: int) -> date:
        if zone == "UTC":
            return moment.date()
        key = (zone, ts // 3600)
        offset = self._offsets.get(key)
        if offset is None:
            offset = self._offsets[key] = moment.astimezone(ZoneInfo(zone)).utcoffset() or timedelta()
        return (moment + offset).date()

    def write(self, copy: Any, lo: int, hi: int) -> None:
        """Write events ``lo``..``hi - 1`` (0-based) to ``copy``."""
        rng = self.rng
        rand = rng.random
        accounts = rng.choices(range(self.plan.accounts), cum_weights=self.cumulative, k=hi - lo)
        fromtimestamp = datetime.fromtimestamp
        blake2b = hashlib.blake2b
        dumps = orjson.dumps
        bounds = self.bounds
        step = self.step
        start_ts = self.start_ts
        combos = self.combos
        ids = self.ids
        zones = self.zones
        meters = self.meters
        counts = self.batch_counts
        amounts = self.batch_amounts
        n_accounts = self.plan.accounts
        two_seconds = timedelta(seconds=2)
        write_row = copy.write_row
        for i, k in zip(range(lo, hi), accounts, strict=True):
            ts = int(start_ts + (i + rand()) * step)
            moment = fromtimestamp(ts, UTC)
            r = rand()
            meter = meters[-1]
            for candidate in meters:
                if r < candidate[1]:
                    meter = candidate
                    break
            name, _share, price, meter_id = meter
            combo = combos[k][int(len(combos[k]) * rand() ** 1.6)]
            if name == "requests":
                quantity = 1
            else:
                q = rand()
                quantity = 50 + int(q * q * 7_950)
                if name == "input_tokens" and combo[0] == "atlas-mini":
                    price = 500
            amount = quantity * price
            account = ids[k]
            digest = blake2b(
                dumps([account, name, quantity, moment.isoformat(), combo[4]]), digest_size=16
            ).hexdigest()
            month = bisect.bisect_right(bounds, ts) - 1
            batch = month * n_accounts + k
            counts[batch] += 1
            amounts[batch] += amount
            write_row(
                (
                    i + 1,
                    account,
                    f"evt_{i + 1:010d}",
                    meter_id,
                    quantity,
                    moment,
                    self._local_date(zones[k], moment, ts),
                    combo[0],
                    combo[1],
                    combo[2],
                    combo[3],
                    amount,
                    None,
                    digest,
                    batch + 1,
                    moment + two_seconds,
                )
            )


def _ensure_partitions(url: str, months: list[datetime]) -> str:
    """Create the months' event partitions when this build has ``core.metering.partitions``."""
    from core.db.engine import make_engine, unit_of_work
    from core.metering import partitions

    engine = make_engine(url)
    try:
        with unit_of_work(engine, write=True) as session:
            if not partitions.is_partitioned(session):
                return "not partitioned"
            partitions.ensure_event_partitions(session, [m.date() for m in months])
            made = partitions.event_partitions(session)
    finally:
        engine.dispose()
    return f"{len(made)} monthly partitions"


def _seed_catalogue(url: str, plan: FillPlan) -> None:
    """Rate card (in force from before the first event) and the accounts."""
    from core.accounts import create_account
    from core.db.engine import make_engine, unit_of_work
    from core.db.models import Meter
    from core.rating import load_rate_card

    first = (plan.start - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    change = (plan.end - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    card = tomllib.loads(CARD.replace("2026-01-01T00:00:00Z", first).replace("{change}", change))
    engine = make_engine(url)
    try:
        with unit_of_work(engine, write=True) as session:
            load_rate_card(session, card, at=plan.end, allow_backdated=True)
            for k in range(plan.accounts):
                create_account(
                    session,
                    account_id=account_id(k),
                    name=f"Scale bench {k:04d}",
                    timezone=account_zone(k),
                    at=plan.start - timedelta(days=1),
                    rate_card_key="standard",
                    default_alerts=False,
                )
            plan.meter_ids.update(
                {name: meter_id for name, meter_id in session.execute(select(Meter.name, Meter.id))}
            )
    finally:
        engine.dispose()


def _copy_events(psycopg_url: str, source: EventSource) -> None:
    plan = source.plan
    began = time.perf_counter()
    done = 0
    next_report = PROGRESS_EVERY
    with psycopg.connect(psycopg_url) as conn:
        conn.execute("SET synchronous_commit = off")
        for lo in range(0, plan.events, CHUNK_EVENTS):
            hi = min(lo + CHUNK_EVENTS, plan.events)
            with conn.cursor() as cursor:
                sql = f"COPY usage_events ({_EVENT_COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)"
                with cursor.copy(sql) as copy:
                    copy.set_types(_EVENT_COPY_TYPES)
                    source.write(copy, lo, hi)
            conn.commit()
            done = hi
            if done >= next_report or done == plan.events:
                elapsed = time.perf_counter() - began
                left = (plan.events - done) / (done / elapsed)
                log(f"  events: {done:,}/{plan.events:,} ({done / elapsed:,.0f}/s, about {left:,.0f} s left)")
                next_report += PROGRESS_EVERY


def _write_batches(psycopg_url: str, source: EventSource) -> None:
    plan = source.plan
    with psycopg.connect(psycopg_url) as conn:
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY ingest_batches (id, source, received_at, accepted_count, duplicate_count, "
                "rejected_count) FROM STDIN"
            ) as copy,
        ):
            for month_index in range(len(plan.months) - 1):
                received = min(plan.months[month_index + 1], plan.end) - timedelta(seconds=1)
                for k in range(plan.accounts):
                    batch = month_index * plan.accounts + k
                    if source.batch_counts[batch]:
                        copy.write_row((batch + 1, "bench", received, source.batch_counts[batch], 0, 0))
        sequence = conn.execute("SELECT pg_get_serial_sequence('ingest_batches', 'id')").fetchone()[0]
        if sequence:
            conn.execute("SELECT setval(%s, %s)", (sequence, len(source.batch_counts) + 1))


def _fill_rollups_and_keys(psycopg_url: str, plan: FillPlan, keys_table: bool) -> None:
    with psycopg.connect(psycopg_url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET work_mem = '256MB'")
        for table, period in (
            ("usage_rollup_hourly", ("hour_start", "date_trunc('hour', occurred_at)")),
            ("usage_rollup_daily", ("usage_date", "usage_date")),
        ):
            began = time.perf_counter()
            conn.execute(
                f"INSERT INTO {table} (account_id, {period[0]}, meter_id, model, project, api_key, "
                "quantity, amount_nanos, event_count) "
                f"SELECT account_id, {period[1]}, meter_id, model, project, api_key, "
                "sum(quantity), sum(amount_nanos), count(*) FROM usage_events GROUP BY 1, 2, 3, 4, 5, 6"
            )
            conn.commit()
            plan.timings[f"rollup {table.removeprefix('usage_rollup_')}"] = time.perf_counter() - began
            log(f"  {table}: {time.perf_counter() - began:.1f} s")
        if keys_table:
            began = time.perf_counter()
            first = window_start(plan.end)
            count = conn.execute(
                "INSERT INTO usage_event_keys "
                "(account_id, event_id, received_month, content_hash, occurred_at) "
                "SELECT account_id, event_id, date_trunc('month', received_at)::date, content_hash, "
                "occurred_at FROM usage_events WHERE received_at >= %s",
                (first,),
            ).rowcount
            conn.commit()
            plan.timings["dedupe keys"] = time.perf_counter() - began
            log(
                f"  usage_event_keys: {count:,} keys received since {first:%Y-%m-%d}: "
                f"{time.perf_counter() - began:.1f} s"
            )


def window_start(now: datetime) -> datetime:
    """First instant of the first month of keys the dedupe window still reads at ``now``."""
    return month_start(key_window_start(now))


def _fill_ledger(url: str, psycopg_url: str, source: EventSource) -> None:
    """A purchased grant per account (its usage + headroom) and one usage debit per batch, by SQL."""
    from core.db.engine import make_engine, unit_of_work
    from core.ledger import grant_credits, reasons

    plan = source.plan
    months = len(plan.months) - 1
    spent = [
        sum(source.batch_amounts[m * plan.accounts + k] for m in range(months)) for k in range(plan.accounts)
    ]
    engine = make_engine(url)
    grant_ids: dict[str, int] = {}
    try:
        with unit_of_work(engine, write=True) as session:
            for k in range(plan.accounts):
                amount = spent[k] + spent[k] // 4 + HEADROOM_NANOS
                grant = grant_credits(
                    session,
                    account_id=account_id(k),
                    amount_nanos=amount,
                    source="purchased",
                    at=plan.start - timedelta(hours=12),
                    cost_basis_cents=amount // 10_000_000,
                    description="Scale bench top-up",
                )
                grant_ids[account_id(k)] = grant.grant_id
    finally:
        engine.dispose()
    with psycopg.connect(psycopg_url) as conn:
        balances = dict(conn.execute("SELECT id, balance_nanos FROM accounts").fetchall())
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY ledger_entries (account_id, grant_id, amount_nanos, balance_after_nanos, reason, "
                "reference, memo, effective_at, created_at) FROM STDIN"
            ) as copy,
        ):
            for k in range(plan.accounts):
                acc = account_id(k)
                balance = balances[acc]
                for m in range(months):
                    amount = source.batch_amounts[m * plan.accounts + k]
                    if not amount:
                        continue
                    balance -= amount
                    at = min(plan.months[m + 1], plan.end) - timedelta(seconds=1)
                    copy.write_row(
                        (
                            acc,
                            grant_ids[acc],
                            -amount,
                            balance,
                            reasons.USAGE,
                            f"batch:{plan.batch_id(m, k)}",
                            "",
                            at,
                            at,
                        )
                    )
        payload = json.dumps(
            [[account_id(k), spent[k], grant_ids[account_id(k)]] for k in range(plan.accounts)]
        )
        last = json.dumps(
            {
                account_id(k): max(
                    (
                        plan.batch_id(m, k)
                        for m in range(months)
                        if source.batch_counts[m * plan.accounts + k]
                    ),
                    default=None,
                )
                for k in range(plan.accounts)
            }
        )
        conn.execute(
            "UPDATE credit_grants g SET remaining_nanos = g.remaining_nanos - (s->>1)::bigint "
            "FROM json_array_elements(%s::json) s WHERE g.id = (s->>2)::bigint",
            (payload,),
        )
        conn.execute(
            "UPDATE accounts a SET balance_nanos = a.balance_nanos - (s->>1)::bigint, "
            "last_batch_id = (%s::json->>a.id)::bigint "
            "FROM json_array_elements(%s::json) s WHERE a.id = s->>0",
            (last, payload),
        )


def fill(name: str, revision: str, events: int, accounts: int, ledger_check: bool) -> dict[str, Any]:
    """Create database ``name`` at ``revision`` and fill it; returns the marker it stores."""
    url, psycopg_url = database_urls(name)
    end = datetime.now(UTC).replace(microsecond=0)
    months = month_starts(end, MONTHS)
    plan = FillPlan(events, accounts, months[0], end, months, {})
    began = step = time.perf_counter()

    drop_database(name)
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    from core.db.migrate import upgrade

    upgrade(url, revision)
    partitions_note = _ensure_partitions(url, months)
    _seed_catalogue(url, plan)
    layout = detect_layout(psycopg_url)
    plan.timings["create, migrate, accounts"] = time.perf_counter() - step
    log(f"{name}: migrated to {revision} ({layout.describe()}; {partitions_note}), {accounts:,} accounts")

    step = time.perf_counter()
    restore = _data._drop_event_indexes(psycopg_url)
    source = EventSource(plan)
    log(f"{name}: {events:,} events {plan.start:%Y-%m-%d}..{plan.end:%Y-%m-%d %H:%M} by binary COPY")
    _copy_events(psycopg_url, source)
    plan.timings["events COPY"] = time.perf_counter() - step
    step = time.perf_counter()
    _write_batches(psycopg_url, source)
    plan.timings["batches"] = time.perf_counter() - step

    step = time.perf_counter()
    _data._restore_event_indexes(psycopg_url, restore, events)
    plan.timings["event indexes"] = time.perf_counter() - step

    _fill_rollups_and_keys(psycopg_url, plan, layout.keys_table)
    step = time.perf_counter()
    _fill_ledger(url, psycopg_url, source)
    plan.timings["grants and debits"] = time.perf_counter() - step

    step = time.perf_counter()
    with psycopg.connect(psycopg_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    plan.timings["vacuum analyze"] = time.perf_counter() - step
    total = time.perf_counter() - began
    log(f"{name}: filled in {total:.0f} s ({events / total:,.0f} events/s overall)")

    check = None
    if ledger_check:
        check = run_ledger_check(url)
        log(f"{name}: ledger check after the fill: {check}")
    marker = {
        "events": events,
        "accounts": accounts,
        "months": MONTHS,
        "revision": layout.revision,
        "start": plan.start.isoformat(),
        "end": plan.end.isoformat(),
        "filled_at": datetime.now(UTC).isoformat(),
        "fill_s": total,
        "timings": plan.timings,
        "ledger_check": check,
        "archived": [],
    }
    write_marker(psycopg_url, marker)
    return marker


def run_ledger_check(url: str) -> str:
    from core.db.engine import make_engine
    from core.ledger import run_ledger_check as check

    engine = make_engine(url)
    try:
        report = check(engine)
    finally:
        engine.dispose()
    return "ok" if report.ok else f"{len(report.problems)} problems, first: {report.problems[0]}"


def ensure_filled(key: str, events: int, accounts: int, rebuild: bool, ledger_check: bool) -> dict[str, Any]:
    name = DB_NAMES[key]
    revision = TODAY_REVISION if key == "today" else head_revision()
    _, psycopg_url = database_urls(name)
    marker = None if rebuild else read_marker(psycopg_url)
    if marker is not None:
        same = marker["events"] == events and marker["accounts"] == accounts
        current = detect_layout(psycopg_url).revision == revision
        if same and current:
            age = datetime.now(UTC) - datetime.fromisoformat(marker["end"])
            log(
                f"reusing {name}: {events:,} events filled {marker['filled_at'][:16]} "
                f"in {marker['fill_s']:.0f} s"
                f" (--rebuild to fill again); data ends {age.days} days ago"
            )
            if age > timedelta(days=20):
                log(
                    "  note: the 'recent' dedupe sample and the 30-day view see less data; consider --rebuild"
                )
            return marker
        why = "another size" if not same else f"not at revision {revision}"
        log(f"{name} holds {why}: filling it again")
    return fill(name, revision, events, accounts, ledger_check)


# Measurements ---------------------------------------------------------------------------------


# A relation and, when it is partitioned, its partitions (pg_partition_tree gives no row for a plain
# table); a partitioned parent has no storage of its own, so summing over both counts each byte once.
_TREE = "(SELECT relid FROM pg_partition_tree(%s::regclass) UNION SELECT %s::regclass) AS t(relid)"


def sizes(psycopg_url: str) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(events, [(table or index, bytes)] of usage_events, [(name, bytes)] of other tables)."""
    with psycopg.connect(psycopg_url) as conn:
        # Estimated from the statistics (VACUUM ANALYZE after the fill): a count(*) of 50M takes a while.
        events = conn.execute(
            "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint "
            f"FROM {_TREE} JOIN pg_class c ON c.oid = t.relid AND c.relkind = 'r'",
            ("usage_events",) * 2,
        ).fetchone()[0]
        parts = [
            (
                "table (heap + TOAST)",
                int(
                    conn.execute(
                        f"SELECT coalesce(sum(pg_table_size(relid)), 0) FROM {_TREE}", ("usage_events",) * 2
                    ).fetchone()[0]
                ),
            )
        ]
        for (index,) in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = 'usage_events'::regclass ORDER BY 1"
        ).fetchall():
            size = conn.execute(
                f"SELECT coalesce(sum(pg_relation_size(relid)), 0) FROM {_TREE}", (index, index)
            ).fetchone()[0]
            parts.append((f"index {index}", int(size)))
        others = []
        for table in ("usage_event_keys", "usage_rollup_hourly", "usage_rollup_daily"):
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]:
                size = conn.execute(
                    f"SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM {_TREE}",
                    (table, table),
                ).fetchone()[0]
                rows = conn.execute(
                    "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint "
                    f"FROM {_TREE} JOIN pg_class c ON c.oid = t.relid AND c.relkind = 'r'",
                    (table, table),
                ).fetchone()[0]
                others.append((f"{table} ({rows:,} rows, with indexes)", int(size)))
    return int(events), parts, others


def _wire_event(rng: random.Random, number: int, now: datetime, cumulative: list[float]) -> dict[str, Any]:
    """bench/ingest.py's bench shape over the scale accounts: 3 % up to 10 days late."""
    k = bisect.bisect_left(cumulative, rng.random() * cumulative[-1])
    meter = rng.choice(WIRE_METERS)
    project = rng.randrange(len(PROJECTS))
    age_s = rng.randint(0, 10 * 86_400) if rng.random() < 0.03 else rng.randint(0, 600)
    return {
        "event_id": f"new-{number:08d}-{uuid.uuid4().hex[:8]}",
        "account_id": account_id(k),
        "meter": meter,
        "quantity": 1 if meter == "requests" else rng.randint(50, 8_000),
        "timestamp": (now - timedelta(seconds=age_s)).isoformat(),
        "dimensions": {
            "model": rng.choice(MODELS),
            "project": f"{PROJECTS[project]}-{k}",
            "api_key": f"key_{k}_{project}",
        },
    }


def make_workload(accounts: int, total: int, batch_size: int, duplicates: float, now: datetime) -> Workload:
    rng = random.Random(int(now.timestamp()))
    cumulative = cumulative_weights(accounts)
    sent: list[dict[str, Any]] = []
    batches: list[list[dict[str, Any]]] = []
    unique = produced = 0
    while produced < total:
        size = min(batch_size, total - produced)
        produced += size
        batch, fresh = [], []
        for _ in range(size):
            if sent and rng.random() < duplicates:
                batch.append(sent[rng.randrange(len(sent))])
                continue
            unique += 1
            event = _wire_event(rng, unique, now, cumulative)
            batch.append(event)
            fresh.append(event)
        sent.extend(fresh)
        batches.append(batch)
    bodies = [json.dumps({"events": batch}).encode() for batch in batches]
    return Workload("scale", batches, bodies, total, unique, _hourly_keys_per_1000(batches))


def _balances(psycopg_url: str, accounts: list[str] | None = None) -> dict[str, int]:
    with psycopg.connect(psycopg_url) as conn:
        if accounts is None:
            return dict(conn.execute("SELECT id, balance_nanos FROM accounts").fetchall())
        return dict(
            conn.execute("SELECT id, balance_nanos FROM accounts WHERE id = ANY(%s)", (accounts,)).fetchall()
        )


def _event_counts(psycopg_url: str, accounts: list[str]) -> dict[str, int]:
    with psycopg.connect(psycopg_url) as conn:
        return dict(
            conn.execute(
                "SELECT a, (SELECT count(*) FROM usage_events e WHERE e.account_id = a) "
                "FROM unnest(%s::text[]) AS a",
                (accounts,),
            ).fetchall()
        )


@dataclass
class IngestResult:
    rate: float
    seconds: float
    cpu: str
    spread: str
    ok: bool
    integrity: str


def measure_ingest(
    server: Any, psycopg_url: str, work: Workload, clients: int, even: bool, now: datetime
) -> IngestResult:
    with psycopg.connect(psycopg_url) as conn:
        # The id sequence's position, not max(id): partitioned, no index leads with id (a 50M scan).
        sequence = conn.execute("SELECT pg_get_serial_sequence('usage_events', 'id')").fetchone()[0]
        if sequence:
            max_id = conn.execute(f"SELECT last_value FROM {sequence}").fetchone()[0]
        else:
            max_id = conn.execute("SELECT coalesce(max(id), 0) FROM usage_events").fetchone()[0]
    before = _balances(psycopg_url)
    outcome = post_all(
        server, [work.bodies], events=work.sent, clients=clients, even=even, database_url=psycopg_url
    )
    after = _balances(psycopg_url)
    with psycopg.connect(psycopg_url) as conn:
        stored, amount = conn.execute(
            "SELECT count(*), coalesce(sum(amount_nanos), 0) FROM usage_events "
            "WHERE occurred_at >= %s AND id > %s",
            (now - timedelta(days=11), max_id),
        ).fetchone()
    moved = sum(before[a] - after.get(a, 0) for a in before)
    problems = []
    if outcome.errors:
        problems.append(f"{len(outcome.errors)} requests failed, first: {outcome.errors[0]}")
    if outcome.rejected:
        problems.append(f"{outcome.rejected:,} rejected")
    if stored != work.unique or outcome.accepted != work.unique:
        problems.append(f"{work.unique:,} unique: {stored:,} stored, {outcome.accepted:,} accepted")
    if moved != amount:
        problems.append(f"balances moved by {moved:,} nanos, the new events are rated {amount:,}")
    integrity = (
        "FAILED: " + "; ".join(problems)
        if problems
        else f"{stored:,} stored once, {outcome.duplicates:,} duplicates; "
        "balances moved by exactly their amounts"
    )
    rate = work.sent / outcome.seconds
    log(f"ingest: {rate:,.0f} events/s in {outcome.seconds:.1f} s; {integrity}")
    return IngestResult(rate, outcome.seconds, outcome.cpu, outcome.spread_note(), not problems, integrity)


def _resend_sample(
    psycopg_url: str, now: datetime, per_kind: int, accounts: int
) -> dict[str, list[dict[str, Any]]]:
    """Stored events to resend, as the API takes them, by kind: recent, previous month, older months."""
    this_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    from core.metering.settings import max_lateness

    earliest = now - max_lateness() + timedelta(hours=1)
    ranges = {
        "received in the last 7 days": (now - timedelta(days=7), now),
        "previous month, inside the lateness limit": (
            max(earliest, this_month - timedelta(days=31)),
            this_month,
        ),
        "3 months ago (past the lateness limit)": (now - timedelta(days=100), now - timedelta(days=80)),
        "a year ago": (now - timedelta(days=370), now - timedelta(days=350)),
    }
    rng = random.Random(5)
    sample_accounts = sorted(
        {account_id(rng.randrange(min(accounts, 200))) for _ in range(40)} | {account_id(0)}
    )
    out: dict[str, list[dict[str, Any]]] = {}
    with psycopg.connect(psycopg_url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for kind, (lo, hi) in ranges.items():
            if lo >= hi:
                out[kind] = []
                continue
            per_account = max(1, per_kind // len(sample_accounts))
            rows = conn.execute(
                "SELECT e.event_id, e.account_id, m.name, e.quantity, e.occurred_at, e.dimensions "
                "FROM unnest(%s::text[]) AS a(id) CROSS JOIN LATERAL ("
                "  SELECT * FROM usage_events u WHERE u.account_id = a.id AND u.occurred_at >= %s "
                "  AND u.occurred_at < %s AND u.event_id LIKE 'evt\\_%%' ORDER BY u.occurred_at LIMIT %s) e "
                "JOIN meters m ON m.id = e.meter_id",
                (sample_accounts, lo, hi, per_account),
            ).fetchall()
            out[kind] = [
                {
                    "event_id": event_id,
                    "account_id": account,
                    "meter": meter,
                    "quantity": quantity,
                    "timestamp": occurred.astimezone(UTC).isoformat(),
                    "dimensions": dims,
                }
                for event_id, account, meter, quantity, occurred, dims in rows
            ]
    return out


@dataclass
class DedupeResult:
    ok: bool
    text: str


def measure_dedupe(
    server: Any, psycopg_url: str, now: datetime, per_kind: int, accounts: int
) -> DedupeResult:
    sample = _resend_sample(psycopg_url, now, per_kind, accounts)
    touched = sorted({e["account_id"] for events in sample.values() for e in events})
    counts_before = _event_counts(psycopg_url, touched)
    balances_before = _balances(psycopg_url, touched)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    parts = []
    accepted_total = 0
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=120) as client:
        for kind, events in sample.items():
            accepted = duplicates = 0
            refused: dict[str, int] = {}
            for i in range(0, len(events), 1_000):
                response = client.post(
                    "/api/v1/events", content=json.dumps({"events": events[i : i + 1_000]})
                )
                response.raise_for_status()
                answer = response.json()
                accepted += answer["accepted"]
                duplicates += len(answer["duplicates"])
                for rejected in answer["rejected"]:
                    code = str(rejected.get("code") or rejected.get("error") or "rejected")
                    refused[code] = refused.get(code, 0) + 1
            accepted_total += accepted
            refusals = ", ".join(f"{n:,} {code}" for code, n in sorted(refused.items()))
            parts.append(
                f"{kind}: {len(events):,} resent, {duplicates:,} duplicates"
                + (f", {refusals}" if refusals else "")
                + (f", {accepted:,} ACCEPTED AGAIN" if accepted else "")
            )
    counts_after = _event_counts(psycopg_url, touched)
    balances_after = _balances(psycopg_url, touched)
    same_counts = counts_before == counts_after
    same_balances = balances_before == balances_after
    ok = same_counts and same_balances and accepted_total == 0
    if same_counts and same_balances:
        verdict = (
            f"stored count ({sum(counts_after.values()):,} events of {len(touched)} accounts) "
            "and balances unchanged"
        )
    else:
        verdict = (
            f"stored count {'unchanged' if same_counts else 'CHANGED'}, "
            f"balances {'unchanged' if same_balances else 'CHANGED'}"
        )
    text = "; ".join(parts) + f"; {verdict}"
    log(f"dedupe: {text}")
    return DedupeResult(ok, text)


def measure_view(url: str, runs: int, end: date) -> tuple[list[float], int]:
    from sqlalchemy.orm import Session

    from core.db.engine import make_engine
    from core.usage.views import usage_frame

    start = end - timedelta(days=29)
    engine = make_engine(url)
    rows = [0]

    def run() -> None:
        with Session(engine) as session:
            frame = usage_frame(
                session, account_id(0), start=start, end=end, granularity="day", group_by="meter"
            )
        rows[0] = len(frame)

    try:
        timings = _time(run, runs, warmup=5)
    finally:
        engine.dispose()
    return timings, rows[0]


def measure_archive(url: str, psycopg_url: str, marker: dict[str, Any]) -> tuple[str, float | None]:
    """Archive the oldest month still held; (what happened, seconds per million events)."""
    from core.db.engine import make_engine, unit_of_work
    from core.usage.archive import archive_month

    with psycopg.connect(psycopg_url) as conn:
        # The rollups outlive the raw rows, and have no scan of 50M rows to find the oldest month.
        oldest = conn.execute("SELECT min(hour_start) FROM usage_rollup_hourly").fetchone()[0]
        if oldest is None:
            return "archive: no events", None
        archived = {row[0] for row in conn.execute("SELECT month FROM usage_archives")}
        month = date(oldest.astimezone(UTC).year, oldest.astimezone(UTC).month, 1)
        while month in archived:
            month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
        nxt = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
        lo = datetime(month.year, month.month, 1, tzinfo=UTC)
        hi = datetime(nxt.year, nxt.month, 1, tzinfo=UTC)
        rows = conn.execute(
            "SELECT count(*) FROM usage_events WHERE occurred_at >= %s AND occurred_at < %s", (lo, hi)
        ).fetchone()[0]
    directory = Path(tempfile.mkdtemp(prefix="meterline-bench-archive-"))
    engine = make_engine(url)
    try:
        began = time.perf_counter()
        with unit_of_work(engine, write=True) as session:
            result = archive_month(session, month, directory)
        seconds = time.perf_counter() - began
        files = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    finally:
        engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)
    marker.setdefault("archived", []).append(month.isoformat())
    write_marker(psycopg_url, marker)
    per_million = seconds / rows * 1_000_000 if rows else None
    text = f"{month:%Y-%m}: {rows:,} events in {seconds:.1f} s"
    if rows:
        text += f" = {per_million:.1f} s per million ({rows / seconds:,.0f} events/s)"
        text += f", {files / 1024**2:,.1f} MiB of Parquet ({files / rows:.0f} B/event)"
    text += f"; returned {str(result)[:120]}"
    log(f"archive: {text}")
    return text, per_million


# Entry point ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--preload", type=int, default=50_000_000, help="events in each database (default 50M)"
    )
    parser.add_argument("--accounts", type=int, default=1_000, help="accounts the events are spread over")
    parser.add_argument("--layout", choices=["today", "head", "both"], default="both")
    parser.add_argument("--rebuild", action="store_true", help="fill the databases again")
    parser.add_argument("--drop", action="store_true", help="drop the scale bench's databases and stop")
    parser.add_argument("--skip-disk-check", action="store_true")
    parser.add_argument("--ledger-check", action="store_true", help="run the ledger check after a fill")
    parser.add_argument("--events", type=int, default=100_000, help="new events ingested per layout")
    parser.add_argument(
        "--ingest-accounts",
        type=int,
        default=20,
        help="the new events go to this many of the largest accounts (default 20, as the ingest bench shape)",
    )
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--duplicates", type=float, default=0.05)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--spread", choices=["even", "kernel"], default="even")
    parser.add_argument("--workers", type=int, default=2, help="API workers (default 2)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs of the usage view")
    parser.add_argument("--resend", type=int, default=1_000, help="stored events resent per kind (about)")
    parser.add_argument("--no-archive", action="store_true")
    parser.add_argument("--no-ingest", action="store_true", help="fill and measure sizes and the view only")
    parser.add_argument(
        "--today-code", type=Path, help="checkout whose code serves the 0017 database (after the merge)"
    )
    return parser


def _fmt_bytes(size: int, events: int) -> str:
    return f"{size / 1024**2:,.0f} MiB = {size / max(events, 1):,.0f} B/event"


def run_layout(key: str, args: argparse.Namespace, marker: dict[str, Any], now: datetime) -> list[Row]:
    from bench._portal import run_api_server

    name = DB_NAMES[key]
    url, psycopg_url = database_urls(name)
    layout = detect_layout(psycopg_url)
    label = f"{LABELS[key]}: {layout.describe()}"
    log(f"== {label} ==")
    rows: list[Row] = [Row(f"[{label}]", "")]
    timings = ", ".join(f"{step} {s:.0f} s" for step, s in marker["timings"].items())
    rows.append(
        Row(
            f"fill of {marker['events']:,} events, {marker['accounts']:,} accounts, "
            f"{marker['months']} months",
            f"{marker['fill_s']:,.0f} s = {marker['events'] / marker['fill_s']:,.0f} events/s ({timings})",
        )
    )
    if marker.get("ledger_check"):
        rows.append(Row("  ledger check after the fill", str(marker["ledger_check"])))
    events, parts, others = sizes(psycopg_url)
    total = sum(size for _, size in parts)
    rows.append(Row(f"usage_events on disk ({events:,} events, estimated)", _fmt_bytes(total, events)))
    for what, size in parts:
        rows.append(Row(f"  {what}", _fmt_bytes(size, events)))
    for what, size in others:
        rows.append(Row(f"  {what}", _fmt_bytes(size, events)))

    data_end = min(now, datetime.fromisoformat(marker["end"]))
    timings_ms, view_rows = measure_view(url, args.runs, data_end.date())
    rows.append(
        Row(
            f"usage view, 30 days by day by meter, {account_id(0)} ({view_rows} rows; {args.runs} runs)",
            f"p50 {median(timings_ms):.1f} ms, p95 {p95(timings_ms):.1f} ms",
            "p50 <= 50 ms",
            median(timings_ms) <= 50,
        )
    )

    code_matches = layout.revision == head_revision()
    env = dict(SERVER_ENV)
    if not code_matches and args.today_code:
        env["PYTHONPATH"] = str(args.today_code.resolve())
    if args.no_ingest:
        rows.append(Row("ingestion and dedupe", "skipped (--no-ingest)"))
    elif not code_matches and not args.today_code:
        rows.append(
            Row(
                "ingestion and dedupe",
                f"skipped: this build's server expects revision {head_revision()}, the database is at "
                f"{layout.revision} (give --today-code DIR)",
            )
        )
    else:
        work = make_workload(
            min(args.ingest_accounts, args.accounts), args.events, args.batch, args.duplicates, now
        )
        with run_api_server(url, workers=args.workers, env=env) as server:
            log(f"ingest: {work.describe(args.clients)}")
            result = measure_ingest(server, psycopg_url, work, args.clients, args.spread == "even", now)
            dedupe = measure_dedupe(server, psycopg_url, datetime.now(UTC), args.resend, args.accounts)
        rows.append(
            Row(
                f"ingestion, `api serve --workers {args.workers}`, {args.clients} clients, "
                f"{work.sent:,} events over {min(args.ingest_accounts, args.accounts)} accounts "
                f"({work.unique:,} unique, {work.hourly_keys_per_1000:,.0f} hourly keys per 1,000)",
                f"{result.rate:,.0f} events/s ({result.seconds:.1f} s, load {os.getloadavg()[0]:.1f})",
            )
        )
        rows.append(
            Row("  where the time went", result.cpu + (f"; {result.spread}" if result.spread else ""))
        )
        rows.append(Row("  integrity", result.integrity, "all once, balances exact", result.ok))
        rows.append(Row("dedupe: stored events resent", dedupe.text, "none counted twice", dedupe.ok))

    if args.no_archive:
        rows.append(Row("archive", "skipped (--no-archive)"))
    elif not code_matches:
        rows.append(
            Row("archive", f"skipped: runs on databases at this build's revision ({head_revision()})")
        )
    else:
        text, _per_million = measure_archive(url, psycopg_url, marker)
        rows.append(Row("archive of the oldest month", text))
    return rows


def markdown(rows_by_layout: dict[str, list[Row]]) -> str:
    """README benchmark-table lines (| What | Target | Measured |)."""
    lines = []
    for rows in rows_by_layout.values():
        for row in rows:
            if row.metric.startswith("[") or row.metric.startswith("  "):
                continue
            lines.append(f"| {row.metric} | {row.target if row.target != '-' else '—'} | {row.measured} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    keys = ["today", "head"] if args.layout == "both" else [args.layout]
    if args.drop:
        for key in keys:
            began = time.perf_counter()
            drop_database(DB_NAMES[key])
            log(f"dropped {DB_NAMES[key]} ({time.perf_counter() - began:.1f} s)")
        return
    to_fill = [
        key
        for key in keys
        if args.rebuild or (read_marker(database_urls(DB_NAMES[key])[1]) or {}).get("events") != args.preload
    ]
    if to_fill:
        disk_ok, note = check_disk(args.preload, len(to_fill))
        log(note)
        if not disk_ok and not args.skip_disk_check:
            print(
                f"refusing to fill {', '.join(DB_NAMES[k] for k in to_fill)}: {note}. Free space, choose a "
                "smaller --preload, drop old databases (python -m bench scale --drop), or --skip-disk-check.",
                file=sys.stderr,
            )
            raise SystemExit(2)
    markers = {
        key: ensure_filled(key, args.preload, args.accounts, args.rebuild, args.ledger_check) for key in keys
    }
    now = datetime.now(UTC).replace(microsecond=0)
    rows_by_layout = {key: run_layout(key, args, markers[key], now) for key in markers}
    rows = [row for key in rows_by_layout for row in rows_by_layout[key]]
    print_table(
        f"Scale: {args.preload:,} preloaded events per database, partitioned against today's table", rows
    )
    print("README rows:")
    print(markdown(rows_by_layout))
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs; load average {', '.join(f'{x:.1f}' for x in load)}", flush=True)


if __name__ == "__main__":
    main()
