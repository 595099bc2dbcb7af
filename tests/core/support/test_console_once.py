"""Support actions that cannot be doubled by accident (issue 14, part 3), on both databases: one
submission acts once, a decision names its reason and its tick, an agent's grants to one account add
up over 24 hours, no agent grants to their own account, and a retried refund refunds once."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from core.accounts.service import add_member
from core.db import unit_of_work
from core.db.models import AuditLog, CreditGrant, SupportApproval, SupportSubmission
from core.errors import Conflict, PermissionDenied, ValidationError
from core.ledger import reasons
from core.money import credits_to_nanos
from core.payments.provider import ProviderError, RefundMade
from core.payments.sandbox import SandboxProvider
from core.support import (
    SUPPORT,
    SUPPORT_ADMIN,
    Agent,
    SupportLimits,
    account_360,
    approve_grant,
    grant_credits_as_agent,
    pending_approvals,
    refund_top_up,
    reject_grant,
    suspend_account,
    void_grant_as_agent,
)
from core.support.actions import refund_key
from tests.core.payments.helpers import (
    ACCOUNT,
    balance,
    entries_for,
    ledger_ok,
    make_account,
    provider,
    spend,
    top_up_row,
)
from tests.core.payments.test_refunds_and_disputes import _bought

SAM = Agent("sam@meterline.example", SUPPORT)
PAT = Agent("pat@meterline.example", SUPPORT)
ADA = Agent("ada@meterline.example", SUPPORT_ADMIN)
BOB = Agent("bob@meterline.example", SUPPORT_ADMIN)
LIMITS = SupportLimits(
    support_grant_nanos=credits_to_nanos(100), approval_threshold_nanos=credits_to_nanos(1000)
)


def _audit(engine: Engine, action: str) -> list[AuditLog]:
    with unit_of_work(engine) as session:
        stmt = select(AuditLog).where(AuditLog.action == "support." + action)
        return list(session.scalars(stmt.order_by(AuditLog.id)))


def _grant(engine: Engine, agent: Agent, at: datetime, credits: int, **kw: Any) -> Any:
    with unit_of_work(engine, write=True) as session:
        return grant_credits_as_agent(
            session,
            agent,
            account_id=kw.pop("account_id", ACCOUNT),
            amount_nanos=credits_to_nanos(credits),
            reason=kw.pop("reason", "outage on Nov 19"),
            at=at,
            limits=LIMITS,
            **kw,
        )


def _decide(engine: Engine, verb: Any, agent: Agent, approval_id: int, at: datetime, **kw: Any) -> Any:
    with unit_of_work(engine, write=True) as session:
        if verb is approve_grant:
            kw.setdefault("limits", LIMITS)
        return verb(session, agent, approval_id=approval_id, at=at, **kw)


def _grants(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.count()).select_from(CreditGrant)) or 0)


# --- one submission, one effect ------------------------------------------------------------------


def test_a_double_clicked_grant_grants_once_and_answers_the_repeat_with_the_first_grant(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    first = _grant(engine, SAM, now, 25, submission_id="grant-form-0001")
    again = _grant(engine, SAM, now + timedelta(seconds=1), 25, submission_id="grant-form-0001")

    assert first.grant is not None and again.grant is not None
    assert again.grant.grant_id == first.grant.grant_id
    assert balance(engine) == credits_to_nanos(25) and _grants(engine) == 1
    assert len(_audit(engine, "grant_credits")) == 1
    assert _audit(engine, "grant_credits")[0].details["submission_id"] == "grant-form-0001"
    ledger_ok(engine)


def test_two_clicks_of_one_submission_at_once_grant_once(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    outcomes: list[Any] = []
    errors: list[BaseException] = []

    def click() -> None:
        try:
            outcomes.append(_grant(engine, SAM, now, 10, submission_id="grant-form-race"))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert {o.grant.grant_id for o in outcomes} == {outcomes[0].grant.grant_id}
    assert balance(engine) == credits_to_nanos(10) and _grants(engine) == 1


def test_the_same_submission_with_other_fields_is_a_conflict_and_changes_nothing(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    _grant(engine, SAM, now, 25, submission_id="grant-form-0002")
    with pytest.raises(Conflict) as error:
        _grant(engine, SAM, now, 30, submission_id="grant-form-0002")
    assert error.value.field == "submission_id"
    with pytest.raises(Conflict):
        _grant(engine, PAT, now, 25, submission_id="grant-form-0002")  # another agent's click
    assert balance(engine) == credits_to_nanos(25) and _grants(engine) == 1


def test_a_refused_submission_stores_nothing_and_can_be_sent_again_once_fixed(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    with pytest.raises(ValidationError):
        _grant(engine, SAM, now, 25, submission_id="grant-form-0003", expires_at=now - timedelta(days=1))
    outcome = _grant(engine, SAM, now, 25, submission_id="grant-form-0003")
    assert outcome.grant is not None and balance(engine) == credits_to_nanos(25)


def test_a_malformed_submission_id_is_refused_naming_the_field(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    with pytest.raises(ValidationError) as error:
        _grant(engine, SAM, now, 25, submission_id="x")
    assert error.value.field == "submission_id" and balance(engine) == 0


def test_void_and_suspend_repeated_from_one_submission_act_once(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    outcome = _grant(engine, SAM, now, 40)
    for _ in range(2):
        with unit_of_work(engine, write=True) as session:
            void_grant_as_agent(
                session,
                SAM,
                grant_id=outcome.grant.grant_id,
                reason="wrong account",
                at=now,
                submission_id="void-form-0001",
            )
        with unit_of_work(engine, write=True) as session:
            before = suspend_account(
                session, ADA, account_id=ACCOUNT, reason="fraud check", at=now, submission_id="status-0001"
            )
        assert before == "active"  # the repeat answers as the first did, not "suspended already"
    assert len(_audit(engine, "void_grant")) == 1 and len(_audit(engine, "suspend_account")) == 1
    assert balance(engine) == 0


# --- approving and rejecting --------------------------------------------------------------------


def test_an_approval_needs_a_reason_and_a_tick_each_named_and_grants_nothing_without_them(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    approval_id = _grant(engine, SAM, now, 250).approval.approval_id

    with pytest.raises(ValidationError) as no_reason:
        _decide(engine, approve_grant, ADA, approval_id, now, confirmed=True)
    with pytest.raises(ValidationError) as no_tick:
        _decide(engine, approve_grant, ADA, approval_id, now, reason="checked the outage")
    with pytest.raises(ValidationError) as reject_no_reason:
        _decide(engine, reject_grant, ADA, approval_id, now, reason="  ", confirmed=True)
    with pytest.raises(ValidationError) as reject_no_tick:
        _decide(engine, reject_grant, ADA, approval_id, now, reason="duplicate")

    assert (no_reason.value.field, no_tick.value.field) == ("reason", "confirmed")
    assert (reject_no_reason.value.field, reject_no_tick.value.field) == ("reason", "confirmed")
    assert balance(engine) == 0 and _audit(engine, "grant_approved") == []
    grant = _decide(engine, approve_grant, ADA, approval_id, now, reason="checked the outage", confirmed=True)
    assert grant.amount_nanos == credits_to_nanos(250)
    [entry] = _audit(engine, "grant_approved")
    assert entry.reason == "checked the outage"
    assert entry.details["request"] == {
        "approval_id": approval_id,
        "account_id": ACCOUNT,
        "amount_nanos": credits_to_nanos(250),
        "source": "goodwill",
        "requested_by": SAM.email,
        "reason": "outage on Nov 19",
    }


def test_a_double_clicked_approval_grants_once(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    approval_id = _grant(engine, SAM, now, 250).approval.approval_id
    decided = [
        _decide(
            engine,
            approve_grant,
            ADA,
            approval_id,
            now,
            reason="ok",
            confirmed=True,
            submission_id="decide-form-01",
        )
        for _ in range(2)
    ]
    assert decided[0].grant_id == decided[1].grant_id
    assert balance(engine) == credits_to_nanos(250) and len(_audit(engine, "grant_approved")) == 1


def test_a_second_pending_request_for_the_same_account_amount_and_reason_is_marked_a_likely_duplicate(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    first = _grant(engine, SAM, now, 250, reason="Outage  credit").approval
    second = _grant(engine, SAM, now, 250, reason="outage credit").approval
    other_amount = _grant(engine, SAM, now, 300, reason="outage credit").approval
    with unit_of_work(engine) as session:
        listed = {a.approval_id: a.duplicate_of for a in pending_approvals(session, account_id=ACCOUNT)}
    assert listed == {
        first.approval_id: None,
        second.approval_id: first.approval_id,
        other_amount.approval_id: None,
    }
    _decide(engine, reject_grant, ADA, first.approval_id, now, reason="asked twice", confirmed=True)
    with unit_of_work(engine) as session:
        assert [a.duplicate_of for a in pending_approvals(session, account_id=ACCOUNT)] == [None, None]


# --- limits over 24 hours, and no grants to one's own account -------------------------------------


def test_a_support_agent_s_grants_to_one_account_add_up_over_24_hours(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    made = [_grant(engine, SAM, now + timedelta(minutes=i), 10) for i in range(20)]

    assert sum(1 for o in made if o.grant is not None) == 10  # 10 x 10 credits reach the 100 limit
    assert all(o.pending for o in made[10:]) and made[10].granted_before_nanos == credits_to_nanos(100)
    assert balance(engine) == credits_to_nanos(100)
    assert _grant(engine, PAT, now, 10).grant is not None  # another agent's limit is their own
    later = _grant(engine, SAM, now + timedelta(hours=24, minutes=5), 10)
    assert later.grant is not None  # the first grants have left the window
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(SupportApproval)) == 10


def test_twenty_grants_of_a_hundred_need_a_second_agent_after_the_first(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    made = [_grant(engine, SAM, now + timedelta(minutes=i), 100) for i in range(20)]
    assert [o.pending for o in made] == [False] + [True] * 19
    assert balance(engine) == credits_to_nanos(100)


def test_an_agent_who_is_a_member_of_the_account_cannot_grant_it_credits_or_approve_them(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    with unit_of_work(engine, write=True) as session:
        add_member(session, account_id=ACCOUNT, email="Sam@Meterline.example", role="viewer", at=now)
    with pytest.raises(PermissionDenied) as refused:
        _grant(engine, SAM, now, 5)
    assert refused.value.field == "account_id"
    approval_id = _grant(engine, PAT, now, 250).approval.approval_id
    with unit_of_work(engine, write=True) as session:
        add_member(session, account_id=ACCOUNT, email=ADA.email, role="billing", at=now)
    with pytest.raises(PermissionDenied):
        _decide(engine, approve_grant, ADA, approval_id, now, reason="fine", confirmed=True)
    assert balance(engine) == 0


# --- refunds ------------------------------------------------------------------------------------


class LosesFirstAnswer(SandboxProvider):
    """The sandbox, remembering each key; the first refund is made but its answer is lost."""

    def __init__(self, inner: SandboxProvider) -> None:
        self.__dict__.update(inner.__dict__)
        self.keys: list[str] = []
        self.lost = False

    def refund_payment(
        self, payment_intent_id: str, *, amount_cents: int | None, idempotency_key: str
    ) -> RefundMade:
        self.keys.append(idempotency_key)
        made = super().refund_payment(
            payment_intent_id, amount_cents=amount_cents, idempotency_key=idempotency_key
        )
        if not self.lost:
            self.lost = True
            raise ProviderError("Stripe: the connection was reset (the answer was lost)")
        return made


def test_a_partial_refund_retried_after_its_own_webhook_refunds_once(engine: Engine, now: datetime) -> None:
    # The sandbox delivers the refund's event at once: the refunded total is raised before the retry.
    payments, top_up_id, intent_id = _bought(engine, now)
    spend(engine, credits_to_nanos(5), now)
    flaky = LosesFirstAnswer(provider(payments))
    console = type(payments)(payments.engine, payments.config, flaky, payments.clock)

    with pytest.raises(ProviderError):
        refund_top_up(
            console,
            ADA,
            top_up_id=top_up_id,
            reason="charged twice",
            amount_cents=1_000,
            submission_id="refund-form-01",
        )
    assert top_up_row(engine, top_up_id).refunded_cents == 1_000  # its own webhook got here first
    done = refund_top_up(
        console,
        ADA,
        top_up_id=top_up_id,
        reason="charged twice",
        amount_cents=1_000,
        submission_id="refund-form-01",
    )
    again = refund_top_up(
        console,
        ADA,
        top_up_id=top_up_id,
        reason="charged twice",
        amount_cents=1_000,
        submission_id="refund-form-01",
    )

    assert flaky.keys == [refund_key(top_up_id, "refund-form-01")] * 2  # the third asked nobody
    assert provider(payments).payment_intent(intent_id)["latest_charge"]["amount_refunded"] == 1_000
    assert (done.refunded_cents, done.reversed_nanos) == (1_000, credits_to_nanos(10))
    assert again == done
    assert balance(engine) == credits_to_nanos(10)
    assert entries_for(engine, reasons.GRANT_REFUNDED) == 1
    assert len(_audit(engine, "refund_top_up")) == 1
    ledger_ok(engine)


def test_a_refund_from_a_stale_form_or_beside_an_unfinished_one_is_refused(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, intent_id = _bought(engine, now)
    refund_top_up(
        payments,
        ADA,
        top_up_id=top_up_id,
        reason="part",
        amount_cents=500,
        submission_id="refund-form-02",
        seen_refunded_cents=0,
    )
    with pytest.raises(Conflict) as stale:  # BOB's form was drawn before ADA's refund
        refund_top_up(
            payments,
            BOB,
            top_up_id=top_up_id,
            reason="part",
            amount_cents=500,
            submission_id="refund-form-03",
            seen_refunded_cents=0,
        )
    assert (stale.value.code, stale.value.field) == ("stale_form", "top_up")

    flaky = LosesFirstAnswer(provider(payments))
    console = type(payments)(payments.engine, payments.config, flaky, payments.clock)
    with pytest.raises(ProviderError):
        refund_top_up(
            console, ADA, top_up_id=top_up_id, reason="more", amount_cents=500, submission_id="refund-form-04"
        )
    with pytest.raises(Conflict) as busy:
        refund_top_up(
            payments,
            BOB,
            top_up_id=top_up_id,
            reason="more",
            amount_cents=500,
            submission_id="refund-form-05",
        )
    assert busy.value.code == "refund_in_progress"
    assert provider(payments).payment_intent(intent_id)["latest_charge"]["amount_refunded"] == 1_000
    with unit_of_work(engine) as session:
        states = dict(session.execute(select(SupportSubmission.id, SupportSubmission.state)).all())
    assert states == {"refund-form-02": "done", "refund-form-04": "started"}


def test_the_refund_picker_shows_dollars_refundable_and_credits_unspent(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, _intent = _bought(engine, now)
    spend(engine, credits_to_nanos(15), now)
    refund_top_up(
        payments, ADA, top_up_id=top_up_id, reason="part", amount_cents=500, submission_id="refund-form-06"
    )
    with unit_of_work(engine) as session:
        [choice] = account_360(session, ADA, ACCOUNT, at=now).refundable
    assert (choice.top_up_id, choice.refundable_cents, choice.unspent_nanos) == (
        top_up_id,
        2_000,
        credits_to_nanos(5),
    )
    assert (
        "$20.00 of $25.00 refundable" in choice.label
        and "5.00 credits unspent of 25.00 credits" in choice.label
    )
