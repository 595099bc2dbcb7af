"""``move_grant_credits``: settlement's moves on a grant, releases before takes, nothing back into a
voided grant, and what a grant then holds pays off a negative balance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from core.accounts import create_account
from core.db import unit_of_work
from core.db.models import Account, CreditGrant
from core.ledger import (
    GrantMove,
    grant_credits,
    lock_accounts,
    move_grant_credits,
    post_usage,
    reasons,
    void_grant,
)

C = 10**9


def _grant(engine: Engine, now: datetime) -> int:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_m", name="M", at=now)
        return grant_credits(
            session,
            account_id="acc_m",
            amount_nanos=25 * C,
            source="purchased",
            at=now,
            cost_basis_cents=2_500,
        ).grant_id


def _state(engine: Engine, grant_id: int) -> tuple[int, int]:
    with unit_of_work(engine) as session:
        grant = session.get(CreditGrant, grant_id)
        balance = session.scalar(select(Account.balance_nanos).where(Account.id == "acc_m"))
        assert grant is not None and balance is not None
        return balance, grant.remaining_nanos


def test_a_hold_turned_into_a_loss_on_a_voided_grant_posts_cleanly(engine: Engine, now: datetime) -> None:
    grant_id = _grant(engine, now)
    with unit_of_work(engine, write=True) as session:
        move_grant_credits(
            session, grant_id=grant_id, moves=[GrantMove(-10 * C, reasons.GRANT_FROZEN)], at=now
        )
        void_grant(session, grant_id=grant_id, at=now, reason="test", actor="tests")
    assert _state(engine, grant_id) == (0, 0)
    with unit_of_work(engine, write=True) as session:  # the dispute is lost: release, then take for good
        move_grant_credits(
            session,
            grant_id=grant_id,
            moves=[GrantMove(10 * C, reasons.GRANT_UNFROZEN), GrantMove(-10 * C, reasons.DISPUTE_LOST)],
            at=now,
        )
    assert _state(engine, grant_id) == (0, 0)


def test_a_hold_released_into_a_voided_grant_does_not_come_back(engine: Engine, now: datetime) -> None:
    grant_id = _grant(engine, now)
    with unit_of_work(engine, write=True) as session:
        move_grant_credits(
            session, grant_id=grant_id, moves=[GrantMove(-10 * C, reasons.GRANT_FROZEN)], at=now
        )
        void_grant(session, grant_id=grant_id, at=now, reason="test", actor="tests")
        move_grant_credits(
            session, grant_id=grant_id, moves=[GrantMove(10 * C, reasons.GRANT_UNFROZEN)], at=now
        )
    assert _state(engine, grant_id) == (0, 0)


def test_credits_released_pay_off_a_negative_balance_first(engine: Engine, now: datetime) -> None:
    grant_id = _grant(engine, now)
    with unit_of_work(engine, write=True) as session:
        move_grant_credits(
            session, grant_id=grant_id, moves=[GrantMove(-25 * C, reasons.GRANT_FROZEN)], at=now
        )
        account = lock_accounts(session, ["acc_m"])["acc_m"]
        post_usage(session, account=account, amount_nanos=4 * C, at=now, reference="test:usage")
    assert _state(engine, grant_id) == (-4 * C, 0)
    with unit_of_work(engine, write=True) as session:
        move_grant_credits(
            session, grant_id=grant_id, moves=[GrantMove(25 * C, reasons.GRANT_UNFROZEN)], at=now
        )
    assert _state(engine, grant_id) == (21 * C, 21 * C)
