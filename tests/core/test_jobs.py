"""Periodic jobs: grants expire with an entry, once, and one process runs them at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from core.accounts import create_account
from core.clock import fixed_clock
from core.db import unit_of_work
from core.jobs import run_due_jobs
from core.ledger import balance_view, check_ledger, grant_credits, ledger_view
from core.money import credits_to_nanos


def test_expired_promotional_credits_leave_the_balance_once(engine, now):
    with unit_of_work(engine, write=True) as s:
        create_account(s, account_id="acc_e", name="E", at=now)
        grant_credits(
            s,
            account_id="acc_e",
            amount_nanos=credits_to_nanos(50),
            source="promotional",
            at=now,
            expires_at=now + timedelta(days=2),
            description="Launch promo",
        )
        grant_credits(s, account_id="acc_e", amount_nanos=credits_to_nanos(20), source="purchased", at=now)
    later = now + timedelta(days=3)
    assert run_due_jobs(engine, clock=fixed_clock(later)).grants_expired == 1
    assert run_due_jobs(engine, clock=fixed_clock(later)).grants_expired == 0
    with unit_of_work(engine) as s:
        assert balance_view(s, "acc_e", at=later).balance_nanos == credits_to_nanos(20)
        expiry = [line for line in ledger_view(s, "acc_e") if line.reason == "grant_expired"]
        assert [(line.amount_nanos, line.effective_at) for line in expiry] == [
            (-credits_to_nanos(50), now + timedelta(days=2))
        ]
        assert check_ledger(s).ok


def test_jobs_skip_while_another_process_holds_the_lock(engine, now):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the database write lock serialises job runs by itself")
    with engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": 0x6D657465726C696E})
        try:
            assert run_due_jobs(engine, clock=fixed_clock(now)).ran is False
        finally:
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": 0x6D657465726C696E})
            other.commit()
    assert run_due_jobs(engine, clock=fixed_clock(now)).ran is True
