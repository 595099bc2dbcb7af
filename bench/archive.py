"""The archive's pace: one UTC month of raw events to Parquet, checked, then dropped (PostgreSQL).

    python -m bench archive [--events N] [--accounts N] [--keep]

A scratch database (``meterline_bench_archive_*`` on ``$BENCH_PG_ADMIN_URL``) is migrated and
filled with COPY: N events in March 2024 over the accounts, three meters, a few models and
projects, and the hourly rollups summed from them in SQL (so the checks have something true to
compare with). Then ``core.usage.archive.archive_month`` runs once and the seconds of each step
are printed: writing the file (read in chunks + Parquet), reading it back, the checks and the
per-batch totals, dropping the rows. Rows per second over the whole call is the headline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MONTH = date(2024, 3, 1)
COLUMNS = (
    "account_id, event_id, meter_id, quantity, occurred_at, usage_date, model, project, api_key, "
    "dimensions, amount_nanos, rate_card_version_id, content_hash, batch_id, received_at"
)


def _fill(url: str, events: int, accounts: int) -> None:
    rng = random.Random(20)
    start = datetime(2024, 3, 1, tzinfo=UTC)
    seconds = 31 * 86_400
    models = ["atlas-1", "atlas-mini", "nova-2", ""]
    projects = ["web", "batch", "eval"]
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor().copy(f"COPY usage_events ({COLUMNS}) FROM STDIN") as copy:
            for index in range(events):
                at = start + timedelta(seconds=rng.randrange(seconds), microseconds=rng.randrange(1_000_000))
                model, project = rng.choice(models), rng.choice(projects)
                dims = {"model": model, "project": project} if model else {"project": project}
                copy.write_row(
                    (
                        f"acc_{rng.randrange(accounts):04d}",
                        f"ev-{index}",
                        rng.randrange(1, 4),
                        rng.randrange(1, 50_000),
                        at,
                        at.date(),
                        model,
                        project,
                        "",
                        json.dumps(dims),
                        rng.randrange(0, 2_000_000_000),
                        None,
                        uuid.uuid4().hex,
                        1 + index // 1_000,
                        at + timedelta(seconds=5),
                    )
                )
        conn.execute(
            "INSERT INTO usage_rollup_hourly (account_id, hour_start, meter_id, model, project, api_key, "
            "quantity, amount_nanos, event_count) SELECT account_id, date_trunc('hour', occurred_at), "
            "meter_id, model, project, api_key, sum(quantity), sum(amount_nanos), count(*) FROM usage_events "
            "GROUP BY 1, 2, 3, 4, 5, 6"
        )
        conn.execute("ANALYZE usage_events")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench archive")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    from core.db import make_engine, unit_of_work
    from core.db.migrate import upgrade
    from core.usage import archive

    name = f"meterline_bench_archive_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(ADMIN_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)).set(database=name)
    sa_url = url.render_as_string(hide_password=False)
    plain_url = sa_url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        upgrade(sa_url)
        began = time.perf_counter()
        _fill(plain_url, args.events, args.accounts)
        filled = time.perf_counter() - began
        print(f"filled {args.events:,} events over {args.accounts:,} accounts in {filled:.1f} s")

        steps: dict[str, float] = {}

        def timed(label: str, function):  # type: ignore[no-untyped-def]
            def wrapper(*a, **k):  # type: ignore[no-untyped-def]
                t0 = time.perf_counter()
                try:
                    return function(*a, **k)
                finally:
                    steps[label] = steps.get(label, 0.0) + time.perf_counter() - t0

            return wrapper

        archive._write_file = timed("write file (read chunks + Parquet)", archive._write_file)
        archive._file_totals = timed("read the file back", archive._file_totals)
        archive._rollup_totals = timed("rollup sums", archive._rollup_totals)
        archive._record_totals = timed("per-batch totals", archive._record_totals)
        archive.drop_event_month = timed("drop the rows", archive.drop_event_month)
        engine = make_engine(sa_url)
        with tempfile.TemporaryDirectory() as directory:
            began = time.perf_counter()
            with unit_of_work(engine, write=True) as session:
                result = archive.archive_month(session, MONTH, Path(directory))
            total = time.perf_counter() - began  # commit included
            assert result.archived and result.rows == args.events
            print(result.describe())
            for label, seconds in steps.items():
                print(f"  {label:36} {seconds:7.2f} s  {args.events / seconds:>12,.0f} rows/s")
            print(
                f"  {'whole call, commit included':36} {total:7.2f} s  {args.events / total:>12,.0f} rows/s"
            )
            print(f"  file: {result.size_bytes / args.events:.1f} bytes per event")
        engine.dispose()
    finally:
        if not args.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
