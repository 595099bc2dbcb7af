"""Account 360: one read of everything support needs to answer "why is my balance X?".

``account_360`` gathers members, balance and grants, usage by day, top-ups, caps, alert
rules and firings, pending approvals, the recent authorize refusals (per minute, reason,
project and meter: "why was my request refused?"), and a timeline that joins ledger entries,
top-ups, payment webhook events, alert firings and audit entries (support actions, payment
alerts and settings, member and invitation changes, customer API keys created and revoked),
newest first. Every part is bounded
(``TIMELINE_LIMIT`` per source).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.service import find_account, shown_id
from core.db.models import (
    AlertFiring,
    AuditLog,
    Membership,
    PaymentCustomer,
    PaymentEvent,
    TopUp,
    UsageRollupDaily,
    User,
)
from core.display import format_credits, purchase_text
from core.errors import NotFound
from core.ledger.service import GrantView
from core.ledger.views import BalanceView, all_grants, balance_view, ledger_view
from core.payments import states
from core.payments.config import format_cents
from core.payments.views import TopUpView, top_up_history
from core.spend.alerts import FiringView, RuleView, firing_history, list_rules
from core.spend.caps import CapView, list_caps
from core.spend.refusals import RefusalView, recent_refusals
from core.support.actions import ApprovalView, pending_approvals
from core.support.agents import SUPPORT, Agent, require_agent

TIMELINE_LIMIT = 200  # per source, before merging
# An audit entry's timeline kind, from its action's prefix (``support.grant_credits``, ``members.invited``).
_AUDIT_KINDS = {"support": "support", "members": "members", "payments": "payments", "api_keys": "api keys"}
# Audit actions with a title of their own in the timeline (others show the action's code).
AUDIT_TITLES = {
    "api_keys.create": "Customer API key created",
    "api_keys.revoke": "Customer API key revoked",
}
USAGE_DAYS = 30


@dataclass(frozen=True)
class MemberView:
    email: str
    name: str
    role: str


@dataclass(frozen=True)
class UsageDay:
    usage_date: date
    amount_nanos: int
    event_count: int


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # ledger | top-up | webhook | alert | support | payments | members | api keys
    title: str
    amount_nanos: int | None  # credits moved, when something moved
    detail: str
    actor: str = ""


@dataclass(frozen=True)
class RefundChoice:
    """A paid top-up support can still refund: what a refund may give back and what it would take."""

    top_up_id: int
    paid_cents: int
    refundable_cents: int  # dollars not refunded yet
    unspent_nanos: int  # the purchase's credits not used yet: what a full refund takes back
    credits_nanos: int  # what the purchase granted

    @property
    def label(self) -> str:
        return (
            f"#{self.top_up_id}: {format_cents(self.refundable_cents)} of {format_cents(self.paid_cents)} "
            f"refundable · {format_credits(self.unspent_nanos)} unspent "
            f"of {format_credits(self.credits_nanos)}"
        )


def refund_choices(top_ups: list[TopUpView], grants: list[GrantView]) -> list[RefundChoice]:
    """The paid top-ups with money left to refund, each with its purchase grant's unspent credits."""
    remaining = {g.grant_id: (0 if g.expired else g.remaining_nanos) for g in grants}
    return [
        RefundChoice(
            top_up_id=t.top_up_id,
            paid_cents=t.amount_cents,
            refundable_cents=t.amount_cents - t.refunded_cents,
            unspent_nanos=remaining.get(t.grant_id, 0) if t.grant_id is not None else 0,
            credits_nanos=t.credits_nanos,
        )
        for t in top_ups
        if t.state in (states.PAID, *states.SETTLED_STATES) and t.refunded_cents < t.amount_cents
    ]


@dataclass(frozen=True)
class Account360:
    account_id: str
    name: str
    status: str
    timezone: str
    created_at: datetime
    customer_ids: tuple[str, ...]
    members: list[MemberView]
    balance: BalanceView
    grants: list[GrantView]  # every grant, newest first, spent and expired included
    usage_by_day: list[UsageDay]  # the last ``USAGE_DAYS`` days with usage, oldest first
    usage_total_nanos: int
    top_ups: list[TopUpView]
    caps: list[CapView]
    rules: list[RuleView]
    firings: list[FiringView]
    approvals: list[ApprovalView]
    timeline: list[TimelineItem]
    refusals: list[RefusalView]  # authorize refusals of the last 7 days, newest minute first (50 at most)
    refundable: list[RefundChoice]  # paid top-ups with money left to refund, newest first


def _members(session: Session, account_id: str) -> list[MemberView]:
    rows = session.execute(
        select(User.email, User.display_name, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id)
        .order_by(User.email)
    )
    return [MemberView(email, name or email, role) for email, name, role in rows]


def _usage(session: Session, account_id: str, at: datetime) -> list[UsageDay]:
    since = (at - timedelta(days=USAGE_DAYS)).date()
    rows = session.execute(
        select(
            UsageRollupDaily.usage_date,
            func.sum(UsageRollupDaily.amount_nanos),
            func.sum(UsageRollupDaily.event_count),
        )
        .where(UsageRollupDaily.account_id == account_id, UsageRollupDaily.usage_date >= since)
        .group_by(UsageRollupDaily.usage_date)
        .order_by(UsageRollupDaily.usage_date)
    )
    return [UsageDay(day, int(amount or 0), int(count or 0)) for day, amount, count in rows]


def timeline(session: Session, account_id: str, *, limit: int = TIMELINE_LIMIT) -> list[TimelineItem]:
    """Ledger entries, top-ups, webhook events, alert firings and audit entries (support actions,
    payments, member and invitation changes, customer API keys), newest first."""
    items: list[TimelineItem] = []
    for line in ledger_view(session, account_id, limit=limit):
        items.append(
            TimelineItem(
                line.effective_at,
                "ledger",
                f"{line.reason_label}: {line.grant_label}",
                line.amount_nanos,
                f"balance after {format_credits(line.balance_after_nanos)}"
                + (f" · {line.memo}" if line.memo else ""),
            )
        )
    top_ups = session.scalars(
        select(TopUp).where(TopUp.account_id == account_id).order_by(TopUp.id.desc()).limit(limit)
    ).all()
    for top_up in top_ups:
        items.append(
            TimelineItem(
                top_up.created_at,
                "top-up",
                f"Top-up #{top_up.id} started: {purchase_text(top_up.amount_cents, top_up.credits_nanos)} "
                f"({top_up.kind.replace('_', ' ')})",
                None,
                f"now {top_up.state}" + (f" · {top_up.note}" if top_up.note else ""),
                top_up.created_by,
            )
        )
    ids = [t.id for t in top_ups]
    if ids:
        events = session.scalars(
            select(PaymentEvent)
            .where(PaymentEvent.top_up_id.in_(ids))
            .order_by(PaymentEvent.received_at.desc())
            .limit(limit)
        )
        for event in events:
            items.append(
                TimelineItem(
                    event.received_at,
                    "webhook",
                    f"{event.provider} event {event.type} (top-up #{event.top_up_id})",
                    None,
                    event.outcome,
                )
            )
    firings = session.scalars(
        select(AlertFiring)
        .where(AlertFiring.account_id == account_id)
        .order_by(AlertFiring.id.desc())
        .limit(limit)
    )
    for firing in firings:
        items.append(
            TimelineItem(firing.at, "alert", f"Alert {firing.event}: {firing.subject}", None, firing.message)
        )
    audits = session.scalars(
        select(AuditLog).where(AuditLog.account_id == account_id).order_by(AuditLog.id.desc()).limit(limit)
    )
    for entry in audits:
        kind = _AUDIT_KINDS.get(entry.action.split(".", 1)[0], "payments")
        title = AUDIT_TITLES.get(entry.action, entry.action)
        items.append(TimelineItem(entry.created_at, kind, title, None, entry.reason, entry.actor))
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]


def account_360(session: Session, agent: Agent, account_id: str, *, at: datetime) -> Account360:
    """Everything about one account, for a support agent (PermissionDenied for anyone else)."""
    require_agent(agent, SUPPORT)
    account = find_account(session, account_id)
    if account is None:
        raise NotFound(f"account {shown_id(account_id)} does not exist", field="account_id")
    usage = _usage(session, account_id, at)
    customer_ids = tuple(
        c
        for c in session.scalars(
            select(PaymentCustomer.customer_id).where(PaymentCustomer.account_id == account_id)
        )
        if c
    )
    grants = all_grants(session, account_id)
    top_ups = top_up_history(session, account_id)
    return Account360(
        account_id=account.id,
        name=account.name,
        status=account.status,
        timezone=account.timezone,
        created_at=account.created_at,
        customer_ids=customer_ids,
        members=_members(session, account_id),
        balance=balance_view(session, account_id, at=at),
        grants=grants,
        usage_by_day=usage,
        usage_total_nanos=sum(day.amount_nanos for day in usage),
        top_ups=top_ups,
        caps=list_caps(session, account_id),
        rules=list_rules(session, account_id),
        firings=firing_history(session, account_id, limit=20),
        approvals=pending_approvals(session, account_id=account_id),
        timeline=timeline(session, account_id),
        refusals=recent_refusals(session, account_id, at=at),
        refundable=refund_choices(top_ups, grants),
    )
