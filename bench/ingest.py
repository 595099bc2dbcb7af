"""Ingestion benchmark: 200k events through POST /api/v1/events, end to end.

    .venv/bin/python -m bench.ingest --db postgres|sqlite|both [--events 200000] [--clients 3]

For each database: a fresh database (PostgreSQL: created and dropped; SQLite: a new WAL
file), migrated, with a rate card, 20 accounts and grants. The API app runs under uvicorn
in a subprocess on a free port; a few client threads post pre-encoded batches of 1,000
events (5 % of them resends of earlier events) with httpx. The clock stops when the last
answer is in: every event is then rated, stored, rolled up and debited. The ledger check
runs afterwards. A bare baseline runs in the same process on the same machine: PostgreSQL
``COPY`` into a temp table + ``INSERT … SELECT … ON CONFLICT DO NOTHING`` + hourly rollup
upsert in one statement; SQLite ``INSERT OR IGNORE`` + rollup upsert. No HTTP, no rating,
no ledger.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

from bench._report import Row, print_table

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKEN = "bench-token"
ACCOUNTS = [f"acc_{i:02d}" for i in range(20)]
MODELS = ["atlas-large", "atlas-mini", "nova", "nova-pro"]
PROJECTS = ["web", "batch"]  # each account has two projects, one API key each
TARGETS = {"postgres": 25_000, "sqlite": 12_000}
BASELINES = {"postgres": "COPY + ON CONFLICT + rollup", "sqlite": "INSERT OR IGNORE + rollup"}

CARD = """
[[meters]]
name = "input_tokens"
unit = "token"
dimensions = ["model", "project", "api_key"]
[[meters]]
name = "output_tokens"
unit = "token"
dimensions = ["model", "project", "api_key"]
[[meters]]
name = "requests"
unit = "request"
dimensions = ["model", "project", "api_key"]

[card]
key = "standard"
name = "Standard"

[[versions]]
effective_from = "2026-01-01T00:00:00Z"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "3.00"
[[versions.prices]]
meter = "input_tokens"
model = "atlas-mini"
per = 1_000_000
price = "0.50"
[[versions.prices]]
meter = "output_tokens"
per = 1_000_000
price = "15.00"
[[versions.prices]]
meter = "requests"
price = "0.001"

[[versions]]
effective_from = "{change}"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "2.50"
[[versions.prices]]
meter = "output_tokens"
per = 1_000_000
price = "12.00"
[[versions.prices]]
meter = "requests"
price = "0.001"
"""


@dataclass
class Workload:
    bodies: list[bytes]
    sent: int
    unique: int


def log(message: str) -> None:
    print(f"[bench.ingest] {message}", file=sys.stderr, flush=True)


def make_events(
    total: int, batch_size: int, duplicate_share: float, now: datetime, accounts: int = 20, seed: int = 7
) -> Workload:
    """Batches of events; ``duplicate_share`` of each batch resends events of earlier batches."""
    rng = random.Random(seed)
    meters = ["input_tokens", "output_tokens", "requests"]
    sent_so_far: list[dict] = []
    bodies: list[bytes] = []
    unique = 0
    produced = 0
    while produced < total:
        size = min(batch_size, total - produced)
        batch = []
        fresh = []
        for _ in range(size):
            if sent_so_far and rng.random() < duplicate_share:
                batch.append(sent_so_far[rng.randrange(len(sent_so_far))])
                continue
            unique += 1
            meter = rng.choice(meters)
            account = rng.randrange(accounts)
            project = rng.randrange(2)
            # Live traffic: most events are minutes old; a few arrive late (up to 10 days).
            age_s = rng.randint(0, 10 * 86_400) if rng.random() < 0.03 else rng.randint(0, 600)
            event = {
                "event_id": f"evt-{unique:08d}-{uuid.uuid4().hex[:8]}",
                "account_id": ACCOUNTS[account],
                "meter": meter,
                "quantity": 1 if meter == "requests" else rng.randint(50, 8_000),
                "timestamp": (now - timedelta(seconds=age_s)).isoformat(),
                "dimensions": {
                    "model": rng.choice(MODELS),
                    "project": f"{PROJECTS[project]}-{account}",
                    "api_key": f"key_{account}_{project}",
                },
            }
            batch.append(event)
            fresh.append(event)
        sent_so_far.extend(fresh)
        bodies.append(json.dumps({"events": batch}).encode())
        produced += size
    return Workload(bodies=bodies, sent=produced, unique=unique)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(url: str, now: datetime) -> None:
    from core.accounts import create_account
    from core.db import make_engine, unit_of_work
    from core.db.migrate import upgrade
    from core.ledger import grant_credits
    from core.money import NANOS_PER_CREDIT
    from core.rating import load_rate_card

    upgrade(url)
    engine = make_engine(url)
    change = (now - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, tomllib.loads(CARD.replace("{change}", change)), at=now, allow_backdated=True)
        for account_id in ACCOUNTS:
            create_account(session, account_id=account_id, name=account_id, at=now, rate_card_key="standard")
            grant_credits(
                session,
                account_id=account_id,
                amount_nanos=50 * NANOS_PER_CREDIT,
                source="promotional",
                at=now,
            )
    engine.dispose()


def app_factory() -> Any:
    """The API app on ``$BENCH_DATABASE_URL`` (for ``uvicorn --factory``, one per worker)."""
    from core.api import create_api_app
    from core.db import make_engine

    return create_api_app(make_engine(os.environ["BENCH_DATABASE_URL"]), TOKEN)


def serve(url: str, port: int, workers: int) -> None:
    """Run the API app under uvicorn (the subprocess side)."""
    import uvicorn

    os.environ["BENCH_DATABASE_URL"] = url
    uvicorn.run(
        "bench.ingest:app_factory",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "bench.ingest",
        "--serve",
        url,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    process = subprocess.Popen(command)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(f"{base}/api/v1/meters", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
                == 200
            ):
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the API server did not start")


def post_all(base: str, bodies: list[bytes], clients: int) -> tuple[float, int, int]:
    """Post every body from ``clients`` threads; (seconds, accepted, duplicates)."""
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    totals = {"accepted": 0, "duplicates": 0}
    errors: list[str] = []

    def worker() -> None:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop(0)
                response = client.post("/api/v1/events", content=body)
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                    return
                answer = response.json()
                with lock:
                    totals["accepted"] += answer["accepted"]
                    totals["duplicates"] += len(answer["duplicates"])

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    return elapsed, totals["accepted"], totals["duplicates"]


def verify(url: str, unique: int) -> str:
    from core.db import make_engine, unit_of_work
    from core.ledger import check_ledger

    engine = make_engine(url)
    with unit_of_work(engine) as session:
        stored = session.execute(text("SELECT count(*) FROM usage_events")).scalar_one()
        report = check_ledger(session)
    engine.dispose()
    if stored != unique or not report.ok:
        return f"FAILED: {stored} stored of {unique}; {report.problems[:3]}"
    return f"ok ({stored:,} events, {report.batches_checked} batches, ledger check passed)"


def _decoded(bodies: list[bytes]) -> list[list[dict]]:
    return [json.loads(body)["events"] for body in bodies]


def baseline_postgres(conninfo: str, batches: list[list[dict]]) -> float:
    """COPY into a temp table, INSERT … SELECT ON CONFLICT DO NOTHING, hourly rollup upsert."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bare_events (account_id text, event_id text, meter text, quantity bigint, "
            "occurred_at timestamptz, model text, project text, api_key text, dimensions json, "
            "PRIMARY KEY (account_id, event_id))"
        )
        conn.execute(
            "CREATE TABLE bare_rollup (account_id text, hour_start timestamptz, meter text, model text, "
            "project text, api_key text, quantity bigint, event_count bigint, "
            "PRIMARY KEY (account_id, hour_start, meter, model, project, api_key))"
        )
        started = time.perf_counter()
        for batch in batches:
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE incoming (LIKE bare_events) ON COMMIT DROP")
                with conn.cursor() as cur, cur.copy("COPY incoming FROM STDIN") as copy:
                    for e in batch:
                        d = e["dimensions"]
                        copy.write_row(
                            (
                                e["account_id"],
                                e["event_id"],
                                e["meter"],
                                e["quantity"],
                                datetime.fromisoformat(e["timestamp"]),
                                d["model"],
                                d["project"],
                                d["api_key"],
                                json.dumps(d),
                            )
                        )
                conn.execute(
                    "WITH ins AS (INSERT INTO bare_events SELECT DISTINCT ON (account_id, event_id) * "
                    "FROM incoming ON CONFLICT DO NOTHING RETURNING *) "
                    "INSERT INTO bare_rollup SELECT account_id, date_trunc('hour', occurred_at), meter, "
                    "model, project, api_key, sum(quantity), count(*) FROM ins GROUP BY 1, 2, 3, 4, 5, 6 "
                    "ON CONFLICT (account_id, hour_start, meter, model, project, api_key) "
                    "DO UPDATE SET quantity = bare_rollup.quantity + excluded.quantity, "
                    "event_count = bare_rollup.event_count + excluded.event_count"
                )
        return time.perf_counter() - started


def baseline_sqlite(path: Path, batches: list[list[dict]]) -> float:
    """INSERT OR IGNORE, then the hourly rollup upsert of the rows that went in."""
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE bare_events (account_id TEXT, event_id TEXT, meter TEXT, quantity INTEGER, "
        "occurred_at TEXT, model TEXT, project TEXT, api_key TEXT, dimensions TEXT, "
        "PRIMARY KEY (account_id, event_id))"
    )
    conn.execute(
        "CREATE TABLE bare_rollup (account_id TEXT, hour_start TEXT, meter TEXT, model TEXT, project TEXT, "
        "api_key TEXT, quantity INTEGER, event_count INTEGER, "
        "PRIMARY KEY (account_id, hour_start, meter, model, project, api_key))"
    )
    started = time.perf_counter()
    for batch in batches:
        conn.execute("BEGIN IMMEDIATE")
        rollup: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for e in batch:
            d = e["dimensions"]
            moment = datetime.fromisoformat(e["timestamp"]).astimezone(UTC)
            cursor = conn.execute(
                "INSERT OR IGNORE INTO bare_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    e["account_id"],
                    e["event_id"],
                    e["meter"],
                    e["quantity"],
                    moment.isoformat(),
                    d["model"],
                    d["project"],
                    d["api_key"],
                    json.dumps(d),
                ),
            )
            if cursor.rowcount:
                key = (
                    e["account_id"],
                    moment.replace(minute=0, second=0, microsecond=0).isoformat(),
                    e["meter"],
                    d["model"],
                    d["project"],
                    d["api_key"],
                )
                rollup[key][0] += e["quantity"]
                rollup[key][1] += 1
        conn.executemany(
            "INSERT INTO bare_rollup VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
            "quantity = quantity + excluded.quantity, event_count = event_count + excluded.event_count",
            [(*key, q, n) for key, (q, n) in rollup.items()],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def run_one(db: str, work: Workload, now: datetime, clients: int, workers: int) -> list[Row]:
    name = f"meterline_bench_{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix="meterline-bench-"))
    if db == "postgres":
        admin = psycopg.connect(ADMIN_URL, autocommit=True)
        admin.execute(f'CREATE DATABASE "{name}"')
        conninfo = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        url = conninfo
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    try:
        log(f"{db}: seeding {url}")
        seed(url, now)
        # SQLite has one writer at a time: a second worker would only queue on its lock.
        workers = workers or (2 if db == "postgres" else 1)
        process, base = start_server(url, workers)
        try:
            log(f"{db}: posting {work.sent:,} events in {len(work.bodies)} requests from {clients} clients")
            elapsed, accepted, duplicates = post_all(base, work.bodies, clients)
        finally:
            process.terminate()
            process.wait(timeout=30)
        outcome = verify(url, work.unique)
        log(f"{db}: {outcome}")
        batches = _decoded(work.bodies)
        log(f"{db}: bare baseline")
        if db == "postgres":
            bare = baseline_postgres(conninfo, batches)
        else:
            bare = baseline_sqlite(tmp / "bare.db", batches)
    finally:
        if db == "postgres":
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
    rate = work.sent / elapsed
    bare_rate = work.sent / bare
    load = f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    return [
        Row(
            f"{db}: events/s through HTTP (rated, debited, rolled up)",
            f"{rate:,.0f}/s ({work.sent:,} in {elapsed:.1f} s)",
            f">= {TARGETS[db]:,}/s",
            rate >= TARGETS[db],
        ),
        Row(f"{db}: accepted / duplicates reported", f"{accepted:,} / {duplicates:,}"),
        Row(f"{db}: integrity", outcome, "ok", outcome.startswith("ok")),
        Row(f"{db}: bare baseline ({BASELINES[db]})", f"{bare_rate:,.0f}/s"),
        Row(f"{db}: end to end / bare baseline", f"{rate / bare_rate:.0%}"),
        Row(f"{db}: machine load (1-min average) after the run", load),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--duplicates", type=float, default=0.05)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=20, help="accounts the events spread over (max 20)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--workers", type=int, default=0, help="uvicorn workers (default: 2 on PostgreSQL, 1 on SQLite)"
    )
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.workers or 1)
        return
    now = datetime.now(UTC).replace(microsecond=0)
    log(f"generating {args.events:,} events")
    work = make_events(args.events, args.batch, args.duplicates, now, min(args.accounts, len(ACCOUNTS)))
    rows: list[Row] = []
    for db in ("postgres", "sqlite") if args.db == "both" else (args.db,):
        rows.extend(run_one(db, work, now, args.clients, args.workers))
    print_table(
        f"Ingestion: {args.events:,} events over {min(args.accounts, len(ACCOUNTS))} accounts, "
        f"batches of {args.batch:,}, {args.duplicates:.0%} resent",
        rows,
    )


if __name__ == "__main__":
    main()
