"""Support actions: each checks the agent in core, moves the ledger through the owning service,
and writes its audit entry in the same transaction (both databases)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from core.accounts import Actor
from core.db import unit_of_work
from core.db.models import Account, AuditLog, CreditGrant, SupportApproval
from core.errors import PermissionDenied, ValidationError
from core.ledger import reasons
from core.ledger.service import grant_credits
from core.money import credits_to_nanos
from core.spend.authorize import decide, load_snapshots
from core.spend.caps import list_caps, set_cap
from core.support import (
    SUPPORT,
    SUPPORT_ADMIN,
    Agent,
    AuditImmutable,
    SupportLimits,
    approve_grant,
    grant_credits_as_agent,
    lift_cap_as_agent,
    reactivate_account,
    reconcile_account,
    refund_top_up,
    reject_grant,
    set_cap_as_agent,
    suspend_account,
    void_grant_as_agent,
)
from tests.core.payments.helpers import (
    ACCOUNT,
    balance,
    entries_for,
    ledger_ok,
    make_account,
    provider,
    top_up_row,
)
from tests.core.payments.test_refunds_and_disputes import _bought

SAM = Agent("sam@meterline.example", SUPPORT)
PAT = Agent("pat@meterline.example", SUPPORT)
ADA = Agent("ada@meterline.example", SUPPORT_ADMIN)
DECIDED = {"reason": "checked the ticket", "confirmed": True}
LIMITS = SupportLimits(
    support_grant_nanos=credits_to_nanos(100), approval_threshold_nanos=credits_to_nanos(1000)
)


def _audit(engine: Engine, action: str | None = None) -> list[AuditLog]:
    with unit_of_work(engine) as session:
        stmt = select(AuditLog).where(AuditLog.action.startswith("support."))
        if action:
            stmt = stmt.where(AuditLog.action == "support." + action)
        return list(session.scalars(stmt.order_by(AuditLog.id)))


def _grant(engine: Engine, agent: Any, now: datetime, credits: int, **kw: Any) -> Any:
    with unit_of_work(engine, write=True) as session:
        return grant_credits_as_agent(
            session,
            agent,
            account_id=ACCOUNT,
            amount_nanos=credits_to_nanos(credits),
            reason=kw.pop("reason", "outage on Nov 19"),
            at=now,
            limits=LIMITS,
            **kw,
        )


def test_a_goodwill_grant_within_the_limit_credits_now_and_is_audited_with_before_and_after(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    outcome = _grant(engine, SAM, now, 50, expires_at=now + timedelta(days=30))

    assert outcome.grant is not None and not outcome.pending
    assert balance(engine) == credits_to_nanos(50)
    assert entries_for(engine, reasons.GRANT_ISSUED) == 1
    [entry] = _audit(engine, "grant_credits")
    assert (entry.actor, entry.account_id, entry.reason) == (SAM.email, ACCOUNT, "outage on Nov 19")
    assert entry.details["target"] == f"grant:{outcome.grant.grant_id}"
    assert entry.details["before"] == {"balance_nanos": 0}
    assert entry.details["after"]["balance_nanos"] == credits_to_nanos(50)
    assert entry.details["after"]["expires_at"] is not None
    ledger_ok(engine)


def test_a_reason_is_required_and_nothing_moves_without_one(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    with pytest.raises(ValidationError) as error:
        _grant(engine, SAM, now, 5, reason="   ")
    assert error.value.field == "reason"
    assert balance(engine) == 0 and _audit(engine) == []


def test_a_customer_or_no_agent_cannot_call_any_action(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    for who in (None, "olga@pay.test", Agent("olga@pay.test", "owner")):  # type: ignore[arg-type]
        with pytest.raises(PermissionDenied):
            _grant(engine, who, now, 5)
        with unit_of_work(engine, write=True) as session, pytest.raises(PermissionDenied):
            suspend_account(session, who, account_id=ACCOUNT, reason="x", at=now)  # type: ignore[arg-type]
    assert balance(engine) == 0 and _audit(engine) == []


def test_a_grant_above_the_limit_waits_for_a_second_agent_never_the_same_one(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    outcome = _grant(engine, SAM, now, 500)
    assert outcome.pending and outcome.approval is not None
    assert balance(engine) == 0
    approval_id = outcome.approval.approval_id

    with unit_of_work(engine, write=True) as session, pytest.raises(PermissionDenied):
        approve_grant(session, SAM, approval_id=approval_id, at=now, limits=LIMITS, **DECIDED)
    with unit_of_work(engine, write=True) as session, pytest.raises(PermissionDenied):
        approve_grant(  # 500 > support limit
            session, PAT, approval_id=approval_id, at=now, limits=LIMITS, **DECIDED
        )
    with unit_of_work(engine, write=True) as session:
        grant = approve_grant(
            session, ADA, approval_id=approval_id, at=now + timedelta(minutes=5), limits=LIMITS, **DECIDED
        )

    assert balance(engine) == credits_to_nanos(500)
    with unit_of_work(engine) as session:
        row = session.get(SupportApproval, approval_id)
        assert row is not None and (row.state, row.decided_by, row.grant_id) == (
            "approved",
            ADA.email,
            grant.grant_id,
        )
    actions = [(e.action, e.actor) for e in _audit(engine)]
    assert actions == [
        ("support.grant_requested", SAM.email),
        ("support.grant_credits", SAM.email),
        ("support.grant_approved", ADA.email),
    ]
    assert _audit(engine, "grant_credits")[0].details["approved_by"] == ADA.email
    with unit_of_work(engine, write=True) as session, pytest.raises(ValidationError):
        approve_grant(session, PAT, approval_id=approval_id, at=now, limits=LIMITS, **DECIDED)  # decided
    ledger_ok(engine)


def test_an_admin_grant_above_the_threshold_needs_another_agent_too_and_a_rejection_grants_nothing(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    outcome = _grant(engine, ADA, now, 5_000)
    assert outcome.pending and outcome.approval is not None
    with unit_of_work(engine, write=True) as session, pytest.raises(PermissionDenied):
        reject_grant(
            session, ADA, approval_id=outcome.approval.approval_id, reason="no", at=now, confirmed=True
        )
    with unit_of_work(engine, write=True) as session:
        view = reject_grant(
            session, PAT, approval_id=outcome.approval.approval_id, reason="too much", at=now, confirmed=True
        )
    assert view.state == "rejected" and balance(engine) == 0


def test_voiding_a_goodwill_grant_takes_back_what_is_left_and_purchased_credits_are_refused(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    outcome = _grant(engine, SAM, now, 40)
    assert outcome.grant is not None
    with unit_of_work(engine, write=True) as session:
        bought = grant_credits(
            session, account_id=ACCOUNT, amount_nanos=credits_to_nanos(10), source="purchased", at=now
        )
    with unit_of_work(engine, write=True) as session:
        void_grant_as_agent(session, SAM, grant_id=outcome.grant.grant_id, reason="granted twice", at=now)
    assert balance(engine) == credits_to_nanos(10)
    assert entries_for(engine, reasons.GRANT_VOIDED) == 1
    [entry] = _audit(engine, "void_grant")
    assert entry.details["before"]["remaining_nanos"] == credits_to_nanos(40)
    assert entry.details["after"]["balance_nanos"] == credits_to_nanos(10)
    with unit_of_work(engine, write=True) as session, pytest.raises(ValidationError):
        void_grant_as_agent(session, SAM, grant_id=bought.grant_id, reason="x", at=now)
    ledger_ok(engine)


def test_suspend_and_reactivate_need_support_admin_and_authorize_follows(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    _grant(engine, SAM, now, 10)
    with unit_of_work(engine, write=True) as session, pytest.raises(PermissionDenied):
        suspend_account(session, SAM, account_id=ACCOUNT, reason="fraud check", at=now)
    with unit_of_work(engine, write=True) as session:
        assert suspend_account(session, ADA, account_id=ACCOUNT, reason="fraud check", at=now) == "active"
    with unit_of_work(engine) as session:
        snapshot = load_snapshots(session, [ACCOUNT], at=now)[ACCOUNT]
    assert decide(snapshot).reason == "account_suspended"
    with unit_of_work(engine, write=True) as session:
        reactivate_account(session, ADA, account_id=ACCOUNT, reason="cleared", at=now)
    with unit_of_work(engine) as session:
        assert session.get(Account, ACCOUNT).status == "active"  # type: ignore[union-attr]
    entries = _audit(engine)
    assert [(e.action, e.details["before"], e.details["after"]) for e in entries[-2:]] == [
        ("support.suspend_account", {"status": "active"}, {"status": "suspended"}),
        ("support.reactivate_account", {"status": "suspended"}, {"status": "active"}),
    ]


def test_changing_and_lifting_a_cap_needs_support_admin_and_records_the_old_cap(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    with unit_of_work(engine, write=True) as session:
        set_cap(
            session,
            account_id=ACCOUNT,
            scope="account",
            limit="50",
            mode="hard",
            actor=Actor.member("olga@pay.test"),
            at=now,
        )
    with unit_of_work(engine, write=True) as session, pytest.raises(PermissionDenied):
        set_cap_as_agent(session, SAM, account_id=ACCOUNT, limit="80", mode="hard", reason="asked", at=now)
    with unit_of_work(engine, write=True) as session:
        cap = set_cap_as_agent(
            session, ADA, account_id=ACCOUNT, limit="80", mode="soft", reason="asked", at=now
        )
    [entry] = _audit(engine, "set_cap")
    assert entry.details["before"]["limit_nanos"] == credits_to_nanos(50)
    assert entry.details["after"] == {
        "scope": "account",
        "scope_value": "",
        "period": "month",
        "limit_nanos": credits_to_nanos(80),
        "mode": "soft",
    }
    with unit_of_work(engine, write=True) as session:
        lift_cap_as_agent(session, ADA, account_id=ACCOUNT, cap_id=cap.cap_id, reason="asked", at=now)
    with unit_of_work(engine) as session:
        assert list_caps(session, ACCOUNT) == []
    assert _audit(engine, "lift_cap")[0].details["after"] is None


def test_an_admin_sets_a_daily_cap_on_an_api_key_beside_its_monthly_one(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    for period, limit in (("month", "80"), ("day", "5")):
        with unit_of_work(engine, write=True) as session:
            set_cap_as_agent(
                session,
                ADA,
                account_id=ACCOUNT,
                scope="api_key",
                scope_value=" ci ",
                period=period,
                limit=limit,
                mode="hard",
                reason="asked",
                at=now,
            )
    with unit_of_work(engine) as session:
        caps = list_caps(session, ACCOUNT)
    assert [(c.scope, c.scope_value, c.period, c.limit_nanos) for c in caps] == [
        ("api_key", "ci", "month", credits_to_nanos(80)),
        ("api_key", "ci", "day", credits_to_nanos(5)),
    ]
    day_entry = _audit(engine, "set_cap")[1]
    assert day_entry.details["before"] is None  # the monthly cap is another cap, not the one changed
    assert day_entry.details["after"]["period"] == "day"
    for fields, field in (
        ({"scope": "api_key", "scope_value": "ci\ud800"}, "scope_value"),
        ({"scope": "api_key", "scope_value": "k" * 5_000}, "scope_value"),
        ({"scope": "api_key", "scope_value": "ci", "period": "fortnight"}, "period"),
    ):
        with unit_of_work(engine, write=True) as session, pytest.raises(ValidationError) as raised:
            set_cap_as_agent(
                session, ADA, account_id=ACCOUNT, limit="5", mode="hard", reason="asked", at=now, **fields
            )
        assert raised.value.field == field


def test_a_support_agent_cannot_refund_and_an_admin_refund_reverses_the_credits_once(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, _intent = _bought(engine, now)
    assert balance(engine) == credits_to_nanos(25)
    with pytest.raises(PermissionDenied):
        refund_top_up(
            payments, SAM, top_up_id=top_up_id, reason="customer asked", submission_id="refund-0001"
        )
    assert top_up_row(engine, top_up_id).refunded_cents == 0

    done = refund_top_up(
        payments,
        ADA,
        top_up_id=top_up_id,
        reason="customer asked",
        amount_cents=1_000,
        submission_id="refund-0002",
    )

    assert (done.refunded_cents, done.reversed_nanos) == (1_000, credits_to_nanos(10))
    assert balance(engine) == credits_to_nanos(15)
    assert entries_for(engine, reasons.GRANT_REFUNDED) == 1
    [entry] = _audit(engine, "refund_top_up")
    assert entry.details["before"]["refunded_cents"] == 0
    assert entry.details["after"]["refunded_cents"] == 1_000
    assert provider(payments).payment_intent(str(_intent))["latest_charge"]["amount_refunded"] == 1_000
    ledger_ok(engine)


def test_reconcile_for_one_account_is_audited(engine: Engine, now: datetime) -> None:
    payments, _top_up_id, _intent = _bought(engine, now)
    report = reconcile_account(payments, SAM, account_id=ACCOUNT, reason="customer says it is stuck")
    assert report.errors == []
    [entry] = _audit(engine, "reconcile_payments")
    assert entry.actor == SAM.email and entry.account_id == ACCOUNT


def test_audit_entries_cannot_be_edited_or_deleted_through_the_orm(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    _grant(engine, SAM, now, 5)
    with pytest.raises(AuditImmutable), unit_of_work(engine, write=True) as session:
        entry = session.scalars(select(AuditLog)).one()
        entry.reason = "nothing happened"
    with pytest.raises(AuditImmutable), unit_of_work(engine, write=True) as session:
        session.delete(session.scalars(select(AuditLog)).one())
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 1
        assert session.scalars(select(AuditLog.reason)).one() == "outage on Nov 19"
        assert session.scalar(select(func.count()).select_from(CreditGrant)) == 1


def test_the_audit_csv_neutralises_formulas_and_filters_by_agent_and_action(
    engine: Engine, now: datetime
) -> None:
    from core.support import audit_csv, audit_entries

    make_account(engine, now)
    _grant(engine, SAM, now, 5, reason='=HYPERLINK("http://evil")')
    _grant(engine, PAT, now + timedelta(minutes=1), 6)
    with unit_of_work(engine) as session:
        mine = audit_entries(session, agent=SAM.email)
        grants = audit_entries(session, action="support.grant_credits", since=now + timedelta(seconds=30))
        everything = audit_entries(session, account_id=ACCOUNT)
    assert [e.actor for e in mine] == [SAM.email]
    assert [e.actor for e in grants] == [PAT.email]
    assert [e.actor for e in everything] == [PAT.email, SAM.email]  # newest first
    text = audit_csv(mine).decode()
    assert text.splitlines()[0] == "id,time_utc,actor,action,account_id,target,reason,before,after"
    assert "'=HYPERLINK" in text


def test_a_look_at_the_customer_s_own_pages_is_audited_and_only_for_agents(
    engine: Engine, now: datetime
) -> None:
    from core.support import record_customer_view

    make_account(engine, now)
    with unit_of_work(engine, write=True) as session:
        record_customer_view(session, SAM, account_id=ACCOUNT, page="balance", at=now)
    with unit_of_work(engine, write=True) as session, pytest.raises(PermissionDenied):
        record_customer_view(session, "olga@pay.test", account_id=ACCOUNT, page="balance", at=now)  # type: ignore[arg-type]
    [entry] = _audit(engine, "view_as_customer")
    assert (entry.actor, entry.details["target"]) == (SAM.email, "page:balance")


def test_an_audit_change_reads_by_the_money_rule_and_the_csv_keeps_the_json() -> None:
    from core.support import readable_change

    before = {"granted_alone_last_24h_nanos": 0}
    after = {"approval_id": 1, "state": "pending", "amount_nanos": 250_000_000_000, "source": "goodwill"}
    assert readable_change(before) == "granted_alone_last_24h: 0.00 credits"
    assert readable_change(after) == (
        "approval_id: 1; state: pending; amount: 250.00 credits; source: goodwill"
    )
    assert readable_change({"monthly_max_cents": 250_000, "nested": {"held_nanos": 460}}) == (
        "monthly_max: $2,500.00; nested: (held: < 0.01 credits)"
    )
    assert readable_change(None) == "" and readable_change("as is") == "as is"
