"""Usage page data: the 30-day by-day-by-meter view of an account with 10 million raw events.

Times the real read function (``core.usage.views.usage_frame``) warm, each run in a
fresh session as the page opens one per rerun, and the same numbers computed from the
raw ``usage_events`` for comparison. Target: median at most 50 ms on PostgreSQL.

    python -m bench usage [--rebuild] [--events N] [--runs 50] [--no-sqlite]

SQLite: the view reads only the rollup tables, so the bench copies the accounts, meters
and both rollups of the PostgreSQL dataset into a migrated SQLite file
(``var/bench/usage_view.db``) and times the same call there; raw events are not copied
(10 million rows into SQLite would take longer than the rest of the bench), so the raw
comparison runs on PostgreSQL only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import BigInteger, func, select, text
from sqlalchemy.orm import Session

from bench._data import BIG_ACCOUNT, DEFAULT_DB_NAME, Dataset, ensure_dataset, log
from bench._report import Row, median, p95, print_table
from core.db.engine import make_engine
from core.db.migrate import upgrade
from core.db.models import Meter, UsageEvent
from core.usage.ranges import DateRange
from core.usage.views import usage_frame

TARGET_MS = 50.0
SQLITE_PATH = Path("var") / "bench" / "usage_view.db"


def _time(fn: Callable[[], object], runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    timings: list[float] = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def _raw_by_day_by_meter(session: Session, account_id: str, start: date, end: date) -> list[tuple]:
    """The same view straight from raw events (what the page would cost without rollups)."""
    lower, upper = DateRange(start, end, "UTC").utc_bounds()
    lower, upper = lower - timedelta(days=1), upper + timedelta(days=1)  # any account timezone
    stmt = (
        select(
            UsageEvent.usage_date,
            Meter.display_name,
            func.sum(UsageEvent.quantity).cast(BigInteger),
            func.sum(UsageEvent.amount_nanos).cast(BigInteger),
            func.count().cast(BigInteger),
        )
        .join(Meter, Meter.id == UsageEvent.meter_id)
        .where(
            UsageEvent.account_id == account_id,
            # Bound occurred_at too, so the (account_id, occurred_at) index narrows the scan.
            UsageEvent.occurred_at >= lower,
            UsageEvent.occurred_at < upper,
            UsageEvent.usage_date >= start,
            UsageEvent.usage_date <= end,
        )
        .group_by(UsageEvent.usage_date, Meter.display_name)
        .order_by(UsageEvent.usage_date, Meter.display_name)
    )
    return list(session.execute(stmt).all())


def _view_runner(engine, start: date, end: date, granularity: str) -> Callable[[], object]:
    def run() -> object:
        with Session(engine) as session:
            frame = usage_frame(
                session, BIG_ACCOUNT, start=start, end=end, granularity=granularity, group_by="meter"
            )
        assert not frame.empty, "the bench account has no usage in the window"
        return frame

    return run


def _copy_rollups_to_sqlite(dataset: Dataset) -> str:
    """A migrated SQLite file holding the dataset's accounts, meters and rollups."""
    SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{SQLITE_PATH}"
    upgrade(url)
    engine = make_engine(url)
    tables = {
        "accounts": "id, name, status, timezone, rate_card_id, override_rate_card_id, balance_nanos, "
        "created_at",
        "meters": "id, name, display_name, unit, dimensions, created_at",
        "usage_rollup_daily": "account_id, usage_date, meter_id, model, project, api_key, quantity, "
        "amount_nanos, event_count",
        "usage_rollup_hourly": "account_id, hour_start, meter_id, model, project, api_key, quantity, "
        "amount_nanos, event_count",
    }
    began = time.perf_counter()
    with psycopg.connect(dataset.psycopg_url) as source, engine.begin() as target:
        source.execute("SET TimeZone = 'UTC'")
        target.exec_driver_sql("PRAGMA foreign_keys=OFF")
        for table, columns in tables.items():
            names = [c.strip() for c in columns.split(",")]
            insert = text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + n for n in names)})")
            with source.cursor(name=f"copy_{table}") as cursor:
                cursor.execute(f"SELECT {columns} FROM {table}")
                while batch := cursor.fetchmany(50_000):
                    rows = [dict(zip(names, _sqlite_values(row), strict=True)) for row in batch]
                    target.execute(insert, rows)
        target.exec_driver_sql("ANALYZE")
    log(f"copied accounts, meters and rollups to {SQLITE_PATH} in {time.perf_counter() - began:.1f} s")
    engine.dispose()
    return url


def _sqlite_values(row: tuple) -> tuple:
    import json
    from datetime import datetime

    values = []
    for value in row:
        if isinstance(value, datetime):
            # Stored as naive UTC text, as core.db.types.UTCDateTime writes it.
            values.append(value.replace(tzinfo=None).isoformat(sep=" "))
        elif isinstance(value, list | dict):
            values.append(json.dumps(value))
        else:
            values.append(value)
    return tuple(values)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m bench usage", description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="regenerate the 10M-event database")
    parser.add_argument("--events", type=int, default=10_000_000, help="raw events on the big account")
    parser.add_argument("--runs", type=int, default=50, help="timed runs of the view (default 50)")
    parser.add_argument("--raw-runs", type=int, default=10, help="timed runs of the raw query (default 10)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite half")
    parser.add_argument(
        "--db", default=DEFAULT_DB_NAME, help=f"PostgreSQL database (default {DEFAULT_DB_NAME})"
    )
    args = parser.parse_args(argv)

    dataset = ensure_dataset(big_events=args.events, db_name=args.db, rebuild=args.rebuild)
    # The 30 local days that end with the dataset's last day (the big account is on UTC).
    end = (dataset.end - timedelta(seconds=1)).date()
    start = end - timedelta(days=29)
    rows: list[Row] = []
    if dataset.generation_s is not None:
        rows.append(Row("dataset generation (this run or stored)", f"{dataset.generation_s:.1f} s"))
    rows.append(
        Row("raw events in database (big account)", f"{dataset.total_events:,} ({dataset.big_events:,})")
    )

    engine = make_engine(dataset.url)
    by_day = _time(_view_runner(engine, start, end, "day"), args.runs, warmup=5)
    frame = _view_runner(engine, start, end, "day")()
    by_hour = _time(_view_runner(engine, start, end, "hour"), max(10, args.runs // 5), warmup=2)

    def raw() -> object:
        with Session(engine) as session:
            return _raw_by_day_by_meter(session, BIG_ACCOUNT, start, end)

    raw_ms = _time(raw, args.raw_runs, warmup=1)
    raw_rows = raw()
    engine.dispose()

    # The rollup view and the raw query must agree, or the timing compares different work.
    view_totals = frame.groupby(["bucket", "meter"])[["quantity", "amount_nanos", "events"]].sum()
    raw_totals = {(d, m): (q, a, n) for d, m, q, a, n in raw_rows}
    mismatches = sum(
        1
        for (bucket, meter), values in view_totals.iterrows()
        if raw_totals.get((bucket.date(), meter)) != tuple(int(v) for v in values)
    )
    print(
        f"PostgreSQL: 30-day by-day-by-meter view {start}..{end}: {len(frame)} rows; "
        f"raw query agrees on {len(view_totals) - mismatches}/{len(view_totals)} cells"
    )
    rows += [
        Row(
            "PG usage_frame 30d by day by meter, median",
            f"{median(by_day):.1f} ms",
            f"<= {TARGET_MS:.0f} ms",
            median(by_day) <= TARGET_MS,
        ),
        Row(f"PG usage_frame 30d by day by meter, p95 ({args.runs} runs)", f"{p95(by_day):.1f} ms"),
        Row("PG usage_frame 30d by hour by meter, median", f"{median(by_hour):.1f} ms"),
        Row(f"PG same view on raw events, median ({args.raw_runs} runs)", f"{median(raw_ms):.0f} ms"),
        Row("PG raw / rollup ratio", f"{median(raw_ms) / median(by_day):.0f}x"),
        Row("PG raw and rollup numbers agree", "yes" if mismatches == 0 else f"{mismatches} cells differ"),
    ]

    if args.no_sqlite:
        rows.append(Row("SQLite", "skipped (--no-sqlite)"))
    else:
        sqlite_url = _copy_rollups_to_sqlite(dataset)
        sqlite_engine = make_engine(sqlite_url)
        sqlite_day = _time(_view_runner(sqlite_engine, start, end, "day"), args.runs, warmup=5)
        sqlite_frame = _view_runner(sqlite_engine, start, end, "day")()
        sqlite_hour = _time(_view_runner(sqlite_engine, start, end, "hour"), max(10, args.runs // 5), 2)
        sqlite_engine.dispose()
        for suffix in ("", "-wal", "-shm"):  # a copy, rebuilt on every run: do not leave 300 MB behind
            Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
        same = sqlite_frame.equals(frame)
        rows += [
            Row(
                "SQLite usage_frame 30d by day by meter, median",
                f"{median(sqlite_day):.1f} ms",
                f"<= {TARGET_MS:.0f} ms",
                median(sqlite_day) <= TARGET_MS,
            ),
            Row("SQLite usage_frame 30d by day, p95", f"{p95(sqlite_day):.1f} ms"),
            Row("SQLite usage_frame 30d by hour by meter, median", f"{median(sqlite_hour):.1f} ms"),
            Row("SQLite frame equals PostgreSQL frame", "yes" if same else "NO"),
            Row("SQLite raw-events comparison", "skipped (rollups copied only)"),
        ]
    print_table(f"usage view ({dataset.big_events:,} raw events on one account)", rows)
    return rows


if __name__ == "__main__":
    main()
