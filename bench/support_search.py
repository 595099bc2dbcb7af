"""Support search: ``core.support.search_accounts`` over 10,000 accounts with 90 days of usage each.

Builds (once, reused until ``--rebuild`` or until the shape asked for changes) a database
of synthetic accounts made through the real commands (``core.demo.synthetic``, what
``meterline demo seed --accounts N --days D`` runs: accounts, owners and starter grants
through ``core.accounts`` and the ledger, usage through ``ingest_events``), then times the
one search function for each kind of key, warm, each run in a fresh session as the page
opens one per rerun. Target: p95 at most 200 ms.

    python -m bench support [--accounts 10000] [--days 90] [--runs 30] [--rebuild]
                            [--database postgres|sqlite|both] [--db NAME]

PostgreSQL: database ``--db`` (default ``meterline_bench_support``) on
``$BENCH_PG_ADMIN_URL``, analysed after seeding (as autovacuum would). SQLite:
``var/bench/support_search.db``, not analysed (the app never runs ANALYZE on it). The
default shape, 10,000 accounts x 90 days, is 1.5 million usage events, 900,000 ledger
debits and 1.5 million daily rollup rows; seeding it took 269 s on SQLite and 310 s on
PostgreSQL on two cores (README, Benchmarks). ``--days`` makes it shorter.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench._report import Row, median, p95, print_table
from core.db.engine import make_engine
from core.db.migrate import upgrade
from core.db.models import Account, UsageEvent, UsageRollupDaily
from core.demo.synthetic import api_key, seed_synthetic_accounts
from core.support import search_accounts

TARGET_MS = 200.0
DEFAULT_DB = "meterline_bench_support"
SQLITE_PATH = Path("var") / "bench" / "support_search.db"


def _admin_url() -> str:
    url = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return (
        url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
    )


def _postgres(name: str, *, rebuild: bool) -> str:
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists and rebuild:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            exists = None
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(_admin_url()).set(database=name).render_as_string(hide_password=False)


def _sqlite(*, rebuild: bool) -> str:
    SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    if rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{SQLITE_PATH}"


def _shape(engine: Engine) -> tuple[int, int, int, int]:
    """Accounts, days of usage, usage events and daily rollup rows in the database."""
    with Session(engine) as session:
        accounts = session.scalar(select(func.count()).select_from(Account)) or 0
        days = session.scalar(select(func.count(func.distinct(UsageRollupDaily.usage_date)))) or 0
        events = session.scalar(select(func.count()).select_from(UsageEvent)) or 0
        rollup_rows = session.scalar(select(func.count()).select_from(UsageRollupDaily)) or 0
    return accounts, days, events, rollup_rows


def _prepare(label: str, url: str, args: argparse.Namespace) -> tuple[Engine, str]:
    """The database migrated and seeded to the shape asked for; how it was made, for the table."""
    upgrade(url)
    engine = make_engine(url)
    accounts, days, _, _ = _shape(engine)
    if accounts and (accounts != args.accounts or days != args.days):
        wanted = f"{args.accounts:,} x {args.days}"
        print(f"{label}: has {accounts:,} accounts x {days} days, not {wanted}: rebuilding", flush=True)
        engine.dispose()
        url = _postgres(args.db, rebuild=True) if label == "PostgreSQL" else _sqlite(rebuild=True)
        upgrade(url)
        engine = make_engine(url)
        accounts = 0
    if accounts:
        return engine, "reused"
    print(f"{label}: seeding {args.accounts:,} synthetic accounts x {args.days} days ...", flush=True)
    began = time.perf_counter()
    run = seed_synthetic_accounts(
        engine, count=args.accounts, now=datetime.now(UTC), days=args.days, progress=True
    )
    seconds = time.perf_counter() - began
    print(f"{label}: seeded {run.events:,} events in {seconds:.0f} s", flush=True)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does after a bulk load
    return engine, f"seeded in {seconds:.0f} s"


def _queries(accounts: int) -> dict[str, str]:
    middle = accounts // 2
    return {
        "account id (exact)": f"acc_syn_{middle:06d}",
        "account id (prefix)": "acc_syn_0042",
        "name (substring)": f"{middle:06d} Ltd",
        "member email (prefix)": f"owner@syn{middle:06d}",
        "API key prefix": api_key(middle, 1)[:-2],
        "top-up id": "#123456",
        "Stripe customer id": "cus_NoSuchCustomer1",
        "payment id": "pi_NoSuchPayment1",
        "a miss": "zzz-nothing-matches",
    }


def _measure(label: str, engine: Engine, how: str, runs: int) -> list[Row]:
    accounts, days, events, rollup_rows = _shape(engine)
    rows = [
        Row(
            f"{label}: accounts x days / events / daily rollup rows",
            f"{accounts:,} x {days} / {events:,} / {rollup_rows:,} ({how})",
        )
    ]
    for kind, query in _queries(accounts).items():
        timings = []
        for attempt in range(runs + 3):
            with Session(engine) as session:
                began = time.perf_counter()
                hits = search_accounts(session, query)
                elapsed = (time.perf_counter() - began) * 1000
            if attempt >= 3:  # warm-up runs are not counted
                timings.append(elapsed)
        worst = p95(timings)
        rows.append(
            Row(
                f"{label}: {kind}: {len(hits)} hit(s), p50 / p95 / max",
                f"{median(timings):.1f} / {worst:.1f} / {max(timings):.1f} ms",
                f"p95 <= {TARGET_MS:.0f} ms",
                worst <= TARGET_MS,
            )
        )
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench support")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90, help="days of usage per account (default 90)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--database", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--db", default=DEFAULT_DB, help="the PostgreSQL database's name")
    args = parser.parse_args(argv)

    rows: list[Row] = []
    if args.database in ("sqlite", "both"):
        engine, how = _prepare("SQLite", _sqlite(rebuild=args.rebuild), args)
        rows += _measure("SQLite", engine, how, args.runs)
        engine.dispose()
    if args.database in ("postgres", "both"):
        engine, how = _prepare("PostgreSQL", _postgres(args.db, rebuild=args.rebuild), args)
        rows += _measure("PostgreSQL", engine, how, args.runs)
        engine.dispose()
    print_table(f"support search ({args.accounts:,} accounts x {args.days} days)", rows)
