"""A top-up paid but not credited (its payment did not match the price) is resolved from the console:
credited once as bought, or refunded, which leaves the open states."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select

from core.db import unit_of_work
from core.db.models import AuditLog
from core.errors import PermissionDenied
from core.ledger import reasons
from core.money import credits_to_nanos
from core.support import credit_paid_top_up_as_agent, new_submission_id, refund_top_up
from core.support.agents import SUPPORT, SUPPORT_ADMIN, Agent
from tests.core.payments.helpers import balance, entries_for, ledger_ok, top_up_row
from tests.core.payments.test_settlement_in_any_order import _mismatched

ADA = Agent("ada@meterline.example", SUPPORT_ADMIN)
SAM = Agent("sam@meterline.example", SUPPORT)


def test_an_admin_credits_a_mismatched_payment_once_per_submission(engine: Engine, now: datetime) -> None:
    _payments, top_up_id = _mismatched(engine, now)
    assert top_up_row(engine, top_up_id).state == "paid"
    with unit_of_work(engine, write=True) as session, pytest.raises(PermissionDenied):
        credit_paid_top_up_as_agent(session, SAM, top_up_id=top_up_id, reason="paid $1", at=now)
    submission = new_submission_id()
    for _ in range(2):  # a double click
        with unit_of_work(engine, write=True) as session:
            outcome = credit_paid_top_up_as_agent(
                session,
                ADA,
                top_up_id=top_up_id,
                reason="customer paid by bank",
                at=now,
                submission_id=submission,
            )
        assert outcome == "credited"
    assert top_up_row(engine, top_up_id).state == "credited"
    assert balance(engine) == credits_to_nanos(25)
    assert entries_for(engine, reasons.GRANT_ISSUED) == 1
    with unit_of_work(engine) as session:
        audited = session.scalar(select(func.count()).where(AuditLog.action.like("%credit_paid_top_up")))
    assert audited == 1
    ledger_ok(engine)


def test_refunding_a_mismatched_payment_returns_what_was_paid_and_closes_it(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id = _mismatched(engine, now)  # the sandbox took $25; the answer said $1
    done = refund_top_up(
        payments, ADA, top_up_id=top_up_id, reason="does not match", submission_id=new_submission_id()
    )
    assert done.refunded_cents == 100  # what the facts say was paid, all of it
    row = top_up_row(engine, top_up_id)
    assert row.state == "refunded"  # no longer open: reconciliation stops asking about it
    assert balance(engine) == 0
