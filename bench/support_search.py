"""Support search: ``core.support.search_accounts`` over many accounts with days of usage each.

Builds (once, reused until ``--rebuild``) a PostgreSQL database of synthetic accounts made
through the real commands (``core.demo.synthetic``, what ``meterline demo seed --accounts N``
runs), then times the one search function for each kind of key, warm, each run in a
fresh session as the page opens one per rerun. Target: p95 at most 200 ms.

    python -m bench support [--accounts 10000] [--days 90] [--runs 30] [--rebuild] [--db NAME]

Building 10,000 accounts x 90 days x 2 events (1.8 million events) takes a while on two
cores; ``--days`` makes it shorter (the search reads the daily rollup, whose size grows
with the days).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench._report import Row, median, p95, print_table
from core.db.engine import make_engine
from core.db.migrate import upgrade
from core.db.models import Account, UsageRollupDaily
from core.demo.synthetic import api_key, seed_synthetic_accounts
from core.support import search_accounts

TARGET_MS = 200.0
DEFAULT_DB = "meterline_bench_support"


def _admin_url() -> str:
    url = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return (
        url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
    )


def _database(name: str, *, rebuild: bool) -> tuple[str, bool]:
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists and rebuild:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            exists = None
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(_admin_url()).set(database=name).render_as_string(hide_password=False)
    return url, not exists


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench support")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--db", default=DEFAULT_DB)
    args = parser.parse_args(argv)

    url, fresh = _database(args.db, rebuild=args.rebuild)
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        have = session.scalar(select(func.count()).select_from(Account)) or 0
    if have < args.accounts:
        print(
            f"building {args.accounts - have:,} synthetic accounts x {args.days} days in {args.db} ...",
            flush=True,
        )
        began = time.perf_counter()
        run = seed_synthetic_accounts(
            engine, count=args.accounts - have, now=datetime.now(UTC), days=args.days, progress=True
        )
        print(f"built: {run.events:,} events in {time.perf_counter() - began:.0f} s", flush=True)
    with Session(engine) as session:
        accounts = session.scalar(select(func.count()).select_from(Account)) or 0
        rollup_rows = session.scalar(select(func.count()).select_from(UsageRollupDaily)) or 0
        session.execute(text("ANALYZE"))
    middle = accounts // 2
    queries = {
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
    rows = [Row("accounts / daily rollup rows", f"{accounts:,} / {rollup_rows:,}")]
    for label, query in queries.items():
        timings = []
        for attempt in range(args.runs + 3):
            with Session(engine) as session:
                began = time.perf_counter()
                hits = search_accounts(session, query)
                elapsed = (time.perf_counter() - began) * 1000
            if attempt >= 3:  # warm-up runs are not counted
                timings.append(elapsed)
        worst = p95(timings)
        rows.append(
            Row(
                f"{label}: {len(hits)} hit(s), median / p95",
                f"{median(timings):.1f} / {worst:.1f} ms",
                f"p95 <= {TARGET_MS:.0f} ms",
                worst <= TARGET_MS,
            )
        )
    engine.dispose()
    print_table(f"support search ({'fresh' if fresh else 'reused'} database {args.db})", rows)
