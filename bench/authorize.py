"""Authorize: the overshoot of a burst past a hard cap, and latency at a fixed rate (kept-alive).

    .venv/bin/python -m bench authorize [--url http://host:port --token T --account ID]
                                        [--rate 1000] [--seconds 10] [--connections 16]
                                        [--burst 10000] [--burst-account ID] [--workers N]
                                        [--processes N] [--default-estimate 0.01]
                                        [--stack-account ID | --stack-account '']

Targets: a burst of ``--burst`` requests (half with an estimate of 0.007 credits, half
without, which hold the default estimate) against an account whose hard cap leaves 1 credit
of headroom is allowed at most N × (headroom + one estimate) in estimated cost, N being the
server processes (issue 15; ``core.spend.reservations``); p99 ≤ 5 ms at 1,000 requests/s
over kept-alive connections (issue 8). Without ``--url`` the bench starts the one-port
portal (``streamlit run app/server.py``; one process), or ``meterline api serve --workers
N`` with ``--workers``, on a fresh SQLite database with two accounts (one for the latency
run: credits, hard caps, usage; one for the burst: a 1-credit hard cap), with the default
estimate and a 60 s ingestion lag set (the burst's gateway sends no usage, so the burst must
end within the lag to measure the bound it states). A second latency run asks for a
**stacked-caps** account (``acc_stack``: hard caps on the account per month and week, on its
project per week and day, on its API key per day and month, on its meter per month, and on
other keys; 30 days of usage over 3 projects × 4 keys) naming project, meter and key, so every
decision walks six applicable caps and each snapshot read groups the daily rollup by project,
meter, key and day from the month's start (``--stack-account ''`` skips it). With ``--url`` it
measures a server already running, with ``--token`` (default ``$METERLINE_API_TOKEN``); then say how many
processes serve it (``--processes``) and its ``METERLINE_AUTHORIZE_DEFAULT_ESTIMATE``
(``--default-estimate``), and name a burst account with little headroom (or ``--burst 0``).

The load is open-loop: request *i* is due at ``start + i / rate``, spread over
``--connections`` HTTP/1.1 connections opened (and warmed) before the clock starts, each
kept alive for the whole run. Latency is measured from when a request was **due**, not when
it was sent, so a stalled server is not hidden by a client that waited for it (coordinated
omission). The client is raw asyncio streams (no HTTP library in the loop). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from bench._report import Row, print_table

TARGET_P99_MS = 5.0
TARGET_RATE = 1_000
BURST_ESTIMATE = "0.007"  # credits: half the burst's requests carry it, half carry none
BENCH_DEFAULT_ESTIMATE = "0.01"
BENCH_INGESTION_LAG_S = "60"
NANOS_PER_CREDIT = 10**9


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1))  # nearest rank
    return ordered[index]


class Connection:
    def __init__(self, host: str, port: int, request: bytes):
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def call(self, request: bytes | None = None) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.request if request is None else request)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def build_request(url: str, token: str, body: dict[str, object]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    payload = json.dumps(body).encode()
    head = (
        f"POST /api/v1/authorize HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return host, port, head.encode() + payload


async def measure(
    url: str, token: str, body: dict[str, object], *, rate: int, seconds: float, connections: int
):  # type: ignore[no-untyped-def]
    host, port, request = build_request(url, token, body)
    pool = [Connection(host, port, request) for _ in range(connections)]
    for connection in pool:
        await connection.open()
        for _ in range(20):  # warm: the first answers (snapshot load, imports) are not the steady state
            status, answer = await connection.call()
            if status != 200:
                raise RuntimeError(f"authorize answered {status}: {answer[:300]!r}")
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1

    async def worker(index: int) -> None:
        nonlocal errors
        connection = pool[index]
        for number in range(index, total, connections):
            due = start + number / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            status, _ = await connection.call()
            latencies.append((loop.time() - due) * 1000)
            if status != 200:
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    elapsed = time.perf_counter() - began
    for connection in pool:
        connection.close()
    return latencies, errors, elapsed


async def burst(
    url: str, token: str, account: str, *, requests: int, connections: int, default_estimate_nanos: int
) -> dict[str, object]:
    """Send ``requests`` authorize calls as fast as ``connections`` kept-alive connections take them
    (closed loop), alternating a 0.007-credit estimate and none; the headroom before, what was
    allowed (in estimated cost: the estimate, or the default for a request without one), latencies."""
    with_estimate = {"account_id": account, "estimated_cost": BURST_ESTIMATE}
    host, port, request_with = build_request(url, token, with_estimate)
    _, _, request_without = build_request(url, token, {"account_id": account})
    _, _, request_probe = build_request(url, token, {"account_id": account, "estimated_cost": 0})
    pool = [Connection(host, port, request_probe) for _ in range(connections)]
    for connection in pool:
        await connection.open()
    status, answer = await pool[0].call()  # an explicit zero estimate reserves nothing
    if status != 200:
        raise RuntimeError(f"authorize answered {status}: {answer[:300]!r}")
    headroom_nanos = int(json.loads(answer)["remaining_nanos"])
    estimate_nanos = int(Decimal(BURST_ESTIMATE) * NANOS_PER_CREDIT)
    allowed_nanos = allowed = errors = 0
    latencies: list[float] = []
    loop = asyncio.get_running_loop()

    async def worker(index: int) -> None:
        nonlocal allowed_nanos, allowed, errors
        connection = pool[index]
        for number in range(index, requests, connections):
            estimated = number % 2 == 0
            began = loop.time()
            status, body = await connection.call(request_with if estimated else request_without)
            latencies.append((loop.time() - began) * 1000)
            if status != 200:
                errors += 1
            elif json.loads(body)["allowed"]:
                allowed += 1
                allowed_nanos += estimate_nanos if estimated else default_estimate_nanos

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    elapsed = time.perf_counter() - began
    for connection in pool:
        connection.close()
    return {
        "headroom_nanos": headroom_nanos,
        "allowed": allowed,
        "allowed_nanos": allowed_nanos,
        "errors": errors,
        "latencies": latencies,
        "elapsed": elapsed,
    }


def _seed(database_url: str) -> None:
    from core.accounts import Actor, create_account
    from core.clock import system_clock
    from core.db import make_engine, unit_of_work
    from core.db.migrate import upgrade
    from core.ledger import grant_credits
    from core.metering import ingest_events
    from core.money import NANOS_PER_CREDIT
    from core.rating import load_rate_card
    from core.spend.caps import set_cap

    upgrade(database_url)
    engine = make_engine(database_url)
    now = system_clock()
    card = {
        "meters": [{"name": "requests", "unit": "request", "dimensions": ["project", "api_key"]}],
        "card": {"key": "bench", "name": "Bench"},
        "versions": [
            {"effective_from": "2026-01-01T00:00:00Z", "prices": [{"meter": "requests", "price": "0.01"}]}
        ],
    }
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, card, at=now, allow_backdated=True)
        create_account(session, account_id="acc_bench", name="Bench", at=now, rate_card_key="bench")
        # Room for the latency run's holds: 1,000 requests/s x 0.01 held up to the 60 s lag.
        grant_credits(
            session, account_id="acc_bench", amount_nanos=5_000 * NANOS_PER_CREDIT, source="purchased", at=now
        )
        set_cap(
            session,
            account_id="acc_bench",
            scope="account",
            limit="2000",
            mode="hard",
            actor=Actor.system("bench"),
            at=now,
        )
        set_cap(
            session,
            account_id="acc_bench",
            scope="project",
            scope_value="web",
            limit="1000",
            mode="hard",
            actor=Actor.system("bench"),
            at=now,
        )
        # The burst's account: plenty of credits, a hard cap leaving 1 credit of headroom.
        create_account(session, account_id="acc_burst", name="Burst", at=now, rate_card_key="bench")
        grant_credits(
            session, account_id="acc_burst", amount_nanos=1_000 * NANOS_PER_CREDIT, source="purchased", at=now
        )
        set_cap(
            session,
            account_id="acc_burst",
            scope="account",
            limit="1",
            mode="hard",
            actor=Actor.system("bench"),
            at=now,
        )
    _seed_stack(engine, now)
    events = [
        {
            "event_id": f"b{i}",
            "account_id": "acc_bench",
            "meter": "requests",
            "quantity": 10,
            "timestamp": (now - timedelta(minutes=i)).isoformat(),
            "dimensions": {"project": "web"},
        }
        for i in range(100)
    ]
    with unit_of_work(engine, write=True) as session:
        ingest_events(session, events, at=now)
    engine.dispose()


STACK_ACCOUNT = "acc_stack"
STACK_CAPS = (  # (scope, value, period, limit): generous, so the run measures allowed decisions
    ("account", "", "month", "100000"),
    ("account", "", "week", "50000"),
    ("project", "web", "week", "40000"),
    ("project", "web", "day", "20000"),
    ("api_key", "key_1", "day", "10000"),
    ("api_key", "key_1", "month", "90000"),
    ("meter", "requests", "month", "95000"),
    ("api_key", "key_2", "day", "10"),  # other keys' caps: in the snapshot, not applicable
    ("api_key", "key_3", "week", "10"),
    ("project", "docs", "day", "10"),
)


def _seed_stack(engine, now) -> None:  # type: ignore[no-untyped-def]
    """The stacked-caps account: credits, ten hard caps over day/week/month, and 30 days of usage
    spread over three projects and four API keys (so the grouped snapshot read has rows to sum)."""
    from core.accounts import Actor, create_account
    from core.db import unit_of_work
    from core.ledger import grant_credits
    from core.metering import ingest_events
    from core.money import NANOS_PER_CREDIT
    from core.spend.caps import set_cap

    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id=STACK_ACCOUNT, name="Stack", at=now, rate_card_key="bench")
        grant_credits(
            session,
            account_id=STACK_ACCOUNT,
            amount_nanos=5_000 * NANOS_PER_CREDIT,
            source="purchased",
            at=now,
        )
        for scope, value, period, limit in STACK_CAPS:
            set_cap(
                session,
                account_id=STACK_ACCOUNT,
                scope=scope,
                scope_value=value,
                period=period,
                limit=limit,
                mode="hard",
                actor=Actor.system("bench"),
                at=now,
            )
    events = [
        {
            "event_id": f"s{day}-{project}-{key}",
            "account_id": STACK_ACCOUNT,
            "meter": "requests",
            "quantity": 5,
            "timestamp": (now - timedelta(days=day, minutes=1)).isoformat(),
            "dimensions": {"project": project, "api_key": key},
        }
        for day in range(30)
        for project in ("web", "docs", "batch")
        for key in ("key_1", "key_2", "key_3", "key_4")
    ]
    with unit_of_work(engine, write=True) as session:
        ingest_events(session, events, at=now)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench authorize", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", help="a running server; default: start the portal on a fresh SQLite database"
    )
    parser.add_argument("--token", default=os.environ.get("METERLINE_API_TOKEN", ""))
    parser.add_argument("--account", default="acc_bench")
    parser.add_argument("--rate", type=int, default=TARGET_RATE)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--burst", type=int, default=10_000, help="requests in the overshoot burst (0: none)")
    parser.add_argument("--burst-account", default="acc_burst")
    parser.add_argument(
        "--workers", type=int, default=0, help="serve with `meterline api serve --workers N`, not the portal"
    )
    parser.add_argument("--processes", type=int, default=1, help="with --url: server processes behind it")
    parser.add_argument(
        "--stack-account",
        default=STACK_ACCOUNT,
        help="an account with stacked caps for a second latency run ('' skips it)",
    )
    parser.add_argument(
        "--default-estimate",
        default=BENCH_DEFAULT_ESTIMATE,
        help="with --url: the server's METERLINE_AUTHORIZE_DEFAULT_ESTIMATE (credits)",
    )
    args = parser.parse_args(argv)
    body = {"account_id": args.account, "project": "web", "meter": "requests", "estimated_cost": "0.01"}
    if args.url:
        if not args.token:
            sys.exit("--token (or METERLINE_API_TOKEN) is needed with --url")
        run(args.url, args.token, body, args)
        return
    from bench._portal import run_api_server, run_portal
    from core.api import server_token
    from core.db import make_engine

    env = {
        "METERLINE_AUTHORIZE_DEFAULT_ESTIMATE": BENCH_DEFAULT_ESTIMATE,
        "METERLINE_AUTHORIZE_INGESTION_LAG_S": BENCH_INGESTION_LAG_S,
    }
    args.default_estimate = BENCH_DEFAULT_ESTIMATE
    args.processes = max(1, args.workers)
    with tempfile.TemporaryDirectory(prefix="meterline-bench-authorize-") as folder:
        database_url = f"sqlite:///{Path(folder) / 'authorize.db'}"
        _seed(database_url)
        engine = make_engine(database_url)
        token = server_token(engine)
        engine.dispose()
        if args.workers:
            env["METERLINE_API_TOKEN"] = token
            with run_api_server(database_url, workers=args.workers, env=env) as server:
                run(server.base_url, token, body, args)
        else:
            with run_portal(database_url, env=env) as portal:
                run(portal.base_url, token, body, args)


def run(url: str, token: str, body: dict[str, object], args: argparse.Namespace) -> None:
    if args.burst:
        run_burst(url, token, args)
    run_latency(url, token, body, args, "authorize latency (from when each request was due)")
    if args.stack_account:
        stacked = {
            "account_id": args.stack_account,
            "project": "web",
            "meter": "requests",
            "api_key": "key_1",
            "estimated_cost": "0.01",
        }
        run_latency(
            url, token, stacked, args, "authorize latency, stacked caps: 6 of 10 apply (from when due)"
        )


def run_latency(url: str, token: str, body: dict[str, object], args: argparse.Namespace, title: str) -> None:
    print(
        f"authorize: {args.rate:,} requests/s for {args.seconds:g} s over {args.connections} kept-alive "
        f"connections to {url} ({body['account_id']})",
        flush=True,
    )
    latencies, errors, elapsed = asyncio.run(
        measure(url, token, body, rate=args.rate, seconds=args.seconds, connections=args.connections)
    )
    achieved = len(latencies) / elapsed
    p50, p99, worst = percentile(latencies, 0.50), percentile(latencies, 0.99), max(latencies)
    print_table(
        title,
        [
            Row("requests sent / non-200 answers", f"{len(latencies):,} / {errors:,}"),
            Row(
                "rate achieved",
                f"{achieved:,.0f} req/s",
                f"{args.rate:,} req/s",
                achieved >= 0.97 * args.rate,
            ),
            Row("p50", f"{p50:.2f} ms"),
            Row("p99", f"{p99:.2f} ms", f"≤ {TARGET_P99_MS:g} ms", p99 <= TARGET_P99_MS),
            Row("max", f"{worst:.2f} ms"),
        ],
    )


def run_burst(url: str, token: str, args: argparse.Namespace) -> None:
    default_nanos = int(Decimal(args.default_estimate) * NANOS_PER_CREDIT)
    print(
        f"authorize burst: {args.burst:,} requests to {args.burst_account} over {args.connections} "
        f"kept-alive connections, {args.processes} server process(es), default estimate "
        f"{args.default_estimate} credits",
        flush=True,
    )
    result = asyncio.run(
        burst(
            url,
            token,
            args.burst_account,
            requests=args.burst,
            connections=args.connections,
            default_estimate_nanos=default_nanos,
        )
    )
    headroom = int(result["headroom_nanos"])  # type: ignore[call-overload]
    allowed_nanos = int(result["allowed_nanos"])  # type: ignore[call-overload]
    # One estimate past the headroom per process: the largest a request holds (here the default).
    one_estimate = max(default_nanos, int(Decimal(BURST_ESTIMATE) * NANOS_PER_CREDIT))
    bound = args.processes * (headroom + one_estimate)
    latencies: list[float] = result["latencies"]  # type: ignore[assignment]
    elapsed = float(result["elapsed"])  # type: ignore[arg-type]

    def credits(nanos: int) -> str:
        return f"{Decimal(nanos).scaleb(-9).normalize():f}"

    print_table(
        "authorize burst against a hard cap (estimated cost of what was allowed)",
        [
            Row("requests sent / non-200 answers", f"{len(latencies):,} / {result['errors']:,}"),
            Row("requests allowed", f"{result['allowed']:,}"),
            Row("headroom before the burst", f"{credits(headroom)} credits"),
            Row(
                "allowed total",
                f"{credits(allowed_nanos)} credits",
                f"≤ {args.processes} × ({credits(headroom)} + {credits(one_estimate)}) = {credits(bound)}",
                allowed_nanos <= bound,
            ),
            Row("overshoot past the headroom", f"{credits(max(0, allowed_nanos - headroom))} credits"),
            Row("burst rate (closed loop)", f"{len(latencies) / elapsed:,.0f} req/s in {elapsed:.2f} s"),
            Row("p50 (from send)", f"{percentile(latencies, 0.50):.2f} ms"),
            Row("p99 (from send)", f"{percentile(latencies, 0.99):.2f} ms"),
        ],
    )


if __name__ == "__main__":
    main(sys.argv[1:])
