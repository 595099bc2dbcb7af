"""The periodic part of spend control: time-based rules, delivery retries, and the retention of
authorize refusals (run by ``core.jobs``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from core.clock import Clock, system_clock
from core.db import unit_of_work
from core.spend.deliveries import deliver_due
from core.spend.evaluate import accounts_with_rules, evaluate_accounts
from core.spend.refusals import delete_old_refusals

ACCOUNTS_PER_TRANSACTION = 200  # keep each evaluating transaction (and its row locks) short
MAX_DELIVERY_BATCHES = 20  # at most 2,000 messages a run; the rest go out on the next one


@dataclass(frozen=True)
class SpendJobsRun:
    fired: int = 0
    resolved: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    refusals_deleted: int = 0


def run_spend_jobs(engine: Engine, *, clock: Clock = system_clock) -> SpendJobsRun:
    """Evaluate every live rule and cap (projections, runways and periods move with time alone),
    then send every delivery that is due, then delete authorize refusals past their retention."""
    with unit_of_work(engine) as session:
        accounts = accounts_with_rules(session)
    fired = resolved = 0
    for start in range(0, len(accounts), ACCOUNTS_PER_TRANSACTION):
        with unit_of_work(engine, write=True) as session:
            chunk = accounts[start : start + ACCOUNTS_PER_TRANSACTION]
            result = evaluate_accounts(session, chunk, at=clock())
        fired += result.fired
        resolved += result.resolved
    delivered = retrying = failed = 0
    for _ in range(MAX_DELIVERY_BATCHES):
        run = deliver_due(engine, clock=clock)
        delivered, retrying, failed = delivered + run.delivered, retrying + run.retrying, failed + run.failed
        if run.delivered + run.retrying + run.failed == 0:
            break
    with unit_of_work(engine, write=True) as session:
        refusals_deleted = delete_old_refusals(session, at=clock())
    return SpendJobsRun(fired, resolved, delivered, retrying, failed, refusals_deleted)
