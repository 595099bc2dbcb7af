"""Read views of the ledger for the portal and the API: plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Account, CreditGrant, LedgerEntry
from core.errors import NotFound
from core.ledger.engine import GrantBalance, burn_key
from core.ledger.reasons import REASON_LABELS, SOURCE_LABELS
from core.ledger.service import GrantView, _grant_view, deficit_nanos


@dataclass(frozen=True)
class BalanceView:
    """An account's balance and the grants it is made of, as of a moment."""

    account_id: str
    balance_nanos: int
    deficit_nanos: int  # zero or negative: usage no grant covered yet
    grants: list[GrantView]  # open grants (something left, not expired), in burn order
    as_of: datetime


@dataclass(frozen=True)
class LedgerLine:
    """One ledger entry, explained."""

    entry_id: int
    effective_at: datetime
    reason: str
    reason_label: str
    reference: str
    memo: str
    grant_id: int | None
    grant_label: str
    amount_nanos: int
    balance_after_nanos: int


def balance_view(session: Session, account_id: str, *, at: datetime) -> BalanceView:
    """Balance, deficit and open grants of ``account_id``."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    grants = session.scalars(
        select(CreditGrant).where(
            CreditGrant.account_id == account_id,
            CreditGrant.expired.is_(False),
            CreditGrant.remaining_nanos > 0,
        )
    ).all()
    ordered = sorted(
        grants,
        key=lambda g: burn_key(
            GrantBalance(g.id, g.priority, g.effective_at, g.expires_at, g.remaining_nanos)
        ),
    )
    return BalanceView(
        account_id=account_id,
        balance_nanos=account.balance_nanos,
        deficit_nanos=deficit_nanos(session, account_id),
        grants=[_grant_view(g) for g in ordered],
        as_of=at,
    )


def all_grants(session: Session, account_id: str) -> list[GrantView]:
    """Every grant of the account, newest first (spent and expired included)."""
    grants = session.scalars(
        select(CreditGrant).where(CreditGrant.account_id == account_id).order_by(CreditGrant.id.desc())
    ).all()
    return [_grant_view(g) for g in grants]


def grant_label(source: str, description: str, grant_id: int) -> str:
    label = SOURCE_LABELS.get(source, source.title())
    return f"{label} #{grant_id}" + (f" — {description}" if description else "")


def ledger_view(
    session: Session,
    account_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 5_000,
) -> list[LedgerLine]:
    """Ledger entries of the account, newest first, each with a label a customer understands."""
    stmt = (
        select(LedgerEntry, CreditGrant.source, CreditGrant.description)
        .outerjoin(CreditGrant, CreditGrant.id == LedgerEntry.grant_id)
        .where(LedgerEntry.account_id == account_id)
        .order_by(LedgerEntry.id.desc())
    )
    if since is not None:
        stmt = stmt.where(LedgerEntry.effective_at >= since)
    if until is not None:
        stmt = stmt.where(LedgerEntry.effective_at < until)
    if limit is not None:
        stmt = stmt.limit(limit)
    lines = []
    for entry, source, description in session.execute(stmt):
        lines.append(
            LedgerLine(
                entry_id=entry.id,
                effective_at=entry.effective_at,
                reason=entry.reason,
                reason_label=REASON_LABELS.get(entry.reason, entry.reason),
                reference=entry.reference,
                memo=entry.memo,
                grant_id=entry.grant_id,
                grant_label="Negative balance"
                if entry.grant_id is None
                else grant_label(source, description, entry.grant_id),
                amount_nanos=entry.amount_nanos,
                balance_after_nanos=entry.balance_after_nanos,
            )
        )
    return lines
