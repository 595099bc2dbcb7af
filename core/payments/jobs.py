"""The payments' periodic work: reconcile stuck top-ups, start the auto-recharges that are due."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from core.clock import Clock, system_clock
from core.payments.recharge import sweep_auto_recharges
from core.payments.reconcile import reconcile
from core.payments.runtime import Payments, payments_from_env

log = logging.getLogger("meterline.payments")


@dataclass(frozen=True)
class PaymentJobsRun:
    top_ups_changed: int = 0
    recharges_started: int = 0


def run_payment_jobs(payments: Payments) -> PaymentJobsRun:
    """One pass: reconciliation, then the auto-recharge sweep (each failure logged, not raised)."""
    if payments.provider is None:
        return PaymentJobsRun()
    changed = started = 0
    try:
        report = reconcile(payments)
        changed = len(report.changed)
        for line in report.changed:
            log.info("reconciled %s", line)
        for line in report.errors:
            log.warning("reconciliation: %s", line)
    except Exception:
        log.exception("payment reconciliation failed; it runs again on the next tick")
    try:
        started = sum(1 for run in sweep_auto_recharges(payments) if run.top_up_id is not None)
    except Exception:
        log.exception("auto-recharge sweep failed; it runs again on the next tick")
    return PaymentJobsRun(changed, started)


def run_configured_payment_jobs(engine: Engine, *, clock: Clock = system_clock) -> PaymentJobsRun:
    """``run_payment_jobs`` with the payments this process is configured for (never raises)."""
    try:
        payments = payments_from_env(engine, clock=clock)
    except Exception:
        log.exception("payments are misconfigured; reconciliation and auto-recharge skipped")
        return PaymentJobsRun()
    return run_payment_jobs(payments)
