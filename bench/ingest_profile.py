"""Where one batch's Python time goes: in-process ingestion on a scratch PostgreSQL database.

    .venv/bin/python -m bench.ingest_profile [--shape bench|few|hot|both] [--batches N] [--pyinstrument]

Less noisy than throughput on a shared machine: each of ``--batches`` batches of 1,000
events (the bench's own shapes and 5 % resends, ``bench.ingest.make_workload``) is parsed
from its request body and ingested in one write transaction, as the HTTP route does; each
stage is timed by wrapping the function that does it, and the median per batch printed.
``--pyinstrument`` prints one profile of the later batches instead of the table.

On PostgreSQL the account lock is held from "lock" to the end of "commit" (the rate book
token, grants, rollup upserts and the debit between them): the table's last line sums that
critical section, which bounds the pace of one account (``--shape hot``: one batch of it at a
time).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from bench._scratch import ScratchDatabases
from bench.ingest import make_workload

# (module, attribute, stage): the functions whose time makes up a stage (a function called
# inside another timed one counts in the outer stage); "other" is the rest.
STAGES = [
    ("core.metering.ingest", "_load_meters", "catalogue reads"),
    ("core.metering.ingest", "_existing_accounts", "catalogue reads"),
    ("core.metering.ingest", "_candidate_account_ids", "validate"),
    ("core.metering.ingest", "validate_events", "validate"),
    ("core.metering.ingest", "_split_known", "twins, dates"),
    ("core.metering.ingest", "_local_dates", "twins, dates"),
    ("core.metering.ingest", "current_rate_book", "rate"),
    ("core.metering.ingest", "rate_events_tiered", "rate"),
    ("core.metering.ingest", "rate_events", "rate"),
    ("core.metering.ingest", "event_rows", "rows"),
    ("core.metering.store", "insert_new_events_pg", "copy + insert"),
    ("core.metering.store", "stored_hashes", "dedupe lookup"),
    ("core.metering.ingest", "lock_accounts", "lock"),
    ("core.metering.ingest", "load_usage_grants", "grants"),
    ("core.metering.ingest", "build_plan", "sums (Python)"),
    ("core.metering.ingest", "account_sums", "sums (Python)"),
    ("core.metering.store", "upsert_rollups", "rollup upserts"),
    ("core.metering.store", "roll_up_incoming_pg", "rollup upserts"),
    ("core.metering.store", "record_late_usage", "late usage"),
    ("core.metering.ingest", "_debit", "debit + flush"),
    ("sqlalchemy.orm.session", "Session.flush", "batch row"),  # the flushes outside the debit
    ("sqlalchemy.orm.session", "Session.begin_nested", "batch row"),
]


# The stages that run while the batch's accounts are locked (PostgreSQL's lock-late path); the
# rate book is read again there too, counted in "rate" above.
LOCK_HELD = ["lock", "grants", "rollup upserts", "late usage", "debit + flush", "commit"]


def _backend_cpu_s(pid: int) -> float:
    """CPU time of one PostgreSQL backend (ns resolution: /proc/PID/schedstat), 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


class _Clocks:
    """Wall time, this thread's CPU and the session's PostgreSQL backend's CPU, read together."""

    def __init__(self) -> None:
        self.backend_pid = 0

    def read(self) -> tuple[float, float, float]:
        return time.perf_counter(), time.thread_time(), _backend_cpu_s(self.backend_pid)

    def add(self, totals: dict[str, float], stage: str, began: tuple[float, float, float]) -> None:
        now = self.read()
        totals[stage] += now[0] - began[0]
        totals[f"{stage} cpu"] += now[1] - began[1]
        totals[f"{stage} pg"] += now[2] - began[2]


def _timed(
    stage: str, fn: Callable[..., Any], totals: dict[str, float], depth: list[int], clocks: _Clocks
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if depth[0]:  # already inside a timed stage (rate_events calls rate_events_tiered)
            return fn(*args, **kwargs)
        depth[0] += 1
        began = clocks.read()
        try:
            return fn(*args, **kwargs)
        finally:
            clocks.add(totals, stage, began)
            depth[0] -= 1

    return wrapper


def run(shape: str, batches: int, profile: bool) -> None:
    import importlib

    from sqlalchemy import event

    from core.api.body import parse_events
    from core.db import make_engine, unit_of_work
    from core.metering import ingest_events

    now = datetime.now(UTC)
    workload = make_workload(shape, batches * 1000, 1000, 0.05, now)
    with ScratchDatabases(now) as scratch:
        engine = make_engine(scratch.postgres("profile"))
        clocks = _Clocks()

        @event.listens_for(engine, "checkout")
        def _checked_out(dbapi_connection: Any, *_: Any) -> None:
            clocks.backend_pid = dbapi_connection.info.backend_pid

        try:
            per_batch: list[dict[str, float]] = []
            profiler = None
            if profile:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005)
            for number, body in enumerate(workload.bodies):
                totals: dict[str, float] = defaultdict(float)
                depth = [0]
                with ExitStack() as patches:
                    for module_name, attribute, stage in STAGES:
                        owner: Any = importlib.import_module(module_name)
                        *path, name = attribute.split(".")
                        for part in path:  # a method: "Class.method"
                            owner = getattr(owner, part)
                        original = getattr(owner, name, None)
                        if original is not None:  # stages named after older or newer code are skipped
                            wrapped = _timed(stage, original, totals, depth, clocks)
                            patches.enter_context(mock.patch.object(owner, name, wrapped))
                    if profiler is not None and number >= batches // 2:
                        profiler.start()
                    began = clocks.read()
                    raw = parse_events(body)
                    clocks.add(totals, "parse", began)
                    with unit_of_work(engine, write=True) as session:
                        session.connection()  # checked out: the backend is known from here on
                        began = (began[0], began[1], clocks.read()[2])
                        result = ingest_events(session, raw, at=now, source="api")
                        committing = clocks.read()
                    clocks.add(totals, "commit", committing)
                    clocks.add(totals, "total", began)
                    if profiler is not None and profiler.is_running:
                        profiler.stop()
                assert result.batch_id is not None, result
                if number >= 2:  # the first batches warm caches (rate book, prepared statements)
                    per_batch.append(totals)
            if profiler is not None:
                print(profiler.output_text(unicode=True, color=False, show_all=False))
                return
        finally:
            engine.dispose()
    stages = ["parse", *dict.fromkeys(s for _, _, s in STAGES), "commit"]
    print(
        f"\n{shape} shape, median of {len(per_batch)} batches of 1,000 events "
        "(ms: wall; CPU of this thread; CPU of its PostgreSQL backend):"
    )

    def median_ms(key: str) -> float:
        return statistics.median(t.get(key, 0.0) for t in per_batch) * 1000

    accounted = [0.0, 0.0, 0.0]
    for stage in stages:
        figures = [median_ms(stage), median_ms(f"{stage} cpu"), median_ms(f"{stage} pg")]
        accounted = [a + f for a, f in zip(accounted, figures, strict=True)]
        print(f"  {stage:16s}" + "".join(f" {f:6.1f}" for f in figures))
    total = [median_ms("total"), median_ms("total cpu"), median_ms("total pg")]
    print(f"  {'other':16s}" + "".join(f" {t - a:6.1f}" for t, a in zip(total, accounted, strict=True)))
    print(f"  {'total':16s}" + "".join(f" {t:6.1f}" for t in total))
    held = [sum(median_ms(f"{stage}{suffix}") for stage in LOCK_HELD) for suffix in ("", " cpu", " pg")]
    stages_held = ", ".join(LOCK_HELD)
    print(f"  {'under the lock':16s}" + "".join(f" {h:6.1f}" for h in held) + f"  ({stages_held})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["bench", "few", "hot", "both"], default="both")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args(argv)
    shapes = (
        ["bench", "few keys"] if args.shape == "both" else [{"few": "few keys"}.get(args.shape, args.shape)]
    )
    for shape in shapes:
        run(shape, args.batches, args.pyinstrument)


if __name__ == "__main__":
    main()
