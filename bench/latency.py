"""Kept-alive API latency: ``GET /api/v1/accounts/{id}/balance`` over ONE kept-alive connection.

    .venv/bin/python -m bench latency [--db postgres|sqlite] [--requests 500] [--warmup 50]

Issue 11's target: p99 at most 5 ms, on the one-port portal (``streamlit run
app/server.py``) and on the scaled-out API (``meterline api serve --workers 2``). Both
serve a fresh copy of the seeded bench database (20 accounts with a grant each) after a few
thousand events went in through ``ingest_events``, so balances have ledger entries behind
them. One ``httpx.Client`` sends the requests one after another, cycling over the
accounts; the first ``--warmup`` are not counted. For comparison the bench also times a
few requests on a fresh connection each (the Nagle / delayed-ACK stall used to make
kept-alive calls ten times slower than those). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import httpx

from bench._portal import Portal, connections_per_worker, run_api_server, run_portal
from bench._report import Row, percentile, print_table
from bench._scratch import ACCOUNTS, TOKEN, ScratchDatabases
from bench.ingest import SERVER_ENV, make_workload

P99_TARGET_MS = 5.0
FRESH_REQUESTS = 50
HISTORY_EVENTS = 5_000  # ingested before the servers start, so balances have entries behind them


def log(message: str) -> None:
    print(f"[bench.latency] {message}", file=sys.stderr, flush=True)


def add_history(url: str, now: datetime) -> None:
    """Ingest some bench-shape events in-process (no HTTP), as usage would have left them."""
    from core.clock import system_clock
    from core.db import make_engine, unit_of_work
    from core.metering import ingest_events

    work = make_workload("bench", HISTORY_EVENTS, 1_000, 0.05, now)
    engine = make_engine(url)
    try:
        for batch in work.batches:
            with unit_of_work(engine, write=True) as session:
                ingest_events(session, batch, clock=system_clock, source="api")
    finally:
        engine.dispose()


def _paths() -> list[str]:
    return [f"/api/v1/accounts/{account_id}/balance" for account_id in ACCOUNTS]


def kept_alive_ms(server: Portal, requests: int, warmup: int) -> tuple[list[float], int]:
    """Milliseconds per request on one kept-alive connection, and the connections the server saw."""
    paths = _paths()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timings: list[float] = []
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        for i in range(warmup + requests):
            began = time.perf_counter()
            response = client.get(paths[i % len(paths)])
            elapsed_ms = (time.perf_counter() - began) * 1000
            response.raise_for_status()
            if i >= warmup:
                timings.append(elapsed_ms)
        connections = sum(connections_per_worker(server))
    return timings, connections


def fresh_connection_ms(server: Portal, requests: int) -> list[float]:
    """Milliseconds per request, each on a new connection (connect included)."""
    paths = _paths()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timings = []
    no_reuse = httpx.Limits(max_keepalive_connections=0)  # each request opens (and closes) its own
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30, limits=no_reuse) as client:
        for i in range(requests):
            began = time.perf_counter()
            client.get(paths[i % len(paths)]).raise_for_status()
            timings.append((time.perf_counter() - began) * 1000)
    return timings


def _servers(url: str) -> dict[str, AbstractContextManager[Portal]]:
    return {
        "portal (one port)": run_portal(url, env=SERVER_ENV),
        "API --workers 2": run_api_server(url, workers=2, env=SERVER_ENV),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench latency", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--requests", type=int, default=500, help="timed requests per server (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="requests before the timed ones (default 50)")
    args = parser.parse_args(argv)
    if args.requests < 200:
        parser.error("--requests must be at least 200 (a p99 needs them)")
    now = datetime.now(UTC).replace(microsecond=0)
    rows: list[Row] = []
    with ScratchDatabases(now) as scratch:
        url = scratch.postgres("latency") if args.db == "postgres" else scratch.sqlite("latency")
        log(f"ingesting {HISTORY_EVENTS:,} events of history")
        add_history(url, now)
        for name, server_context in _servers(url).items():
            with server_context as server:
                timings, connections = kept_alive_ms(server, args.requests, args.warmup)
                fresh = fresh_connection_ms(server, FRESH_REQUESTS)
            p99 = percentile(timings, 0.99)
            log(f"{name}: p50 {statistics.median(timings):.2f} ms, p99 {p99:.2f} ms")
            rows.append(
                Row(
                    f"{name}: GET balance, one kept-alive connection",
                    f"p50 {statistics.median(timings):.2f} ms, p99 {p99:.2f} ms, max {max(timings):.2f} ms "
                    f"({len(timings)} requests after {args.warmup} warm-up, {connections} connection(s) "
                    f"at the server; load {os.getloadavg()[0]:.1f})",
                    f"p99 <= {P99_TARGET_MS:g} ms",
                    p99 <= P99_TARGET_MS,
                )
            )
            rows.append(
                Row(
                    f"  {name}: same on a fresh connection each",
                    f"p50 {statistics.median(fresh):.2f} ms, p99 {percentile(fresh, 0.99):.2f} ms "
                    f"({FRESH_REQUESTS} requests, connect included)",
                )
            )
    print_table(f"Kept-alive API latency ({args.db})", rows)
    print(f"machine: {os.cpu_count()} CPUs; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
