"""The big usage dataset the usage, render and memory benchmarks share.

One heavy account (``acc_bench_big``, 10 million raw events over 90 days by default)
plus four lighter accounts whose events are interleaved with it in time, so that the
``(account_id, occurred_at)`` index and the rollup keys have to do real work.

Bench data bypasses ingestion (10 million events through the API would take longer
than the benchmark itself) but stays consistent with what ingestion would leave:

- accounts, meters, one ingest batch and a bench user are created with the core's own
  models and ``core.accounts`` commands;
- the raw events are generated inside PostgreSQL (``INSERT … SELECT`` over
  ``generate_series``, in parallel chunks, with the table's indexes and foreign keys
  dropped during the load and re-created with their exact definitions afterwards);
  this is faster than a COPY fed from Python, which would have to format every row;
- ``usage_rollup_hourly`` and ``usage_rollup_daily`` are filled from the raw events with
  ``INSERT … SELECT … GROUP BY``;
- each account gets a purchased grant and one usage debit for the batch, so
  ``meterline ledger check`` passes on the bench database.

The dataset is kept between runs: a ``settings`` row records what was generated, and
``ensure_dataset`` reuses it unless asked to rebuild.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from core.accounts import add_member, create_account
from core.db.engine import make_engine, unit_of_work
from core.db.migrate import upgrade
from core.db.models import IngestBatch, Meter
from core.ledger import grant_credits, lock_accounts, post_usage

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEFAULT_DB_NAME = "meterline_bench_usage"
BIG_ACCOUNT = "acc_bench_big"
BENCH_USER = "bench@meterline.test"
MARKER_KEY = "bench.usage_dataset"
DAYS = 90
CHUNK_EVENTS = 1_000_000

# (id, display name, timezone, share of the "other" events): the big account is UTC.
OTHER_ACCOUNTS = (
    ("acc_bench_east", "Bench East Coast Inc.", "America/New_York"),
    ("acc_bench_berlin", "Bench Berlin GmbH", "Europe/Berlin"),
    ("acc_bench_small", "Bench Small Co", "UTC"),
    ("acc_bench_tokyo", "Bench Tokyo KK", "Asia/Tokyo"),
)
# name, display name, unit; ids are assigned in this order (1..4 on a fresh database).
METERS = (
    ("input_tokens", "Input tokens", "token"),
    ("output_tokens", "Output tokens", "token"),
    ("cached_input_tokens", "Cached input tokens", "token"),
    ("requests", "Requests", "request"),
)
MODELS = ("atlas-large", "atlas-medium", "atlas-small", "nova-pro", "nova-lite", "embed-v2")
# Nano-credits per unit, per model (same order as MODELS), per meter.
PRICE_NANOS = {
    "input_tokens": (3000, 1000, 250, 5000, 600, 100),
    "output_tokens": (12000, 4000, 1000, 20000, 2400, 0),
    "cached_input_tokens": (300, 100, 25, 500, 60, 10),
    "requests": (100_000, 50_000, 10_000, 100_000, 20_000, 5_000),
}
PROJECTS = ("search", "chat", "agents", "batch-eval", "support-bot", "sandbox")


@dataclass(frozen=True)
class Dataset:
    url: str  # SQLAlchemy URL of the bench database
    psycopg_url: str  # the same database for psycopg.connect
    total_events: int
    big_events: int
    start: datetime
    end: datetime  # events lie in [start, end)
    generated_at: datetime
    generation_s: float | None  # set when this run generated the data


def database_urls(db_name: str) -> tuple[str, str]:
    """(SQLAlchemy URL, psycopg URL) of ``db_name`` on the admin URL's server."""
    admin = make_url(ADMIN_URL)
    plain = admin.set(drivername="postgresql", database=db_name).render_as_string(hide_password=False)
    alchemy = admin.set(drivername="postgresql+psycopg", database=db_name).render_as_string(
        hide_password=False
    )
    return alchemy, plain


def _admin_conninfo() -> str:
    return make_url(ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _read_marker(psycopg_url: str) -> dict | None:
    try:
        with psycopg.connect(psycopg_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = %s", (MARKER_KEY,)).fetchone()
    except psycopg.Error:
        return None
    return json.loads(row[0]) if row else None


def _dataset_from_marker(url: str, psycopg_url: str, marker: dict, generation_s: float | None) -> Dataset:
    return Dataset(
        url=url,
        psycopg_url=psycopg_url,
        total_events=marker["total_events"],
        big_events=marker["big_events"],
        start=datetime.fromisoformat(marker["start"]),
        end=datetime.fromisoformat(marker["end"]),
        generated_at=datetime.fromisoformat(marker["generated_at"]),
        generation_s=generation_s if generation_s is not None else marker.get("generation_s"),
    )


def ensure_dataset(
    *, big_events: int = 10_000_000, db_name: str = DEFAULT_DB_NAME, rebuild: bool = False
) -> Dataset:
    """The bench database with ``big_events`` events on the big account, generated if missing."""
    url, psycopg_url = database_urls(db_name)
    marker = None if rebuild else _read_marker(psycopg_url)
    if marker is not None and marker.get("big_events") == big_events:
        age = datetime.now(UTC) - datetime.fromisoformat(marker["end"])
        log(
            f"reusing {db_name}: {marker['total_events']:,} events generated {marker['generated_at']} "
            f"in {marker.get('generation_s', 0):.0f} s (pass --rebuild to regenerate)"
        )
        if age > timedelta(days=3):
            log(f"note: the data ends {age.days} days ago; pages showing 'last 30 days' see less of it")
        return _dataset_from_marker(url, psycopg_url, marker, None)
    began = time.perf_counter()
    marker = _generate(url, psycopg_url, db_name, big_events)
    generation_s = time.perf_counter() - began
    marker["generation_s"] = generation_s
    with psycopg.connect(psycopg_url) as conn:
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (MARKER_KEY, json.dumps(marker)),
        )
    log(f"generated {marker['total_events']:,} events in {generation_s:.1f} s")
    return _dataset_from_marker(url, psycopg_url, marker, generation_s)


def _generate(url: str, psycopg_url: str, db_name: str, big_events: int) -> dict:
    other_events = big_events // 5  # four lighter accounts share a fifth of the big one's volume
    total = big_events + other_events
    generated_at = datetime.now(UTC)
    end = generated_at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(days=DAYS)
    step = time.perf_counter()

    with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{db_name}"')
    upgrade(url)
    log(f"created and migrated {db_name} in {time.perf_counter() - step:.1f} s")

    engine = make_engine(url)
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id=BIG_ACCOUNT, name="Bench Heavy Account", at=start)
        for account_id, name, tz in OTHER_ACCOUNTS:
            create_account(session, account_id=account_id, name=name, timezone=tz, at=start)
        for name, display, unit in METERS:
            session.add(
                Meter(
                    name=name,
                    display_name=display,
                    unit=unit,
                    dimensions=["model", "project", "api_key"],
                    created_at=start,
                )
            )
        batch = IngestBatch(source="bench", received_at=end, accepted_count=total)
        session.add(batch)
        session.flush()
        batch_id = batch.id
        meter_ids = {
            name: meter_id for name, meter_id in session.execute(select(Meter.name, Meter.id)).tuples()
        }
        add_member(session, account_id=BIG_ACCOUNT, email=BENCH_USER, role="owner", at=start)
    engine.dispose()

    step = time.perf_counter()
    constraints = _drop_event_indexes(psycopg_url)
    chunks = [(lo, min(lo + CHUNK_EVENTS - 1, total)) for lo in range(1, total + 1, CHUNK_EVENTS)]
    insert_sql = _insert_sql(meter_ids, total, start, batch_id)
    done = 0

    def load(bounds: tuple[int, int]) -> int:
        with psycopg.connect(psycopg_url) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute(insert_sql, {"lo": bounds[0], "hi": bounds[1]})
        return bounds[1] - bounds[0] + 1

    with ThreadPoolExecutor(max_workers=2) as pool:
        for count in pool.map(load, chunks):
            done += count
            elapsed = time.perf_counter() - step
            log(f"  raw events: {done:,}/{total:,} ({done / elapsed:,.0f}/s)")
    load_s = time.perf_counter() - step

    step = time.perf_counter()
    _restore_event_indexes(psycopg_url, constraints, total)
    log(f"re-created indexes and constraints in {time.perf_counter() - step:.1f} s")

    step = time.perf_counter()
    with psycopg.connect(psycopg_url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET work_mem = '256MB'")
        conn.execute(
            """
            INSERT INTO usage_rollup_hourly
                (account_id, hour_start, meter_id, model, project, api_key, quantity, amount_nanos,
                 event_count)
            SELECT account_id, date_trunc('hour', occurred_at), meter_id, model, project, api_key,
                   sum(quantity), sum(amount_nanos), count(*)
            FROM usage_events
            GROUP BY 1, 2, 3, 4, 5, 6
            """
        )
        conn.execute(
            """
            INSERT INTO usage_rollup_daily
                (account_id, usage_date, meter_id, model, project, api_key, quantity, amount_nanos,
                 event_count)
            SELECT account_id, usage_date, meter_id, model, project, api_key,
                   sum(quantity), sum(amount_nanos), count(*)
            FROM usage_events
            GROUP BY 1, 2, 3, 4, 5, 6
            """
        )
        spent = dict(
            conn.execute(
                "SELECT account_id, sum(amount_nanos)::bigint FROM usage_events GROUP BY account_id"
            ).fetchall()
        )
    log(f"filled hourly and daily rollups in {time.perf_counter() - step:.1f} s")

    engine = make_engine(url)
    with unit_of_work(engine, write=True) as session:
        for account_id, amount in sorted(spent.items()):
            # Enough credits for the usage and a quarter more, so balances read like a real customer's.
            grant_credits(
                session,
                account_id=account_id,
                amount_nanos=amount + amount // 4,
                source="purchased",
                at=start,
                cost_basis_cents=(amount + amount // 4) // 10_000_000,
                description="Bench top-up",
            )
            account = lock_accounts(session, [account_id])[account_id]
            post_usage(session, account=account, amount_nanos=amount, at=end, reference=f"batch:{batch_id}")
    engine.dispose()

    step = time.perf_counter()
    with psycopg.connect(psycopg_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    log(f"vacuum analyze in {time.perf_counter() - step:.1f} s")
    rows = {table: _count(psycopg_url, table) for table in ("usage_rollup_hourly", "usage_rollup_daily")}
    log(f"rollup rows: hourly {rows['usage_rollup_hourly']:,}, daily {rows['usage_rollup_daily']:,}")
    return {
        "total_events": total,
        "big_events": big_events,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "generated_at": generated_at.isoformat(),
        "raw_load_s": load_s,
        "rollup_rows": rows,
    }


def _count(psycopg_url: str, table: str) -> int:
    with psycopg.connect(psycopg_url) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _insert_sql(meter_ids: dict[str, int], total: int, start: datetime, batch_id: int) -> str:
    """One chunk (``%(lo)s``..``%(hi)s``) of generated events.

    Event ``i`` belongs to the big account five times out of six, else to one of the
    others; its time advances with ``i`` (ingestion order follows time, as in real life)
    plus up to a minute of jitter. Models, projects and meters are skewed towards the
    first few values, as real accounts are; each project has a main and a second API key.
    """
    seconds_per_event = DAYS * 86_400 / total
    others = [account_id for account_id, _, _ in OTHER_ACCOUNTS]
    tz_case = " ".join(f"WHEN '{a}' THEN '{tz}'" for a, _, tz in OTHER_ACCOUNTS)
    meter_order = [meter_ids[name] for name, _, _ in METERS]

    def price_array(meter: str) -> str:
        return "ARRAY[" + ",".join(str(p) for p in PRICE_NANOS[meter]) + "]::bigint[]"

    price_case = " ".join(f"WHEN {meter_ids[m]} THEN {price_array(m)}" for m in PRICE_NANOS)
    models = "ARRAY[" + ",".join(f"'{m}'" for m in MODELS) + "]"
    projects = "ARRAY[" + ",".join(f"'{p}'" for p in PROJECTS) + "]"
    others_array = "ARRAY[" + ",".join(f"'{a}'" for a in others) + "]"
    return f"""
    INSERT INTO usage_events
        (id, account_id, event_id, meter_id, quantity, occurred_at, usage_date, model, project,
         api_key, dimensions, amount_nanos, rate_card_version_id, content_hash, batch_id, received_at)
    SELECT i, account_id, 'evt_' || i, meter_id, quantity, occurred_at,
           (occurred_at AT TIME ZONE tz)::date, model, project, api_key,
           json_build_object('model', model, 'project', project, 'api_key', api_key),
           quantity * price, NULL, md5(i::text), {batch_id}, occurred_at + interval '2 seconds'
    FROM (
        SELECT i, account_id, meter_id, model, project, api_key, occurred_at, tz,
               CASE WHEN meter_id = {meter_order[3]} THEN 1
                    ELSE 20 + floor(r_qty * r_qty * 4000)::bigint END AS quantity,
               (CASE meter_id {price_case} END)[model_index] AS price
        FROM (
            SELECT i, account_id, model_index, ({models})[model_index] AS model,
                   ({projects})[project_index] AS project,
                   'key_' || account_id || '_' || project_index || (CASE WHEN r_key < 0.8 THEN 'a' ELSE 'b'
                   END) AS api_key,
                   CASE WHEN r_meter < 0.40 THEN {meter_order[0]} WHEN r_meter < 0.75 THEN {meter_order[1]}
                        WHEN r_meter < 0.90 THEN {meter_order[2]} ELSE {meter_order[3]} END AS meter_id,
                   timestamptz '{start.isoformat()}'
                       + make_interval(secs => (i - 1) * {seconds_per_event} + r_jitter * 60) AS occurred_at,
                   CASE account_id {tz_case} ELSE 'UTC' END AS tz,
                   r_qty
            FROM (
                SELECT i,
                       CASE WHEN i %% 6 < 5 THEN '{BIG_ACCOUNT}'
                            ELSE ({others_array})[(i / 6) %% 4 + 1] END AS account_id,
                       1 + floor(6 * power(random(), 1.7))::int AS model_index,
                       1 + floor(6 * power(random(), 1.5))::int AS project_index,
                       random() AS r_key, random() AS r_meter, random() AS r_jitter, random() AS r_qty
                FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
            ) AS draws
        ) AS dims
    ) AS rows
    """


def _drop_event_indexes(psycopg_url: str) -> list[tuple[str, str]]:
    """Drop usage_events' constraints and indexes; return what re-creates them, in order."""
    with psycopg.connect(psycopg_url) as conn:
        constraints = conn.execute(
            """
            SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint
            WHERE conrelid = 'usage_events'::regclass AND contype IN ('p', 'u', 'f')
            ORDER BY CASE contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 ELSE 2 END
            """
        ).fetchall()
        indexes = conn.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.tablename = 'usage_events' AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """
        ).fetchall()
        restore: list[tuple[str, str]] = []
        for name, definition, _ in constraints:
            restore.append((name, f'ALTER TABLE usage_events ADD CONSTRAINT "{name}" {definition}'))
        for name, definition in indexes:
            restore.append((name, definition))
        for name, _, _kind in reversed(constraints):
            conn.execute(f'ALTER TABLE usage_events DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
    return restore


def _restore_event_indexes(psycopg_url: str, restore: list[tuple[str, str]], total: int) -> None:
    with psycopg.connect(psycopg_url) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        for name, statement in restore:
            began = time.perf_counter()
            conn.execute(statement)
            log(f"  {name}: {time.perf_counter() - began:.1f} s")
        sequence = conn.execute("SELECT pg_get_serial_sequence('usage_events', 'id')").fetchone()[0]
        if sequence:
            conn.execute("SELECT setval(%s, %s)", (sequence, total))
