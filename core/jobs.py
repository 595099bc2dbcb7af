"""Periodic work: expire grants whose time has come; evaluate alert rules and caps, retry deliveries;
create the coming months' event partitions and drop dedupe keys past their window;
archive raw events past the retention period (once a month).

Runs in-process by default (the server's lifespan starts ``run_forever``) and can run
as its own process in production (``meterline jobs run``). A database lock makes sure
only one process runs a job at a time: PostgreSQL's transaction-level advisory lock,
SQLite's write lock (the whole database).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from core.clock import Clock, system_clock
from core.db import unit_of_work
from core.ledger import expire_due_grants
from core.metering.partitions import PartitionUpkeep, maintain_partitions
from core.payments.jobs import run_configured_payment_jobs
from core.spend.jobs import run_spend_jobs

log = logging.getLogger(__name__)

# An arbitrary, fixed 64-bit key for pg_try_advisory_xact_lock.
_JOBS_LOCK_KEY = 0x6D657465726C696E  # "meterlin"
DEFAULT_INTERVAL_S = 60.0


@dataclass(frozen=True)
class JobsRun:
    ran: bool  # False when another process held the lock
    grants_expired: int = 0
    alerts_fired: int = 0
    alerts_resolved: int = 0
    deliveries_sent: int = 0
    top_ups_reconciled: int = 0
    recharges_started: int = 0
    partitions_created: int = 0
    key_months_dropped: int = 0
    months_archived: int = 0


def _take_lock(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # the write session already holds SQLite's database lock
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _JOBS_LOCK_KEY}))


def _archive_due_months(engine: Engine, clock: Clock) -> int:
    """Raw events past the retention period to Parquet (``core.usage.archive``): one settings read,
    except once a month. A month that fails is logged and keeps its raw rows."""
    from core.usage.archive import archive_dir, archive_month, claim_due_months

    with unit_of_work(engine, write=True) as session:
        if not _take_lock(session):
            return 0
        months = claim_due_months(session, clock=clock)
    archived = 0
    for month in months:
        try:
            with unit_of_work(engine, write=True) as session:
                result = archive_month(session, month, archive_dir(), clock=clock)
        except Exception:
            log.exception("archiving the raw events of %s failed; they stay in place", month)
            continue
        log.info("%s", result.describe())
        archived += result.archived
    return archived


def run_due_jobs(engine: Engine, *, clock: Clock = system_clock) -> JobsRun:
    """Run every periodic job once, unless another process is running them right now."""
    with unit_of_work(engine, write=True) as session:
        if not _take_lock(session):
            return JobsRun(ran=False)
        expired = expire_due_grants(session, clock=clock)  # read again under the account locks
    if expired:
        log.info("expired %d grants", expired)
    upkeep = _partition_upkeep(engine, clock)
    archived = _archive_due_months(engine, clock)
    # Spend control, after the lock's transaction: evaluation locks the rules it steps, and each
    # delivery is claimed before it is sent, so no SMTP or HTTP call runs inside a transaction.
    spend = run_spend_jobs(engine, clock=clock)
    payments = run_configured_payment_jobs(engine, clock=clock)  # provider calls: outside the lock too
    return JobsRun(
        ran=True,
        grants_expired=expired,
        alerts_fired=spend.fired,
        alerts_resolved=spend.resolved,
        deliveries_sent=spend.delivered,
        top_ups_reconciled=payments.top_ups_changed,
        recharges_started=payments.recharges_started,
        partitions_created=len(upkeep.events_created) + len(upkeep.keys_created) if upkeep else 0,
        key_months_dropped=upkeep.key_months_dropped if upkeep else 0,
        months_archived=archived,
    )


def _partition_upkeep(engine: Engine, clock: Clock) -> PartitionUpkeep | None:
    """Partitions for the coming months, key months past the window dropped: a no-op most ticks.

    Its own transaction (DDL takes strong locks: held only for its own statements), under the
    jobs lock again; a failure is logged and left to the next tick, never stops the other jobs.
    """
    try:
        with unit_of_work(engine, write=True) as session:
            if not _take_lock(session):
                return None
            return maintain_partitions(session, clock())
    except Exception:
        log.exception("partition upkeep failed; the next run tries again")
        return None


def run_forever(
    engine: Engine,
    stop: threading.Event,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    clock: Clock = system_clock,
) -> None:
    """Run the jobs every ``interval_s`` seconds until ``stop`` is set; a failure is logged, not fatal."""
    while not stop.is_set():
        try:
            run_due_jobs(engine, clock=clock)
        except Exception:  # keep the loop alive: the next tick retries
            log.exception("periodic jobs failed; retrying in %.0f s", interval_s)
        stop.wait(interval_s)


def start_background_jobs(engine: Engine, *, interval_s: float = DEFAULT_INTERVAL_S) -> threading.Event:
    """Start ``run_forever`` on a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever,
        args=(engine, stop),
        kwargs={"interval_s": interval_s},
        name="meterline-jobs",
        daemon=True,
    )
    thread.start()
    return stop
