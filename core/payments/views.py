"""Read views of payments for the portal: top-ups with their ledger entries, saved cards, auto-recharge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import Account, AutoRecharge, CreditGrant, LedgerEntry, PaymentCard, TopUp
from core.errors import NotFound
from core.ledger import reasons
from core.payments import states
from core.payments.config import TopUpLimits
from core.payments.provider import Card
from core.payments.recharge_policy import Decision, RechargeSnapshot, decide

HISTORY_LIMIT = 200
KIND_LABELS = {"checkout": "Card (checkout)", "saved_card": "Saved card", "auto_recharge": "Auto-recharge"}


@dataclass(frozen=True)
class TopUpView:
    top_up_id: int
    account_id: str
    kind: str
    kind_label: str
    provider: str
    state: str
    state_label: str
    amount_cents: int
    currency: str
    credits_nanos: int
    card_brand: str
    card_last4: str
    receipt_url: str
    checkout_url: str
    action_url: str
    failure_message: str
    grant_id: int | None
    ledger_entry_id: int | None
    refunded_cents: int
    reversed_nanos: int
    refund_spent_nanos: int
    dispute_status: str
    frozen_nanos: int
    note: str
    created_by: str
    created_at: datetime
    credited_at: datetime | None
    payment_id: str = ""  # the provider's payment (a Stripe PaymentIntent id), once there is one

    @property
    def card_label(self) -> str:
        if not self.card_last4:
            return ""
        return f"{(self.card_brand or 'card').title()} •••• {self.card_last4}"

    @property
    def is_open(self) -> bool:
        return self.state in states.OPEN_STATES

    @property
    def needs_action(self) -> bool:
        return self.state == states.PENDING_PAYMENT and bool(self.action_url)


def _view(top_up: TopUp, entry_id: int | None) -> TopUpView:
    return TopUpView(
        top_up_id=top_up.id,
        account_id=top_up.account_id,
        kind=top_up.kind,
        kind_label=KIND_LABELS.get(top_up.kind, top_up.kind),
        provider=top_up.provider,
        state=top_up.state,
        state_label=states.LABELS.get(top_up.state, top_up.state),
        amount_cents=top_up.amount_cents,
        currency=top_up.currency,
        credits_nanos=top_up.credits_nanos,
        card_brand=top_up.card_brand,
        card_last4=top_up.card_last4,
        receipt_url=top_up.receipt_url,
        checkout_url=top_up.checkout_url,
        action_url=top_up.action_url,
        failure_message=top_up.failure_message,
        grant_id=top_up.grant_id,
        ledger_entry_id=entry_id,
        refunded_cents=top_up.refunded_cents,
        reversed_nanos=top_up.reversed_nanos,
        refund_spent_nanos=top_up.refund_spent_nanos,
        dispute_status=top_up.dispute_status,
        frozen_nanos=top_up.frozen_nanos,
        note=top_up.note,
        created_by=top_up.created_by,
        created_at=top_up.created_at,
        credited_at=top_up.credited_at,
        payment_id=top_up.payment_intent_id or "",
    )


def _entries(session: Session, grant_ids: list[int]) -> dict[int, int]:
    """grant id -> the ledger entry that added its credits."""
    if not grant_ids:
        return {}
    rows = session.execute(
        select(LedgerEntry.grant_id, func.min(LedgerEntry.id))
        .where(LedgerEntry.grant_id.in_(grant_ids), LedgerEntry.reason == reasons.GRANT_ISSUED)
        .group_by(LedgerEntry.grant_id)
    )
    return {int(grant_id): int(entry_id) for grant_id, entry_id in rows}


def top_up_view(session: Session, top_up_id: int, *, account_id: str | None = None) -> TopUpView:
    """One top-up (of ``account_id``, when given: another account's id reads as missing)."""
    top_up = session.get(TopUp, top_up_id)
    if top_up is None or (account_id is not None and top_up.account_id != account_id):
        raise NotFound(f"top-up {top_up_id} does not exist", field="top_up_id")
    entries = _entries(session, [top_up.grant_id] if top_up.grant_id else [])
    return _view(top_up, entries.get(top_up.grant_id) if top_up.grant_id else None)


def top_up_history(session: Session, account_id: str, *, limit: int = HISTORY_LIMIT) -> list[TopUpView]:
    """The account's top-ups, newest first, each with the ledger entry it made."""
    rows = session.scalars(
        select(TopUp).where(TopUp.account_id == account_id).order_by(TopUp.id.desc()).limit(limit)
    ).all()
    entries = _entries(session, [t.grant_id for t in rows if t.grant_id is not None])
    return [_view(t, entries.get(t.grant_id) if t.grant_id else None) for t in rows]


@dataclass(frozen=True)
class OtherPurchase:
    """Purchased credits that no top-up of the portal made (a contract, an invoice, a sales order):
    part of the account's purchase history all the same."""

    grant_id: int
    description: str
    credits_nanos: int
    cost_basis_cents: int | None
    effective_at: datetime
    ledger_entry_id: int | None
    created_by: str


def other_purchases(session: Session, account_id: str, *, limit: int = HISTORY_LIMIT) -> list[OtherPurchase]:
    """The account's purchased grants that no top-up made, newest first, each with the entry that added it."""
    from_top_ups = select(TopUp.grant_id).where(TopUp.account_id == account_id, TopUp.grant_id.is_not(None))
    grants = session.scalars(
        select(CreditGrant)
        .where(
            CreditGrant.account_id == account_id,
            CreditGrant.source == "purchased",
            CreditGrant.id.not_in(from_top_ups),
        )
        .order_by(CreditGrant.effective_at.desc(), CreditGrant.id.desc())
        .limit(limit)
    ).all()
    entries = _entries(session, [g.id for g in grants])
    return [
        OtherPurchase(
            grant_id=g.id,
            description=g.description,
            credits_nanos=g.amount_nanos,
            cost_basis_cents=g.cost_basis_cents,
            effective_at=g.effective_at,
            ledger_entry_id=entries.get(g.id),
            created_by=g.created_by,
        )
        for g in grants
    ]


def saved_cards(session: Session, account_id: str, provider: str) -> list[Card]:
    """Cards saved for this account with this provider, newest first; the same card saved twice once."""
    rows = session.scalars(
        select(PaymentCard)
        .where(
            PaymentCard.account_id == account_id,
            PaymentCard.provider == provider,
            PaymentCard.removed_at.is_(None),
        )
        .order_by(PaymentCard.created_at.desc(), PaymentCard.id)
    )
    cards: dict[tuple[str, str, int | None, int | None], Card] = {}
    for c in rows:
        cards.setdefault(
            (c.brand, c.last4, c.exp_month, c.exp_year), Card(c.id, c.brand, c.last4, c.exp_month, c.exp_year)
        )
    return list(cards.values())


def month_start(at: datetime, timezone: str) -> datetime:
    """The start of ``at``'s calendar month in the account's time zone."""
    local = at.astimezone(ZoneInfo(timezone))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def auto_recharge_spent_cents(session: Session, account_id: str, *, since: datetime) -> int:
    """What auto-recharges cost since ``since`` (less refunds; failed and canceled ones cost nothing)."""
    total = session.scalar(
        select(func.coalesce(func.sum(TopUp.amount_cents - TopUp.refunded_cents), 0)).where(
            TopUp.account_id == account_id,
            TopUp.kind == "auto_recharge",
            TopUp.created_at >= since,
            TopUp.state.not_in((states.FAILED, states.CANCELED)),
        )
    )
    return int(total or 0)


def recharge_snapshot(
    session: Session,
    settings: AutoRecharge,
    account: Account,
    *,
    at: datetime,
    max_failures: int,
    limits: TopUpLimits | None = None,
) -> RechargeSnapshot:
    card_ok = settings.card_id is not None and (
        (card := session.get(PaymentCard, settings.card_id)) is not None
        and card.removed_at is None
        and card.account_id == account.id
    )
    return RechargeSnapshot(
        enabled=settings.enabled,
        threshold_nanos=settings.threshold_nanos,
        amount_cents=settings.amount_cents,
        monthly_max_cents=settings.monthly_max_cents,
        has_card=card_ok,
        in_flight=settings.in_flight_top_up_id is not None,
        failures=settings.failures,
        next_attempt_at=settings.next_attempt_at,
        balance_nanos=account.balance_nanos,
        month_spent_cents=auto_recharge_spent_cents(
            session, account.id, since=month_start(at, account.timezone)
        ),
        max_failures=max_failures,
        timezone=account.timezone,
        mode=settings.mode,
        target_nanos=settings.target_nanos,
        limits=limits or TopUpLimits(),
    )


@dataclass(frozen=True)
class AutoRechargeView:
    configured: bool
    enabled: bool
    threshold_nanos: int
    amount_cents: int
    monthly_max_cents: int
    card_id: str | None
    failures: int
    next_attempt_at: datetime | None
    month_spent_cents: int
    in_flight_top_up_id: int | None
    last_decision: str
    last_decision_at: datetime | None
    now: Decision  # what it would do right now, and why
    last_decision_code: str = ""  # e.g. "card_removed": removing its card turned it off
    card: Card | None = None  # the saved card it pays with (None once removed), named on the page
    mode: str = "fixed"  # fixed: buy amount_cents | target: bring the balance back to target_nanos
    target_nanos: int | None = None


def auto_recharge_view(
    session: Session, account_id: str, *, at: datetime, max_failures: int, limits: TopUpLimits | None = None
) -> AutoRechargeView:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    settings = session.get(AutoRecharge, account_id)
    if settings is None:
        return AutoRechargeView(
            configured=False,
            enabled=False,
            threshold_nanos=0,
            amount_cents=0,
            monthly_max_cents=0,
            card_id=None,
            failures=0,
            next_attempt_at=None,
            month_spent_cents=0,
            in_flight_top_up_id=None,
            last_decision="",
            last_decision_at=None,
            now=Decision(False, "off", "Auto-recharge is not set up."),
        )
    snapshot = recharge_snapshot(session, settings, account, at=at, max_failures=max_failures, limits=limits)
    return AutoRechargeView(
        configured=True,
        enabled=settings.enabled,
        threshold_nanos=settings.threshold_nanos,
        amount_cents=settings.amount_cents,
        monthly_max_cents=settings.monthly_max_cents,
        card_id=settings.card_id,
        failures=settings.failures,
        next_attempt_at=settings.next_attempt_at,
        month_spent_cents=snapshot.month_spent_cents,
        in_flight_top_up_id=settings.in_flight_top_up_id,
        last_decision=settings.last_decision,
        last_decision_at=settings.last_decision_at,
        now=decide(snapshot, at),
        last_decision_code=settings.last_decision_code,
        card=_card(session, settings.card_id, account_id),
        mode=settings.mode,
        target_nanos=settings.target_nanos,
    )


def _card(session: Session, card_id: str | None, account_id: str) -> Card | None:
    """The saved card ``card_id`` of the account as the page names it, or None if removed."""
    row = session.get(PaymentCard, card_id) if card_id else None
    if row is None or row.removed_at is not None or row.account_id != account_id:
        return None
    return Card(row.id, row.brand, row.last4, row.exp_month, row.exp_year)


def find_open_top_up(
    session: Session,
    *,
    account_id: str,
    created_by: str,
    kind: str,
    amount_cents: int,
    card_id: str | None = None,
    save_card: bool = False,
) -> TopUpView | None:
    """An open top-up this person already started with the same details (a second click, a reload)."""
    stmt = select(TopUp).where(
        TopUp.account_id == account_id,
        TopUp.created_by == created_by,
        TopUp.kind == kind,
        TopUp.amount_cents == amount_cents,
        TopUp.state.in_((states.CREATED, states.PENDING_PAYMENT)),
    )
    if kind == "saved_card":
        stmt = stmt.where(TopUp.payment_method_id == card_id)
    else:
        stmt = stmt.where(TopUp.save_card.is_(save_card))
    top_up = session.scalars(stmt.order_by(TopUp.id.desc()).limit(1)).first()
    return None if top_up is None else _view(top_up, None)
