"""Ingestion benchmark: POST /api/v1/events end to end, against the database's bare pace.

    .venv/bin/python -m bench ingest [--quick] [--db postgres|sqlite|both] [--shape bench|few|hot|both|all]
                                     [--servers api1,api2,portal] [--events N] [--clients N] …

What issue 11's targets ask, each figure printed beside its target:

- Two workload shapes, batches of 1,000, 5 % of each batch resent from earlier batches:
  *bench* (20 accounts, 3 meters, model/project/api_key dimensions, 3 % of events up to
  ten days late: about 450 distinct hourly rollup keys per 1,000 events) and *few keys* (4 accounts, 4
  meters, no dimensions, all events of the last ten minutes); and *hot* (``--shape hot`` or
  ``all``): the bench shape with every event of one account, one large customer sending from
  many servers, so that every batch queues for the same account lock (its pace is printed
  against the bench shape's when both run).
- The bare baseline (``bench/_bare.py``), measured in this run on the same events and
  batches, from as many connections as there are HTTP clients, once before and once after
  the end-to-end runs of a shape; ratios are taken against the faster of the two.
- End to end over HTTP: each client thread holds one kept-alive ``httpx.Client`` and posts
  pre-encoded bodies, taking the next batch as it goes; the clock runs from the first
  request to the last answer. Servers: ``meterline api serve --workers 1`` and ``2`` and the
  one-port portal (``streamlit run app/server.py``), each on a fresh copy of the seeded
  database, started with ``METERLINE_JOBS=off``. After every run the ledger check must pass
  and every unique event be stored (and reported accepted) exactly once.
- The server's own CPU per 1,000 events (the API worker processes' CPU time while the clock
  ran, from /proc, divided by the events sent), beside the ratios: less sensitive to a
  shared machine's load than the pace.
- A concurrency check: 4 API workers, 4 clients each sending every event of a set in its
  own order, so that concurrent batches share ids: each event must be accepted and stored
  once, and the ledger check pass.

``--preload N`` runs the scale part instead (``bench/scale.py``: the same ingestion
against a table already holding N events, partitioned against today's table; every flag
goes to it).

Client connections are opened one after another (each with a first request) before the
clock starts, as a pool grows under load; with several workers the bench prints how the
kernel spread them (workers share one listening socket and a connection stays with the
worker that accepted it). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench import _bare
from bench._observe import CpuMeter, PgActivity
from bench._portal import Portal, connections_per_worker, run_api_server, run_portal, worker_pids
from bench._report import Row, print_table
from bench._scratch import ACCOUNTS, TOKEN, ScratchDatabases

MODELS = ["atlas-large", "atlas-mini", "nova", "nova-pro"]
PROJECTS = ["web", "batch"]  # each account has two projects, one API key each
BENCH_METERS = ["input_tokens", "output_tokens", "requests"]
FEW_KEYS_METERS = ["input_tokens", "output_tokens", "requests", "cached_input_tokens"]
FEW_KEYS_ACCOUNTS = 4

API_RATIO_TARGET = 0.5  # of the bare baseline, with 2 API workers
PORTAL_RATIO_TARGET = 0.3  # of the bare baseline, through the one-port portal
SQLITE_TARGET = 12_000  # events/s through the portal, bench shape
SCALE_OUT_TARGET = 1.2  # 2 workers over 1: "clearly faster"
SERVER_ENV = {"METERLINE_API_TOKEN": TOKEN, "METERLINE_JOBS": "off"}
SERVERS = {"api1": "API --workers 1", "api2": "API --workers 2", "portal": "portal (one port)"}
CONCURRENCY_WORKERS = 4
CONCURRENCY_CLIENTS = 4
CONCURRENCY_BATCH = 500


_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[bench.ingest {time.perf_counter() - _STARTED:5.0f} s] {message}", file=sys.stderr, flush=True)


def load_note() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


# Workloads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    shape: str
    batches: list[list[dict[str, Any]]]  # the events, batch by batch (the bare baseline reads these)
    bodies: list[bytes]  # the same batches as request bodies, encoded once up front
    sent: int
    unique: int
    hourly_keys_per_1000: float

    def describe(self, clients: int) -> str:
        batch = len(self.batches[0]) if self.batches else 0
        return (
            f"{self.sent:,} events ({self.unique:,} unique), batches of {batch:,}, "
            f"about {self.hourly_keys_per_1000:,.0f} hourly rollup keys per 1,000 events, {clients} clients"
        )


def _bench_event(rng: random.Random, number: int, now: datetime) -> dict[str, Any]:
    """The bench shape: 20 accounts, 3 meters, model/project/api_key; 3 % arrive up to 10 days late."""
    meter = rng.choice(BENCH_METERS)
    account = rng.randrange(len(ACCOUNTS))
    project = rng.randrange(len(PROJECTS))
    age_s = rng.randint(0, 10 * 86_400) if rng.random() < 0.03 else rng.randint(0, 600)
    return {
        "event_id": f"evt-{number:08d}-{uuid.uuid4().hex[:8]}",
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


def _hot_event(rng: random.Random, number: int, now: datetime) -> dict[str, Any]:
    """The bench shape with every event of one account (its two projects and API keys)."""
    event = _bench_event(rng, number, now)
    project = rng.randrange(len(PROJECTS))
    event["account_id"] = ACCOUNTS[0]
    event["dimensions"]["project"] = f"{PROJECTS[project]}-0"
    event["dimensions"]["api_key"] = f"key_0_{project}"
    return event


def _few_keys_event(rng: random.Random, number: int, now: datetime) -> dict[str, Any]:
    """Few keys: 4 accounts, 4 meters, no dimensions, all of the last ten minutes."""
    meter = rng.choice(FEW_KEYS_METERS)
    return {
        "event_id": f"evt-{number:08d}-{uuid.uuid4().hex[:8]}",
        "account_id": ACCOUNTS[rng.randrange(FEW_KEYS_ACCOUNTS)],
        "meter": meter,
        "quantity": 1 if meter == "requests" else rng.randint(50, 8_000),
        "timestamp": (now - timedelta(seconds=rng.randint(0, 600))).isoformat(),
    }


SHAPES: dict[str, Callable[[random.Random, int, datetime], dict[str, Any]]] = {
    "bench": _bench_event,
    "few keys": _few_keys_event,
    "hot": _hot_event,
}


def make_workload(
    shape: str, total: int, batch_size: int, duplicate_share: float, now: datetime, seed: int = 7
) -> Workload:
    """``total`` events in batches; ``duplicate_share`` of each batch resends events of earlier batches."""
    rng = random.Random(seed)
    fresh_event = SHAPES[shape]
    sent_so_far: list[dict[str, Any]] = []
    batches: list[list[dict[str, Any]]] = []
    unique = 0
    produced = 0
    while produced < total:
        size = min(batch_size, total - produced)
        produced += size
        batch: list[dict[str, Any]] = []
        fresh: list[dict[str, Any]] = []
        for _ in range(size):
            if sent_so_far and rng.random() < duplicate_share:
                batch.append(sent_so_far[rng.randrange(len(sent_so_far))])
                continue
            unique += 1
            event = fresh_event(rng, unique, now)
            batch.append(event)
            fresh.append(event)
        sent_so_far.extend(fresh)
        batches.append(batch)
    bodies = [json.dumps({"events": batch}).encode() for batch in batches]
    return Workload(shape, batches, bodies, total, unique, _hourly_keys_per_1000(batches))


def _hourly_keys_per_1000(batches: list[list[dict[str, Any]]]) -> float:
    keys = 0
    for batch in batches:
        distinct = set()
        for event in batch:
            moment = datetime.fromisoformat(event["timestamp"]).astimezone(UTC)
            hour = moment.replace(minute=0, second=0, microsecond=0)
            dims = event.get("dimensions") or {}
            distinct.add((event["account_id"], event["meter"], hour, *dims.values()))
        keys += len(distinct)
    events = sum(len(batch) for batch in batches)
    return 1000 * keys / events if events else 0.0


def concurrency_workload(events: int, clients: int, now: datetime) -> list[list[bytes]]:
    """For each client, every one of ``events`` bench-shape events, in its own order, in batches of 500."""
    rng = random.Random(11)
    pool = [_bench_event(rng, n, now) for n in range(1, events + 1)]
    per_client = []
    for client in range(clients):
        order = pool[:]
        random.Random(100 + client).shuffle(order)
        per_client.append(
            [
                json.dumps({"events": order[i : i + CONCURRENCY_BATCH]}).encode()
                for i in range(0, len(order), CONCURRENCY_BATCH)
            ]
        )
    return per_client


# HTTP side ----------------------------------------------------------------------------------

MAX_RECONNECTS = 50  # per client, when spreading connections evenly


@dataclass
class PostOutcome:
    seconds: float = 0.0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    spread: list[int] = field(default_factory=list)  # connections per worker while the clock ran
    first_spread: list[int] = field(default_factory=list)  # where the kernel put each first attempt
    cpu: str = ""
    server_ms: list[float] = field(default_factory=list)  # CPU ms per 1,000 events: whole server, per worker
    sessions: str = ""  # what the server's PostgreSQL sessions were doing (PgActivity)

    def spread_note(self) -> str:
        if len(self.spread) < 2:
            return ""
        note = "connections per worker " + "/".join(map(str, self.spread))
        if self.first_spread != self.spread:
            note += " (kernel's first picks " + "/".join(map(str, self.first_spread)) + ")"
        return note


def _open_clients(server: Portal, count: int, even: bool) -> tuple[list[httpx.Client], list[int]]:
    """``count`` kept-alive clients, connected one after another, each with a first (warm-up) request.

    Returns them with where the kernel put each first connection attempt (per worker).
    ``even``: a connection landing on a worker that already holds its share is closed and
    opened again, as a load balancer in front of the workers would spread them.
    """
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    workers = len(worker_pids(server.pid))
    share = -(-count // workers)  # ceil
    clients: list[httpx.Client] = []
    first_spread = [0] * workers
    for _ in range(count):
        for attempt in range(MAX_RECONNECTS):
            before = connections_per_worker(server)
            client = httpx.Client(base_url=server.base_url, headers=headers, timeout=120)
            client.get("/api/v1/meters").raise_for_status()
            after = connections_per_worker(server)
            landed = next((i for i, (a, b) in enumerate(zip(before, after, strict=False)) if b > a), None)
            if attempt == 0 and landed is not None:
                first_spread[landed] += 1
            if not even or workers == 1 or landed is None or after[landed] <= share:
                break
            if attempt == MAX_RECONNECTS - 1:
                log(f"could not spread the connections evenly: {after}")
                break
            client.close()
            time.sleep(0.01)
        clients.append(client)
        time.sleep(0.02)
    return clients, first_spread


def post_all(
    server: Portal, queues: list[list[bytes]], *, events: int, clients: int, even: bool, database_url: str
) -> PostOutcome:
    """Post every body from ``clients`` threads, count the answers; timed from first request to last answer.

    One queue: each client takes the next body from it. Otherwise client ``i`` posts ``queues[i]`` in order.
    """
    assert len(queues) in (1, clients)
    shared = len(queues) == 1
    postgres = database_url.startswith("postgresql")
    client_list, first_spread = _open_clients(server, clients, even)
    outcome = PostOutcome(spread=connections_per_worker(server), first_spread=first_spread)
    lock = threading.Lock()
    next_body = [0]
    start = threading.Barrier(clients + 1)

    def take(own: list[bytes], position: int) -> bytes | None:
        if not shared:
            return own[position] if position < len(own) else None
        with lock:
            index = next_body[0]
            next_body[0] += 1
        return queues[0][index] if index < len(queues[0]) else None

    def work(client: httpx.Client, own: list[bytes]) -> None:
        start.wait()
        position = 0
        while not outcome.errors:
            body = take(own, position)
            position += 1
            if body is None:
                return
            try:
                response = client.post("/api/v1/events", content=body)
            except httpx.HTTPError as error:
                with lock:
                    outcome.errors.append(f"{type(error).__name__}: {error}")
                return
            if response.status_code != 200:
                with lock:
                    outcome.errors.append(f"{response.status_code}: {response.text[:200]}")
                return
            answer = response.json()
            with lock:
                outcome.accepted += answer["accepted"]
                outcome.duplicates += len(answer["duplicates"])
                outcome.rejected += len(answer["rejected"])

    threads = [
        threading.Thread(target=work, args=(client, queues[i % len(queues)]))
        for i, client in enumerate(client_list)
    ]
    for thread in threads:
        thread.start()
    cpu = CpuMeter(server, postgres)
    activity = PgActivity(database_url) if postgres else None
    start.wait()
    began = time.perf_counter()
    cpu.restart()
    if activity:
        activity.start()
    for thread in threads:
        thread.join()
    outcome.seconds = time.perf_counter() - began
    outcome.cpu = cpu.summary(events)
    outcome.server_ms = cpu.server_ms_per_1000(events)
    if activity:
        outcome.sessions = activity.stop()
    for client in client_list:
        client.close()
    return outcome


def verify(url: str, unique: int, outcome: PostOutcome) -> tuple[bool, str]:
    """Every unique event stored, rolled up and accepted once, no request failed, the ledger check passes."""
    from core.db import make_engine
    from core.ledger import run_ledger_check

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM usage_events")).scalar_one()
            rolled = conn.execute(
                text("SELECT coalesce(sum(event_count), 0) FROM usage_rollup_hourly")
            ).scalar_one()
        report = run_ledger_check(engine)
    finally:
        engine.dispose()
    problems = []
    if outcome.errors:
        problems.append(f"{len(outcome.errors)} requests failed, first: {outcome.errors[0]}")
    if outcome.rejected:
        problems.append(f"{outcome.rejected:,} events rejected")
    if stored != unique or outcome.accepted != unique or rolled != unique:
        problems.append(
            f"{unique:,} unique: {stored:,} stored, {outcome.accepted:,} accepted, {rolled:,} rolled up"
        )
    if not report.ok:
        problems.append(f"ledger check: {report.problems[:3]}")
    if problems:
        return False, "FAILED: " + "; ".join(problems)
    return True, (
        f"{stored:,} stored once, {outcome.accepted:,} accepted, {outcome.duplicates:,} duplicates; "
        f"ledger check passed ({report.batches_checked:,} batches)"
    )


# Runs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndToEnd:
    server: str  # a key of SERVERS
    rate: float
    outcome: PostOutcome
    ok: bool
    integrity: str
    load: str


def _server(server: str, url: str) -> AbstractContextManager[Portal]:
    if server == "portal":
        return run_portal(url, env=SERVER_ENV)
    return run_api_server(url, workers=int(server.removeprefix("api")), env=SERVER_ENV)


def run_end_to_end(
    scratch: ScratchDatabases, db: str, server: str, work: Workload, clients: int, even: bool
) -> EndToEnd:
    url = scratch.postgres(server) if db == "postgres" else scratch.sqlite(server)
    with _server(server, url) as running:
        log(f"{db} {work.shape}: {SERVERS[server]}: posting {work.sent:,} events from {clients} clients")
        outcome = post_all(
            running, [work.bodies], events=work.sent, clients=clients, even=even, database_url=url
        )
    ok, integrity = verify(url, work.unique, outcome)
    rate = work.sent / outcome.seconds
    log(f"{db} {work.shape}: {SERVERS[server]}: {rate:,.0f}/s in {outcome.seconds:.1f} s; {integrity}")
    return EndToEnd(server, rate, outcome, ok, integrity, load_note())


def run_bare(scratch: ScratchDatabases, db: str, work: Workload, clients: int) -> tuple[float, str]:
    """(events/s, note) of the bare baseline on a fresh copy of the seeded database."""
    if db == "postgres":
        url = scratch.postgres("bare")
        rows = _bare.prepare(work.batches, _bare.meter_ids_postgres(url), scratch.now)
        result = _bare.bare_postgres(url, rows, clients)
    else:
        path = Path(make_url(scratch.sqlite("bare")).database or "")
        rows = _bare.prepare(work.batches, _bare.meter_ids_sqlite(path), scratch.now)
        result = _bare.bare_sqlite(path, rows)
    rate = work.sent / result.seconds
    note = f", {result.deadlocks_retried} deadlocks retried" if result.deadlocks_retried else ""
    log(f"{db} {work.shape}: bare baseline {rate:,.0f}/s in {result.seconds:.1f} s{note}")
    return rate, note


def shape_rows(
    scratch: ScratchDatabases,
    db: str,
    work: Workload,
    clients: int,
    servers: list[str],
    even: bool,
    paces: dict[tuple[str, str], float] | None = None,
) -> list[Row]:
    """Bare baseline, the end-to-end runs, the bare baseline again: the rows of one table.

    ``paces`` collects each run's events/s by (shape, server); the hot shape's table compares
    its runs with the bench shape's found there.
    """
    bare_before, note_before = run_bare(scratch, db, work, clients)
    runs = [run_end_to_end(scratch, db, server, work, clients, even) for server in servers]
    if paces is not None:
        paces.update({(work.shape, run.server): run.rate for run in runs})
    bare_after, note_after = run_bare(scratch, db, work, clients)
    bare = max(bare_before, bare_after)
    if db == "postgres":
        what = (
            f"COPY to temp, INSERT ON CONFLICT, hourly+daily upserts, balance UPDATEs; {clients} connections"
        )
    else:
        what = "INSERT OR IGNORE, hourly+daily upserts, balance UPDATEs; 1 connection"
    rows = [
        Row(
            f"bare baseline ({what})",
            f"{bare:,.0f}/s (best of before {bare_before:,.0f} and after {bare_after:,.0f}"
            f"{note_before}{note_after})",
        )
    ]
    for run in runs:
        measured = (
            f"{run.rate:,.0f}/s = {run.rate / bare:.2f}× bare ({run.outcome.seconds:.1f} s, {run.load})"
        )
        target, passed = "-", None
        if db == "sqlite" and run.server == "portal":
            target, passed = f">= {SQLITE_TARGET:,}/s", run.rate >= SQLITE_TARGET
        elif db == "postgres" and run.server == "api2":
            target, passed = f">= {API_RATIO_TARGET}× bare", run.rate >= API_RATIO_TARGET * bare
        elif db == "postgres" and run.server == "portal":
            target, passed = f">= {PORTAL_RATIO_TARGET}× bare", run.rate >= PORTAL_RATIO_TARGET * bare
        rows.append(Row(f"end to end, {SERVERS[run.server]}", measured, target, passed))
        if run.outcome.server_ms:
            whole, *workers = run.outcome.server_ms
            each = f" ({' + '.join(f'{w:.1f}' for w in workers)} by worker)" if len(workers) > 1 else ""
            rows.append(
                Row(
                    f"  {SERVERS[run.server]}: server CPU ms per 1,000 events",
                    f"{whole:.1f} ms{each}, {run.load}",
                )
            )
    by_server = {run.server: run for run in runs}
    if work.shape == "hot" and paces is not None:
        for run in runs:
            bench_pace = paces.get(("bench", run.server))
            if bench_pace:
                rows.append(
                    Row(
                        f"end to end, {SERVERS[run.server]}: one account / bench shape (20 accounts)",
                        f"{run.rate / bench_pace:.2f}× ({run.rate:,.0f}/s against {bench_pace:,.0f}/s)",
                    )
                )
    if "api1" in by_server and "api2" in by_server:
        gain = by_server["api2"].rate / by_server["api1"].rate
        rows.append(
            Row(
                "end to end, API 2 workers / 1 worker",
                f"{gain:.2f}×",
                f">= {SCALE_OUT_TARGET}× (clearly faster)",
                gain >= SCALE_OUT_TARGET,
            )
        )
    for run in runs:
        spread = run.outcome.spread_note()
        cpu = run.outcome.cpu + (f"; {spread}" if spread else "")
        rows.append(Row(f"  {SERVERS[run.server]}: where the time went", cpu))
        if run.outcome.sessions:
            rows.append(Row("", run.outcome.sessions))
    for run in runs:
        rows.append(
            Row(f"  integrity after {SERVERS[run.server]}", run.integrity, "all once, ledger ok", run.ok)
        )
    return rows


def concurrency_rows(scratch: ScratchDatabases, events: int, now: datetime, even: bool) -> list[Row]:
    """4 API workers, 4 clients sending the same events in different orders: each counted once."""
    queues = concurrency_workload(events, CONCURRENCY_CLIENTS, now)
    sent = events * CONCURRENCY_CLIENTS
    url = scratch.postgres("overlap")
    with run_api_server(url, workers=CONCURRENCY_WORKERS, env=SERVER_ENV) as server:
        log(f"concurrency: {CONCURRENCY_WORKERS} workers, {CONCURRENCY_CLIENTS} clients, {sent:,} sent")
        outcome = post_all(
            server, queues, events=sent, clients=CONCURRENCY_CLIENTS, even=even, database_url=url
        )
    ok, integrity = verify(url, events, outcome)
    log(f"concurrency: {integrity}")
    return [
        Row(
            f"{CONCURRENCY_WORKERS} API workers, {CONCURRENCY_CLIENTS} clients each sending all "
            f"{events:,} events in its own order (batches of {CONCURRENCY_BATCH})",
            integrity,
            "each event once, ledger ok",
            ok,
        ),
        Row(
            "  throughput of that run",
            f"{sent / outcome.seconds:,.0f} events/s sent ({sent:,} in {outcome.seconds:.1f} s; "
            f"{outcome.spread_note()}; {load_note()})",
        ),
    ]


# Entry point --------------------------------------------------------------------------------


def _servers(value: str) -> list[str]:
    chosen = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in SERVERS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SERVERS)}, not {value!r}")
    return chosen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench ingest", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer events: the whole part in a minute or two"
    )
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument(
        "--shape",
        choices=["bench", "few", "hot", "both", "all"],
        default="both",
        help="PostgreSQL shapes: both = bench and few keys; all = those and hot (one account)",
    )
    parser.add_argument(
        "--servers",
        type=_servers,
        default="api1,api2,portal",
        help="PostgreSQL end-to-end runs, comma-separated of api1, api2, portal (SQLite runs the portal)",
    )
    parser.add_argument(
        "--spread",
        choices=["even", "kernel"],
        default="even",
        help="kept-alive connections over API workers: even (as a load balancer would; default) "
        "or as the kernel hands them out",
    )
    parser.add_argument("--events", type=int, help="events per run (default 150,000; --quick 50,000)")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--duplicates", type=float, default=0.05)
    parser.add_argument(
        "--clients", type=int, default=4, help="HTTP clients = baseline connections (default 4)"
    )
    parser.add_argument(
        "--overlap-events",
        type=int,
        help="unique events of the concurrency check (default 10,000; --quick 4,000)",
    )
    parser.add_argument("--no-overlap", action="store_true", help="skip the concurrency check")
    return parser


def _tables(args: argparse.Namespace, now: datetime) -> Iterator[tuple[str, list[Row]]]:
    even = args.spread == "even"
    events = args.events or (50_000 if args.quick else 150_000)
    shapes = {
        "bench": ["bench"],
        "few": ["few keys"],
        "hot": ["hot"],
        "both": ["bench", "few keys"],
        "all": ["bench", "few keys", "hot"],
    }[args.shape]
    paces: dict[tuple[str, str], float] = {}
    with ScratchDatabases(now) as scratch:
        if args.db in ("postgres", "both"):
            for shape in shapes:
                work = make_workload(shape, events, args.batch, args.duplicates, now)
                title = (
                    f"PostgreSQL, {shape} shape: {work.describe(args.clients)}, {args.duplicates:.0%} resent"
                )
                rows = shape_rows(scratch, "postgres", work, args.clients, args.servers, even, paces)
                yield title, rows
            if not args.no_overlap:
                overlap = args.overlap_events or (4_000 if args.quick else 10_000)
                yield (
                    "PostgreSQL, concurrent workers on overlapping event ids",
                    concurrency_rows(scratch, overlap, now, even),
                )
        if args.db in ("sqlite", "both"):
            work = make_workload("bench", events, args.batch, args.duplicates, now)
            title = f"SQLite, bench shape: {work.describe(args.clients)}, {args.duplicates:.0%} resent"
            yield title, shape_rows(scratch, "sqlite", work, args.clients, ["portal"], even)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if any(arg == "--preload" or arg.startswith("--preload=") for arg in argv):
        # Against a table already holding N events: the scale part (bench/scale.py) takes all the flags.
        from bench import scale

        scale.main(argv)
        return
    args = _parser().parse_args(argv)
    now = datetime.now(UTC).replace(microsecond=0)
    started_load = os.getloadavg()
    tables = list(_tables(args, now))
    for title, rows in tables:
        print_table(f"Ingestion, {title}", rows)
    ended_load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs; load average (1, 5, 15 min) at start "
        f"{', '.join(f'{x:.1f}' for x in started_load)}, at end {', '.join(f'{x:.1f}' for x in ended_load)}",
        flush=True,
    )


if __name__ == "__main__":
    main()
