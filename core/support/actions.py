"""What a support agent may do to an account, each through the core service that owns it.

Every action takes the acting ``Agent`` first, checks its level here (not only in the
pages: a customer or a plain ``support`` agent calling a forbidden action gets
``PermissionDenied``), requires a reason, and writes an audit entry with the target and
what it was before and after, in the caller's transaction, so the change and its record
commit together.

Every console write carries the submission id its form was drawn with (``submission_id``;
see ``core.support.once``): a retry or a double click of one submission acts once and answers
with the first one's result; the provider's idempotency keys are made from it.

    grant_credits_as_agent   goodwill/promotional credits; above the agent's limit (counting what the
                             agent granted the account in the last 24 hours) a pending approval
                             instead, which another agent approves or rejects; never to an account
                             the agent is a member of
    approve_grant / reject_grant    a second agent, with a reason and a ticked confirmation
    void_grant_as_agent      takes back what is left of a goodwill or promotional grant
    refund_top_up            support_admin: refunds through the provider (Stripe or the sandbox),
                             reverses the unspent credits (and the debt the purchase had paid off);
                             also resolves a top-up paid but never credited
    credit_paid_top_up_as_agent   support_admin: credits a top-up paid but never credited (its
                             payment did not match the price), once
    resend_receipt           addresses a paid top-up's receipt again (Stripe emails it; with the
                             sandbox the portal does, when SMTP_URL is set)
    set_cap_as_agent / lift_cap_as_agent    support_admin
    suspend_account / reactivate_account    support_admin (authorize answers ``account_suspended``)
    reconcile_account        re-asks the provider about the account's open top-ups
    record_customer_view     the "view as customer" itself, audited
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.permissions import Actor
from core.accounts.service import find_account, shown_id
from core.db import unit_of_work
from core.db.models import (
    Account,
    AuditLog,
    CreditGrant,
    Membership,
    SpendCap,
    SupportApproval,
    SupportSubmission,
    TopUp,
    User,
)
from core.display import format_credits, format_datetime
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.ledger.service import GrantView, _grant_view, grant_credits, lock_accounts, void_grant
from core.payments import states
from core.payments.config import format_cents
from core.payments.facts import load_facts
from core.payments.notify import Mail, billing_emails, email_after_commit
from core.payments.provider import PaymentProvider
from core.payments.reconcile import ReconcileReport, reconcile
from core.payments.runtime import Payments
from core.payments.settle import apply_refund, credit_anyway, lock_top_up
from core.spend.alerts import is_email_address
from core.spend.caps import CapView, _cap_view, checked_target, delete_cap, set_cap
from core.support.agents import SUPPORT, SUPPORT_ADMIN, Agent, SupportLimits, require_agent, support_limits
from core.support.audit import ACTION_PREFIX, record, required_reason
from core.support.once import STARTED, checked_submission_id, claim, finish, replayed

SUPPORT_GRANT_SOURCES = ("goodwill", "promotional")
ACCOUNT_STATUSES = ("active", "suspended")
GRANT_WINDOW = timedelta(hours=24)  # an agent's grants to one account within it count together
REFUND_IN_FLIGHT = timedelta(minutes=10)  # another refund of the top-up started this recently blocks one


@dataclass(frozen=True)
class ApprovalView:
    approval_id: int
    account_id: str
    source: str
    amount_nanos: int
    expires_at: datetime | None
    reason: str
    state: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    grant_id: int | None
    duplicate_of: int | None = None  # an older pending request for the same account, amount and reason


@dataclass(frozen=True)
class GrantOutcome:
    """A grant made now, or a request waiting for a second agent."""

    grant: GrantView | None
    approval: ApprovalView | None
    granted_before_nanos: int = 0  # what the agent granted the account alone in the 24 hours before

    @property
    def pending(self) -> bool:
        return self.grant is None


def _approval_view(row: SupportApproval, duplicate_of: int | None = None) -> ApprovalView:
    return ApprovalView(
        approval_id=row.id,
        account_id=row.account_id,
        source=row.source,
        amount_nanos=row.amount_nanos,
        expires_at=row.expires_at,
        reason=row.reason,
        state=row.state,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        grant_id=row.grant_id,
        duplicate_of=duplicate_of,
    )


def _once(
    session: Session,
    agent: Agent,
    submission_id: str | None,
    *,
    action: str,
    account_id: str | None,
    fields: dict[str, Any],
    at: datetime,
) -> tuple[SupportSubmission | None, dict[str, Any] | None]:
    """The claimed submission and, for a repeat of a finished one, its stored result."""
    if submission_id is None:
        return None, None
    row = claim(
        session,
        submission_id=submission_id,
        agent=agent,
        action=action,
        account_id=account_id,
        fields=fields,
        at=at,
    )
    return row, replayed(row)


def _done(session: Session, row: SupportSubmission | None, result: dict[str, Any], at: datetime) -> None:
    if row is not None:
        finish(session, row, result, at)


def _grant_key(submission_id: str | None) -> str | None:
    return None if submission_id is None else f"support:{submission_id}"


def _stored_grant(session: Session, grant_id: int) -> GrantView:
    grant = session.get(CreditGrant, grant_id)
    assert grant is not None, f"a finished submission names grant {grant_id}, which is gone"
    return _grant_view(grant)


def _require_confirmation(confirmed: bool, what: str) -> None:
    if confirmed is not True:
        raise ValidationError(f"tick the confirmation to {what}", code="not_confirmed", field="confirmed")


def _refuse_member(session: Session, agent: Agent, account_id: str) -> None:
    """No agent grants credits to an account they belong to (matched by the agent's email)."""
    role = session.scalar(
        select(Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(Membership.account_id == account_id, func.lower(User.email) == agent.email.strip().lower())
    )
    if role is not None:
        raise PermissionDenied(
            f"you are a member ({role}) of account {account_id}: another agent must grant its credits",
            code="own_account",
            field="account_id",
        )


def granted_alone_nanos(
    session: Session, agent: Agent, account_id: str, *, since: datetime, at: datetime
) -> int:
    """Credits the agent granted the account without a second agent in ``(since, at]``."""
    total = session.scalar(
        select(func.coalesce(func.sum(CreditGrant.amount_nanos), 0)).where(
            CreditGrant.account_id == account_id,
            CreditGrant.source.in_(SUPPORT_GRANT_SOURCES),
            func.lower(CreditGrant.created_by) == agent.email.strip().lower(),
            CreditGrant.created_at > since,
            CreditGrant.created_at <= at,
        )
    )
    return int(total or 0)


def _account(session: Session, account_id: str) -> Account:
    account = find_account(session, account_id)
    if account is None:
        raise NotFound(f"account {shown_id(account_id)} does not exist", field="account_id")
    return account


def _grant_facts(grant: GrantView) -> dict[str, Any]:
    return {
        "grant_id": grant.grant_id,
        "source": grant.source,
        "amount_nanos": grant.amount_nanos,
        "remaining_nanos": grant.remaining_nanos,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
    }


def _check_grant_input(source: str, amount_nanos: int, expires_at: datetime | None, at: datetime) -> None:
    if source not in SUPPORT_GRANT_SOURCES:
        raise ValidationError("support grants are goodwill or promotional credits", field="source")
    if not isinstance(amount_nanos, int) or isinstance(amount_nanos, bool) or amount_nanos <= 0:
        raise ValidationError("amount must be a positive number of credits", field="amount")
    if expires_at is not None and expires_at <= at:
        raise ValidationError("expiry must be in the future", field="expires_at")


def _issue(
    session: Session,
    *,
    agent: Agent,
    account_id: str,
    amount_nanos: int,
    source: str,
    expires_at: datetime | None,
    reason: str,
    at: datetime,
    approved_by: str | None = None,
    idempotency_key: str | None = None,
    submission_id: str | None = None,
) -> GrantView:
    balance_before = lock_accounts(session, [account_id])[account_id].balance_nanos
    grant = grant_credits(
        session,
        account_id=account_id,
        amount_nanos=amount_nanos,
        source=source,
        at=at,
        expires_at=expires_at,
        description=reason[:500],
        created_by=agent.email if approved_by is None else f"{agent.email} (approved by {approved_by})",
        idempotency_key=idempotency_key,
    )
    balance_after = session.get(Account, account_id).balance_nanos  # type: ignore[union-attr]
    record(
        session,
        agent=agent,
        action="grant_credits",
        account_id=account_id,
        target=f"grant:{grant.grant_id}",
        reason=reason,
        at=at,
        before={"balance_nanos": balance_before},
        after={"balance_nanos": balance_after, **_grant_facts(grant)},
        **({"approved_by": approved_by} if approved_by else {}),
        **({"submission_id": submission_id} if submission_id else {}),
    )
    return grant


def grant_credits_as_agent(
    session: Session,
    agent: Agent,
    *,
    account_id: str,
    amount_nanos: int,
    reason: str,
    at: datetime,
    source: str = "goodwill",
    expires_at: datetime | None = None,
    limits: SupportLimits | None = None,
    submission_id: str | None = None,
) -> GrantOutcome:
    """Grant credits now when within the agent's limit, counting what the agent granted the account
    alone in the last 24 hours; otherwise ask a second agent (pending). A repeat of the same
    submission answers with the first one's outcome and grants nothing more."""
    require_agent(agent, SUPPORT)
    why = required_reason(reason)
    _check_grant_input(source, amount_nanos, expires_at, at)
    _account(session, account_id)
    fields = {
        "account_id": account_id,
        "amount_nanos": amount_nanos,
        "source": source,
        "expires_at": expires_at.isoformat() if expires_at else None,
        "reason": why,
    }
    row, stored = _once(
        session, agent, submission_id, action="grant_credits", account_id=account_id, fields=fields, at=at
    )
    if stored is not None:
        if stored.get("grant_id") is not None:
            return GrantOutcome(_stored_grant(session, int(stored["grant_id"])), None, 0)
        approval = session.get(SupportApproval, int(stored["approval_id"]))
        assert approval is not None
        return GrantOutcome(None, _approval_view(approval), int(stored.get("granted_before_nanos", 0)))
    _refuse_member(session, agent, account_id)
    limits = limits or support_limits()
    lock_accounts(session, [account_id])  # the window's sum is read under the lock the grant takes
    before_nanos = granted_alone_nanos(session, agent, account_id, since=at - GRANT_WINDOW, at=at)
    if before_nanos + amount_nanos <= limits.own_limit_nanos(agent):
        grant = _issue(
            session,
            agent=agent,
            account_id=account_id,
            amount_nanos=amount_nanos,
            source=source,
            expires_at=expires_at,
            reason=why,
            at=at,
            idempotency_key=_grant_key(submission_id),
            submission_id=submission_id,
        )
        _done(session, row, {"grant_id": grant.grant_id}, at)
        return GrantOutcome(grant, None, before_nanos)
    approval = SupportApproval(
        account_id=account_id,
        action="grant_credits",
        source=source,
        amount_nanos=amount_nanos,
        expires_at=expires_at,
        reason=why,
        state="pending",
        requested_by=agent.email,
        requested_at=at,
        decision_reason="",
    )
    session.add(approval)
    session.flush()
    record(
        session,
        agent=agent,
        action="grant_requested",
        account_id=account_id,
        target=f"approval:{approval.id}",
        reason=why,
        at=at,
        before={"granted_alone_last_24h_nanos": before_nanos},
        after={
            "approval_id": approval.id,
            "state": "pending",
            "amount_nanos": amount_nanos,
            "source": source,
        },
        **({"submission_id": submission_id} if submission_id else {}),
    )
    _done(session, row, {"approval_id": approval.id, "granted_before_nanos": before_nanos}, at)
    return GrantOutcome(None, _approval_view(approval), before_nanos)


def _pending(session: Session, approval_id: int) -> SupportApproval:
    row = session.scalar(select(SupportApproval).where(SupportApproval.id == approval_id).with_for_update())
    if row is None:
        raise NotFound(f"approval {approval_id} does not exist", field="approval_id")
    if row.state != "pending":
        raise ValidationError(
            f"approval {approval_id} was already {row.state}", code="decided", field="approval_id"
        )
    return row


def _check_second_agent(agent: Agent, row: SupportApproval, limits: SupportLimits) -> None:
    if agent.email.strip().lower() == row.requested_by.strip().lower():
        raise PermissionDenied("a second agent must decide: you asked for this grant", field="agent")
    if row.amount_nanos > limits.support_grant_nanos:
        require_agent(agent, SUPPORT_ADMIN)


def _decision_fields(approval_id: int, decision: str, reason: str) -> dict[str, Any]:
    return {"approval_id": approval_id, "decision": decision, "reason": reason}


def approve_grant(
    session: Session,
    agent: Agent,
    *,
    approval_id: int,
    at: datetime,
    reason: str = "",
    confirmed: bool = False,
    limits: SupportLimits | None = None,
    submission_id: str | None = None,
) -> GrantView:
    """A second agent approves a pending grant, with a reason and a ticked confirmation: the credits
    are granted now, both agents audited. A repeat of the same submission grants nothing more."""
    require_agent(agent, SUPPORT)
    why = required_reason(reason)
    _require_confirmation(confirmed, f"approve request #{approval_id}")
    limits = limits or support_limits()
    submission, stored = _once(
        session,
        agent,
        submission_id,
        action="grant_approved",
        account_id=None,
        fields=_decision_fields(approval_id, "approve", why),
        at=at,
    )
    if stored is not None:
        return _stored_grant(session, int(stored["grant_id"]))
    row = _pending(session, approval_id)
    _check_second_agent(agent, row, limits)
    _refuse_member(session, agent, row.account_id)
    if row.expires_at is not None and row.expires_at <= at:
        raise ValidationError(
            "the requested expiry has passed: reject this request and ask again",
            code="expired",
            field="expires_at",
        )
    expires_at = row.expires_at
    requester = Agent(row.requested_by, SUPPORT)
    grant = _issue(
        session,
        agent=requester,
        account_id=row.account_id,
        amount_nanos=row.amount_nanos,
        source=row.source,
        expires_at=expires_at,
        reason=row.reason,
        at=at,
        approved_by=agent.email,
        idempotency_key=f"support:approval:{row.id}",
        submission_id=submission_id,
    )
    row.state = "approved"
    row.decided_by = agent.email
    row.decided_at = at
    row.decision_reason = why
    row.grant_id = grant.grant_id
    record(
        session,
        agent=agent,
        action="grant_approved",
        account_id=row.account_id,
        target=f"approval:{row.id}",
        reason=why,
        at=at,
        before={"state": "pending"},
        after={"state": "approved", "grant_id": grant.grant_id},
        request=_request_facts(row),
        **({"submission_id": submission_id} if submission_id else {}),
    )
    _done(session, submission, {"grant_id": grant.grant_id}, at)
    return grant


def _request_facts(row: SupportApproval) -> dict[str, Any]:
    """What the decision was about, as the audit entry names it."""
    return {
        "approval_id": row.id,
        "account_id": row.account_id,
        "amount_nanos": row.amount_nanos,
        "source": row.source,
        "requested_by": row.requested_by,
        "reason": row.reason,
    }


def reject_grant(
    session: Session,
    agent: Agent,
    *,
    approval_id: int,
    reason: str,
    at: datetime,
    confirmed: bool = False,
    submission_id: str | None = None,
) -> ApprovalView:
    """A second agent turns a pending grant down (a reason and a ticked confirmation); nothing is granted."""
    require_agent(agent, SUPPORT)
    why = required_reason(reason)
    _require_confirmation(confirmed, f"reject request #{approval_id}")
    submission, stored = _once(
        session,
        agent,
        submission_id,
        action="grant_rejected",
        account_id=None,
        fields=_decision_fields(approval_id, "reject", why),
        at=at,
    )
    if stored is not None:
        decided = session.get(SupportApproval, int(stored["approval_id"]))
        assert decided is not None
        return _approval_view(decided)
    row = _pending(session, approval_id)
    if agent.email.strip().lower() == row.requested_by.strip().lower():
        raise PermissionDenied(
            "a second agent must decide: withdraw it by asking another agent", field="agent"
        )
    row.state = "rejected"
    row.decided_by = agent.email
    row.decided_at = at
    row.decision_reason = why
    record(
        session,
        agent=agent,
        action="grant_rejected",
        account_id=row.account_id,
        target=f"approval:{row.id}",
        reason=why,
        at=at,
        before={"state": "pending"},
        after={"state": "rejected"},
        request=_request_facts(row),
        **({"submission_id": submission_id} if submission_id else {}),
    )
    session.flush()
    _done(session, submission, {"approval_id": row.id}, at)
    return _approval_view(row)


def _same_request_key(row: SupportApproval) -> tuple[str, int, str]:
    return (row.account_id, row.amount_nanos, " ".join(row.reason.lower().split()))


def pending_approvals(
    session: Session, *, account_id: str | None = None, limit: int = 100
) -> list[ApprovalView]:
    """Grants waiting for a second agent, oldest first; a later request for the same account, amount
    and reason as an older pending one is marked as its likely duplicate (``duplicate_of``)."""
    stmt = select(SupportApproval).where(SupportApproval.state == "pending")
    if account_id is not None:
        stmt = stmt.where(SupportApproval.account_id == account_id)
    first: dict[tuple[str, int, str], int] = {}
    views = []
    for row in session.scalars(stmt.order_by(SupportApproval.id).limit(limit)):
        key = _same_request_key(row)
        views.append(_approval_view(row, first.get(key)))
        first.setdefault(key, row.id)
    return views


def void_grant_as_agent(
    session: Session,
    agent: Agent,
    *,
    grant_id: int,
    reason: str,
    at: datetime,
    submission_id: str | None = None,
) -> GrantView:
    """Take back what is left of a goodwill or promotional grant (purchased credits go by refund)."""
    require_agent(agent, SUPPORT)
    why = required_reason(reason)
    submission, stored = _once(
        session,
        agent,
        submission_id,
        action="void_grant",
        account_id=None,
        fields={"grant_id": grant_id, "reason": why},
        at=at,
    )
    if stored is not None:
        return _stored_grant(session, grant_id)
    grant = session.get(CreditGrant, grant_id)
    if grant is None:
        raise NotFound(f"grant {grant_id} does not exist", field="grant_id")
    if grant.source == "purchased":
        raise ValidationError("purchased credits are reversed by refunding the top-up", field="grant_id")
    if grant.expired:
        raise ValidationError(f"grant {grant_id} has expired or was voided already", field="grant_id")
    account_id = grant.account_id
    balance_before = lock_accounts(session, [account_id])[account_id].balance_nanos
    session.refresh(grant)
    before = {"balance_nanos": balance_before, "remaining_nanos": grant.remaining_nanos}
    view = void_grant(session, grant_id=grant_id, at=at, reason=why, actor=agent.email)
    record(
        session,
        agent=agent,
        action="void_grant",
        account_id=account_id,
        target=f"grant:{grant_id}",
        reason=why,
        at=at,
        before=before,
        after={"balance_nanos": _account(session, account_id).balance_nanos, "remaining_nanos": 0},
    )
    _done(session, submission, {"grant_id": grant_id}, at)
    return view


def set_account_status(
    session: Session,
    agent: Agent,
    *,
    account_id: str,
    status: str,
    reason: str,
    at: datetime,
    submission_id: str | None = None,
) -> str:
    """Suspend or reactivate an account (support_admin); returns the status before."""
    require_agent(agent, SUPPORT_ADMIN)
    why = required_reason(reason)
    if status not in ACCOUNT_STATUSES:
        raise ValidationError("an account is active or suspended", field="status")
    _account(session, account_id)
    submission, stored = _once(
        session,
        agent,
        submission_id,
        action="set_account_status",
        account_id=account_id,
        fields={"account_id": account_id, "status": status, "reason": why},
        at=at,
    )
    if stored is not None:
        return str(stored["before"])
    account = lock_accounts(session, [account_id])[account_id]
    before = account.status
    if before == status:
        raise ValidationError(f"the account is {status} already", code="unchanged", field="status")
    if before == "closed":
        raise ValidationError("a closed account stays closed", field="status")
    account.status = status
    session.flush()
    record(
        session,
        agent=agent,
        action="suspend_account" if status == "suspended" else "reactivate_account",
        account_id=account_id,
        target=f"account:{account_id}",
        reason=why,
        at=at,
        before={"status": before},
        after={"status": status},
    )
    _done(session, submission, {"before": before}, at)
    return before


def suspend_account(
    session: Session,
    agent: Agent,
    *,
    account_id: str,
    reason: str,
    at: datetime,
    submission_id: str | None = None,
) -> str:
    return set_account_status(
        session,
        agent,
        account_id=account_id,
        status="suspended",
        reason=reason,
        at=at,
        submission_id=submission_id,
    )


def reactivate_account(
    session: Session,
    agent: Agent,
    *,
    account_id: str,
    reason: str,
    at: datetime,
    submission_id: str | None = None,
) -> str:
    return set_account_status(
        session,
        agent,
        account_id=account_id,
        status="active",
        reason=reason,
        at=at,
        submission_id=submission_id,
    )


def _cap_facts(cap: SpendCap | CapView | None) -> dict[str, Any] | None:
    if cap is None:
        return None
    return {
        "scope": cap.scope,
        "scope_value": cap.scope_value,
        "period": cap.period,
        "limit_nanos": cap.limit_nanos,
        "mode": cap.mode,
    }


def _live_cap(
    session: Session, account_id: str, scope: str, scope_value: str, period: str
) -> SpendCap | None:
    return session.scalar(
        select(SpendCap).where(
            SpendCap.account_id == account_id,
            SpendCap.scope == scope,
            SpendCap.scope_value == scope_value.strip(),
            SpendCap.period == period,
            SpendCap.deleted_at.is_(None),
        )
    )


def set_cap_as_agent(
    session: Session,
    agent: Agent,
    *,
    account_id: str,
    limit: str | Decimal | int,
    mode: str,
    reason: str,
    at: datetime,
    scope: str = "account",
    scope_value: str = "",
    period: str = "month",
    submission_id: str | None = None,
) -> CapView:
    """Set or change a cap (any scope, including an API key; per day, week or month) on a
    customer's account (support_admin), with the old one audited."""
    require_agent(agent, SUPPORT_ADMIN)
    why = required_reason(reason)
    _account(session, account_id)
    scope_value, period = checked_target(session, scope=scope, scope_value=scope_value, period=period)
    fields = {
        "account_id": account_id,
        "limit": str(limit),
        "mode": mode,
        "scope": scope,
        "scope_value": scope_value,
        "period": period,
        "reason": why,
    }
    submission, stored = _once(
        session, agent, submission_id, action="set_cap", account_id=account_id, fields=fields, at=at
    )
    if stored is not None:
        cap = session.get(SpendCap, int(stored["cap_id"]))
        assert cap is not None
        return _cap_view(cap)
    before = _cap_facts(_live_cap(session, account_id, scope, scope_value, period))
    view = set_cap(
        session,
        account_id=account_id,
        scope=scope,
        scope_value=scope_value,
        period=period,
        limit=limit,
        mode=mode,
        actor=Actor.agent(agent.email),  # caps.edit is open to the support console (checked above)
        at=at,
    )
    record(
        session,
        agent=agent,
        action="set_cap",
        account_id=account_id,
        target=f"cap:{view.cap_id}",
        reason=why,
        at=at,
        before=before,
        after=_cap_facts(view),
    )
    _done(session, submission, {"cap_id": view.cap_id}, at)
    return view


def lift_cap_as_agent(
    session: Session,
    agent: Agent,
    *,
    account_id: str,
    cap_id: int,
    reason: str,
    at: datetime,
    submission_id: str | None = None,
) -> None:
    """Remove a cap (support_admin): authorize stops refusing on it from now."""
    require_agent(agent, SUPPORT_ADMIN)
    why = required_reason(reason)
    submission, stored = _once(
        session,
        agent,
        submission_id,
        action="lift_cap",
        account_id=account_id,
        fields={"account_id": account_id, "cap_id": cap_id, "reason": why},
        at=at,
    )
    if stored is not None:
        return
    cap = session.scalar(
        select(SpendCap).where(
            SpendCap.id == cap_id, SpendCap.account_id == account_id, SpendCap.deleted_at.is_(None)
        )
    )
    before = _cap_facts(cap)
    delete_cap(session, account_id=account_id, cap_id=cap_id, actor=Actor.agent(agent.email), at=at)
    record(
        session,
        agent=agent,
        action="lift_cap",
        account_id=account_id,
        target=f"cap:{cap_id}",
        reason=why,
        at=at,
        before=before,
        after=None,
    )
    _done(session, submission, {"cap_id": cap_id}, at)


@dataclass(frozen=True)
class RefundDone:
    top_up_id: int
    refunded_cents: int  # by this refund
    reversed_nanos: int  # credits taken back
    spent_nanos: int  # refunded credits already used (not taken back)
    # Of those used: what the purchase had paid off a negative balance, now owed again.
    debt_restored_nanos: int = 0


def _provider(payments: Payments) -> PaymentProvider:
    if payments.provider is None:
        raise ValidationError(
            "payments are off on this server (set STRIPE_API_KEY): nothing can be refunded or sent",
            code="payments_off",
            field="top_up",
        )
    return payments.provider


def refund_key(top_up_id: int, submission_id: str) -> str:
    """The refund's idempotency key: one per console submission.

    A double click or a retry after a lost answer sends the same submission, so the provider
    is asked with the same key and refunds once. Nothing in it moves with the refund itself
    (the refunded total, which the first refund's own webhook raises, made a retry a new refund).
    """
    return f"topup:{top_up_id}:refund:{submission_id}"


def _refund_in_flight(
    session: Session, top_up_id: int, submission_id: str, at: datetime, *, timezone: str = "UTC"
) -> None:
    """Refuse while another refund submission of the top-up started recently and has not finished
    (saying when it started, in ``timezone``: the account's, as the console writes its times)."""
    other = session.scalar(
        select(SupportSubmission)
        .where(
            SupportSubmission.target == f"top_up:{top_up_id}",
            SupportSubmission.state == STARTED,
            SupportSubmission.id != submission_id,
            SupportSubmission.created_at > at - REFUND_IN_FLIGHT,
        )
        .order_by(SupportSubmission.created_at.desc())
        .limit(1)
    )
    if other is not None:
        raise Conflict(
            f"{other.agent} started a refund of top-up #{top_up_id} at "
            f"{format_datetime(other.created_at, timezone)} that has not finished: look at the top-up "
            "again before refunding more",
            code="refund_in_progress",
            field="top_up",
        )


def _refund_started(
    session: Session,
    provider: PaymentProvider,
    *,
    top_up_id: int,
    amount_cents: int | None,
    seen_refunded_cents: int | None,
    submission_id: str,
    at: datetime,
) -> dict[str, Any]:
    """Check the refund against the top-up as it is now and keep that as the submission's start."""
    top_up = lock_top_up(session, top_up_id)
    if top_up.state not in REFUNDABLE_STATES or not top_up.payment_intent_id:
        raise ValidationError(
            f"top-up #{top_up_id} is {top_up.state}: only a paid one is refunded", field="top_up"
        )
    if top_up.provider != provider.name:
        raise ValidationError(f"top-up #{top_up_id} was paid with {top_up.provider}", field="top_up")
    facts = load_facts(session, top_up)  # a payment support never credited may differ from the price
    left = (facts.paid_cents or top_up.amount_cents) - max(top_up.refunded_cents, facts.refunded_cents)
    if left <= 0:
        raise ValidationError(f"top-up #{top_up_id} is refunded in full already", field="top_up")
    if seen_refunded_cents is not None and seen_refunded_cents != top_up.refunded_cents:
        raise Conflict(
            f"top-up #{top_up_id} changed since the form was drawn: {format_cents(top_up.refunded_cents)} "
            f"is refunded now, not {format_cents(seen_refunded_cents)}; look at it again",
            code="stale_form",
            field="top_up",
        )
    if amount_cents is not None and not 0 < amount_cents <= left:
        raise ValidationError(f"refund between $0.01 and {format_cents(left)}", field="amount")
    _refund_in_flight(
        session, top_up_id, submission_id, at, timezone=_account(session, top_up.account_id).timezone
    )
    return {
        "state": top_up.state,
        "refunded_cents": top_up.refunded_cents,
        "reversed_nanos": top_up.reversed_nanos,
        "refund_spent_nanos": top_up.refund_spent_nanos,
        "debt_restored_nanos": top_up.debt_restored_nanos,
        "balance_nanos": _account(session, top_up.account_id).balance_nanos,
        "payment_intent_id": top_up.payment_intent_id,
        "amount_cents": left if amount_cents is None else amount_cents,
    }


REFUNDABLE_STATES = frozenset({states.PAID, *states.SETTLED_STATES})  # the money was taken


def refund_top_up(
    payments: Payments,
    agent: Agent,
    *,
    top_up_id: int,
    reason: str,
    submission_id: str,
    amount_cents: int | None = None,
    seen_refunded_cents: int | None = None,
) -> RefundDone:
    """Refund a credited top-up through the provider (support_admin), then reverse its unspent credits.

    The first call of a submission checks the amount (all that is left when None) against the
    top-up, and against ``seen_refunded_cents`` (what the form showed) when given, and stores
    what it saw with the submission; every call of it asks the provider with one key
    (``refund_key``), so a retry after a lost answer refunds once and reports the first
    refund. The ledger side is ``core.payments.settle.apply_refund`` with the provider's running
    refunded total: a refund event that arrives later (Stripe's, or the sandbox's at once) finds
    it done and changes nothing.
    """
    require_agent(agent, SUPPORT_ADMIN)
    why = required_reason(reason)
    submission_id = checked_submission_id(submission_id)
    provider = _provider(payments)
    fields = {"top_up_id": top_up_id, "amount_cents": amount_cents, "reason": why}
    at = payments.clock()
    with unit_of_work(payments.engine, write=True) as session:
        top_up = session.get(TopUp, top_up_id)
        if top_up is None:
            raise NotFound(f"top-up {top_up_id} does not exist", field="top_up")
        account_id = top_up.account_id
        submission = claim(
            session,
            submission_id=submission_id,
            agent=agent,
            action="refund_top_up",
            account_id=account_id,
            fields=fields,
            at=at,
            target=f"top_up:{top_up_id}",
        )
        stored = replayed(submission)
        if stored is None and submission.before is None:
            submission.before = _refund_started(
                session,
                provider,
                top_up_id=top_up_id,
                amount_cents=amount_cents,
                seen_refunded_cents=seen_refunded_cents,
                submission_id=submission_id,
                at=at,
            )
        before = dict(submission.before or {})
    if stored is not None:
        return RefundDone(**stored)
    made = provider.refund_payment(
        str(before["payment_intent_id"]),
        amount_cents=int(before["amount_cents"]),
        idempotency_key=refund_key(top_up_id, submission_id),
    )
    at = payments.clock()
    with unit_of_work(payments.engine, write=True) as session:
        submission = claim(
            session,
            submission_id=submission_id,
            agent=agent,
            action="refund_top_up",
            account_id=account_id,
            fields=fields,
            at=at,
            target=f"top_up:{top_up_id}",
        )
        if (stored := replayed(submission)) is not None:  # a double click finished first
            return RefundDone(**stored)
        # The provider's refund event may have settled it already (the sandbox delivers at once):
        # apply_refund then changes nothing, and the effect is measured against ``before``.
        apply_refund(session, top_up_id=top_up_id, refunded_cents_total=made.refunded_cents_total, at=at)
        top_up = lock_top_up(session, top_up_id)
        session.refresh(top_up)
        done = RefundDone(
            top_up_id,
            top_up.refunded_cents - int(before["refunded_cents"]),
            top_up.reversed_nanos - int(before["reversed_nanos"]),
            top_up.refund_spent_nanos - int(before["refund_spent_nanos"]),
            top_up.debt_restored_nanos - int(before.get("debt_restored_nanos", 0)),
        )
        audited_before = {k: v for k, v in before.items() if k not in ("payment_intent_id", "amount_cents")}
        record(
            session,
            agent=agent,
            action="refund_top_up",
            account_id=account_id,
            target=f"top_up:{top_up_id}",
            reason=why,
            at=at,
            before=audited_before,
            after={
                "state": top_up.state,
                "refunded_cents": top_up.refunded_cents,
                "balance_nanos": _account(session, account_id).balance_nanos,
                "reversed_nanos": done.reversed_nanos,
                "debt_restored_nanos": done.debt_restored_nanos,
                "refund_id": made.refund_id,
            },
            submission_id=submission_id,
            amount_cents=int(before["amount_cents"]),
        )
        finish(session, submission, asdict(done), at)
    return done


RECEIPT_STATES = frozenset({states.PAID, *states.SETTLED_STATES})  # the money was taken: a receipt exists


def credit_paid_top_up_as_agent(
    session: Session,
    agent: Agent,
    *,
    top_up_id: int,
    reason: str,
    at: datetime,
    submission_id: str | None = None,
) -> str:
    """Credit a top-up that was paid but not credited (its payment did not match the price): its
    credits, once, as bought. The other way to resolve one is to refund it (``refund_top_up``)."""
    require_agent(agent, SUPPORT_ADMIN)
    why = required_reason(reason)
    submission, stored = _once(
        session,
        agent,
        submission_id,
        action="credit_paid_top_up",
        account_id=None,
        fields={"top_up_id": top_up_id, "reason": why},
        at=at,
    )
    if stored is not None:
        return str(stored["outcome"])
    top_up = session.get(TopUp, top_up_id)
    if top_up is None:
        raise NotFound(f"top-up {top_up_id} does not exist", field="top_up")
    account_id = top_up.account_id
    _refuse_member(session, agent, account_id)
    balance_before = _account(session, account_id).balance_nanos
    outcome = credit_anyway(session, top_up_id=top_up_id, decided_by=f"support:{agent.email}", at=at)
    record(
        session,
        agent=agent,
        action="credit_paid_top_up",
        account_id=account_id,
        target=f"top_up:{top_up_id}",
        reason=why,
        at=at,
        before={"state": states.PAID, "balance_nanos": balance_before},
        after={"state": top_up.state, "balance_nanos": _account(session, account_id).balance_nanos},
    )
    _done(session, submission, {"outcome": outcome}, at)
    return outcome


MAX_RECEIPT_RECIPIENTS = 10


@dataclass(frozen=True)
class ReceiptResent:
    top_up_id: int
    recipients: tuple[str, ...]
    sent_by: str  # "stripe": Stripe emails it; "portal": the portal emails it; "": recorded, not emailed
    receipt_url: str
    repeated: tuple[str, ...] = ()  # addresses this same resend had reached already (a double click)


def _receipt_recipient(email: str) -> str:
    text = email.strip().lower()
    if not is_email_address(text):
        raise ValidationError(
            f"{email.strip()!r} is not an email address: give one, or leave it empty for the account's "
            "owners, admins and billing members",
            code="invalid_email",
            field="email",
        )
    return text


def _resends_so_far(session: Session, account_id: str, top_up_id: int) -> int:
    rows = session.scalars(
        select(AuditLog.details).where(
            AuditLog.account_id == account_id, AuditLog.action == ACTION_PREFIX + "resend_receipt"
        )
    )
    return sum(1 for details in rows if (details or {}).get("target") == f"top_up:{top_up_id}")


def receipt_key(top_up_id: int, resends_before: int | str, email: str) -> str:
    """The resend's idempotency key: one per (top-up, submission, address); without a submission id,
    one per (top-up, resends before it, address)."""
    digest = hashlib.sha256(email.encode()).hexdigest()[:16]
    return f"topup:{top_up_id}:receipt:{resends_before}:{digest}"


def _receipt_resent(stored: dict[str, Any]) -> ReceiptResent:
    return ReceiptResent(
        top_up_id=int(stored["top_up_id"]),
        recipients=tuple(stored["recipients"]),
        sent_by=str(stored["sent_by"]),
        receipt_url=str(stored["receipt_url"]),
        repeated=tuple(stored["repeated"]),
    )


def _receipt_mail(
    top_up: TopUp, recipients: tuple[str, ...], receipt_url: str, public_url: str, *, timezone: str
) -> Mail:
    paid_on = format_datetime(top_up.paid_at or top_up.credited_at or top_up.created_at, timezone)
    lines = [
        f"Receipt for Meterline top-up #{top_up.id}",
        "",
        f"Paid: {format_cents(top_up.amount_cents)} ({top_up.currency.upper()}) on {paid_on}",
        f"Credits: {format_credits(top_up.credits_nanos)}",
        f"Account: {top_up.account_id}",
    ]
    if top_up.card_last4:
        lines.append(f"Card: {(top_up.card_brand or 'card').title()} ending {top_up.card_last4}")
    if top_up.refunded_cents:
        lines.append(f"Refunded: {format_cents(top_up.refunded_cents)}")
    if receipt_url.startswith("/") and public_url:
        receipt_url = public_url + receipt_url
    if receipt_url.startswith("http"):
        lines += ["", f"View it online: {receipt_url}"]
    subject = f"Meterline: receipt for top-up #{top_up.id} ({format_cents(top_up.amount_cents)})"
    return Mail(recipients, subject, "\n".join(lines))


def resend_receipt(
    payments: Payments,
    agent: Agent,
    *,
    top_up_id: int,
    reason: str,
    email: str | None = None,
    submission_id: str | None = None,
) -> ReceiptResent:
    """Send a paid top-up's receipt again (support): to ``email``, else the account's paying members.

    With Stripe, the charge's ``receipt_email`` is set to each address (Stripe emails a
    receipt when it is set); with the sandbox the portal emails it after the audit entry
    commits, when ``SMTP_URL`` is set. Each address carries an idempotency key made from
    the submission (or, without one, the resends before this one), so a double click or a
    retry sends once.
    """
    require_agent(agent, SUPPORT)
    why = required_reason(reason)
    explicit = _receipt_recipient(email) if email and email.strip() else None
    provider = _provider(payments)
    fields = {"top_up_id": top_up_id, "email": explicit, "reason": why}
    with unit_of_work(payments.engine, write=submission_id is not None) as session:
        top_up = session.get(TopUp, top_up_id)
        if top_up is None:
            raise NotFound(f"top-up {top_up_id} does not exist", field="top_up")
        submission, stored = _once(
            session,
            agent,
            submission_id,
            action="resend_receipt",
            account_id=top_up.account_id,
            fields=fields,
            at=payments.clock(),
        )
        if stored is not None:
            return _receipt_resent(stored)
        if top_up.state not in RECEIPT_STATES or not top_up.payment_intent_id:
            raise ValidationError(
                f"top-up #{top_up_id} is {states.LABELS.get(top_up.state, top_up.state).lower()}: "
                "only a paid top-up has a receipt",
                code="not_paid",
                field="top_up",
            )
        if top_up.provider != provider.name:
            raise ValidationError(f"top-up #{top_up_id} was paid with {top_up.provider}", field="top_up")
        account_id = top_up.account_id
        intent_id = top_up.payment_intent_id
        stored_url = top_up.receipt_url
        recipients = (explicit,) if explicit else billing_emails(session, account_id)[:MAX_RECEIPT_RECIPIENTS]
        if not recipients:
            raise ValidationError(
                "the account has no owner, admin or billing member to send it to: give an email",
                code="no_recipient",
                field="email",
            )
        resends_before = _resends_so_far(session, account_id, top_up_id)
    key_part: int | str = resends_before if submission_id is None else str(submission_id)
    sent = [
        provider.send_receipt(
            intent_id, email=address, idempotency_key=receipt_key(top_up_id, key_part, address)
        )
        for address in recipients
    ]
    receipt_url = next((r.receipt_url for r in sent if r.receipt_url), stored_url)
    fresh = tuple(r.email for r in sent if not r.repeated)
    repeated = tuple(r.email for r in sent if r.repeated)
    at = payments.clock()
    with unit_of_work(payments.engine, write=True) as session:
        submission, stored = _once(
            session,
            agent,
            submission_id,
            action="resend_receipt",
            account_id=account_id,
            fields=fields,
            at=at,
        )
        if stored is not None:  # a double click finished first
            return _receipt_resent(stored)
        top_up = lock_top_up(session, top_up_id)
        if all(r.emailed_by_provider for r in sent):
            sent_by = provider.name
        elif fresh and email_after_commit(
            session,
            _receipt_mail(
                top_up,
                fresh,
                receipt_url,
                payments.config.public_url,
                timezone=_account(session, account_id).timezone,
            ),
        ):
            sent_by = "portal"
        else:
            sent_by = ""
        record(
            session,
            agent=agent,
            action="resend_receipt",
            account_id=account_id,
            target=f"top_up:{top_up_id}",
            reason=why,
            at=at,
            before={"state": top_up.state, "resends": resends_before},
            after={
                "recipients": list(recipients),
                "sent_by": sent_by or ("nobody: SMTP_URL is not set" if fresh else "nobody: sent already"),
                "repeated": list(repeated),
                "receipt_url": receipt_url,
            },
            **({"submission_id": submission_id} if submission_id else {}),
        )
        resent = ReceiptResent(top_up_id, recipients, sent_by, receipt_url, repeated)
        _done(session, submission, asdict(resent), at)
    return resent


def reconcile_account(payments: Payments, agent: Agent, *, account_id: str, reason: str) -> ReconcileReport:
    """Ask the provider now about every open top-up of the account, and audit what changed."""
    require_agent(agent, SUPPORT)
    why = required_reason(reason)
    with unit_of_work(payments.engine) as session:
        _account(session, account_id)
    report = reconcile(payments, stale_after=timedelta(0), account_id=account_id)
    with unit_of_work(payments.engine, write=True) as session:
        record(
            session,
            agent=agent,
            action="reconcile_payments",
            account_id=account_id,
            target=f"account:{account_id}",
            reason=why,
            at=payments.clock(),
            before={"open_top_ups": report.checked},
            after={"changed": report.changed, "still_open": report.still_open, "errors": report.errors},
        )
    return report


def record_customer_view(session: Session, agent: Agent, *, account_id: str, page: str, at: datetime) -> None:
    """Audit that an agent looked at the customer's own pages ("view as customer")."""
    require_agent(agent, SUPPORT)
    _account(session, account_id)
    record(
        session,
        agent=agent,
        action="view_as_customer",
        account_id=account_id,
        target=f"page:{page}",
        reason="view as customer",
        at=at,
    )


def describe_amount(nanos: int) -> str:
    return format_credits(nanos)
