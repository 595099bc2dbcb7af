"""Build a month's statement from ledger entries: a pure function, and its loader.

``build_statement`` takes the month's entries (and what names them: the top-ups behind
purchased grants, the usage events behind usage batches) and partitions them into lines;
``statement`` reads those from the database in one snapshot the caller provides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import (
    Account,
    ArchivedEventTotal,
    CreditGrant,
    LedgerEntry,
    Meter,
    TopUp,
    UsageEvent,
)
from core.errors import NotFound
from core.ledger import reasons
from core.ledger.reasons import REASON_LABELS, SOURCE_LABELS
from core.statements.model import SECTIONS, Statement, StatementLine
from core.statements.months import StatementMonth, statement_month, statement_months
from core.usage.exports import plural


@dataclass(frozen=True)
class EntryFact:
    """What the statement needs of one ledger entry."""

    entry_id: int
    effective_at: datetime
    reason: str
    reference: str
    grant_id: int | None
    grant_source: str  # "" for an entry on the negative balance
    grant_description: str
    amount_nanos: int


@dataclass(frozen=True)
class PurchaseFact:
    """A purchased grant: the top-up that bought it (None: a contract or invoice) and what was paid."""

    grant_id: int
    top_up_id: int | None
    amount_cents: int | None


@dataclass(frozen=True)
class UsageFact:
    """Usage events of one batch, meter and model, summed (a batch may appear twice, when some of its
    events were archived: ``_usage_lines`` adds the facts up)."""

    batch_id: int
    meter: str
    unit: str
    model: str
    quantity: int
    amount_nanos: int


# reason -> (section, row_type, description)
ENTRY_LINES: dict[str, tuple[str, str, str]] = {
    reasons.GRANT_EXPIRED: ("expired", "expired", "Credits expired"),
    reasons.GRANT_REFUNDED: ("refunds", "refund", "Credits reversed: payment refunded"),
    reasons.DEBT_RESTORED: ("refunds", "refund", "Usage owed again: the payment that paid it was taken back"),
    reasons.GRANT_FROZEN: ("refunds", "dispute_hold", "Credits on hold: payment disputed"),
    reasons.GRANT_UNFROZEN: ("refunds", "dispute_release", "Held credits released: dispute closed"),
    reasons.DISPUTE_LOST: ("refunds", "dispute_lost", "Credits removed: dispute lost"),
    reasons.DISPUTE_APPEAL_WON: ("refunds", "dispute_won", "Credits restored: dispute won on appeal"),
    reasons.GRANT_VOIDED: ("adjustments", "adjustment", "Credits reversed"),
    reasons.ADJUSTMENT: ("adjustments", "adjustment", "Adjustment"),
    reasons.DEFICIT_REPAID: ("adjustments", "adjustment", "Negative balance paid off"),
}
SECTION_ORDER = {name: index for index, name in enumerate(SECTIONS)}


def _reference_id(reference: str, prefix: str) -> int | None:
    head, _, tail = reference.partition(":")
    return int(tail) if head == prefix and tail.isascii() and tail.isdigit() and len(tail) <= 18 else None


def _grant_reference(grant_id: int | None, purchases: Mapping[int, PurchaseFact]) -> str:
    if grant_id is None:
        return ""
    purchase = purchases.get(grant_id)
    if purchase is not None and purchase.top_up_id is not None:
        return f"Top-up #{purchase.top_up_id}"
    return f"Grant #{grant_id}"


def _issued_line(
    grant_id: int, first: EntryFact, amount: int, day: date, purchases: Mapping[int, PurchaseFact]
) -> StatementLine:
    source = first.grant_source
    if source == "purchased":
        purchase = purchases.get(grant_id)
        top_up = purchase.top_up_id if purchase else None
        return StatementLine(
            section="purchases",
            kind="purchase",
            day=day,
            description=f"Purchase, top-up #{top_up}"
            if top_up is not None
            else "Purchased credits (contract or invoice)"
            + (f": {first.grant_description}" if first.grant_description else ""),
            reference=f"Top-up #{top_up}" if top_up is not None else f"Grant #{grant_id}",
            amount_nanos=amount,
            amount_cents=purchase.amount_cents if purchase else None,
        )
    label = SOURCE_LABELS.get(source, source.title() or "Other")
    return StatementLine(
        section="grants",
        kind=f"{source}_grant" if source in SOURCE_LABELS else "grant",
        day=day,
        description=f"{label} credits" + (f": {first.grant_description}" if first.grant_description else ""),
        reference=f"Grant #{grant_id}",
        amount_nanos=amount,
    )


def _entry_lines(
    entries: Sequence[EntryFact], purchases: Mapping[int, PurchaseFact], timezone: str
) -> list[StatementLine]:
    """Every entry but usage, grouped by reason and the grant it references."""
    zone = ZoneInfo(timezone)
    groups: dict[tuple[str, str], list[EntryFact]] = defaultdict(list)
    for entry in entries:
        groups[(entry.reason, entry.reference or f"entry:{entry.entry_id}")].append(entry)
    lines = []
    for (reason, reference), members in groups.items():
        amount = sum(entry.amount_nanos for entry in members)
        if amount == 0:
            continue  # a move within the balance (a grant paying off a negative balance): nets to nothing
        first = min(members, key=lambda entry: (entry.effective_at, entry.entry_id))
        day = first.effective_at.astimezone(zone).date()
        grant_id = _reference_id(reference, "grant")
        if grant_id is None:
            grant_id = first.grant_id
        if reason == reasons.GRANT_ISSUED and grant_id is not None:
            lines.append(_issued_line(grant_id, first, amount, day, purchases))
            continue
        section, kind, description = ENTRY_LINES.get(
            reason, ("adjustments", "adjustment", REASON_LABELS.get(reason, reason))
        )
        if reason == reasons.GRANT_EXPIRED:
            source = next((e.grant_source for e in members if e.grant_source), "")
            if source:
                description = f"{SOURCE_LABELS.get(source, source.title())} credits expired"
        lines.append(
            StatementLine(
                section=section,
                kind=kind,
                day=day,
                description=description,
                reference=_grant_reference(grant_id, purchases) or reference,
                amount_nanos=amount,
            )
        )
    return lines


def _usage_lines(entries: Sequence[EntryFact], usage: Iterable[UsageFact]) -> list[StatementLine]:
    """Usage by meter and model: the events of the batches the month's usage entries charged."""
    charged: dict[int, int] = defaultdict(int)  # batch id -> credits the ledger took for it (positive)
    unmatched = 0
    for entry in entries:
        batch_id = _reference_id(entry.reference, "batch")
        if batch_id is None:
            unmatched -= entry.amount_nanos
        else:
            charged[batch_id] -= entry.amount_nanos
    totals: dict[tuple[str, str], list[int]] = {}
    units: dict[str, str] = {}
    for fact in usage:
        if fact.batch_id not in charged:
            continue
        total = totals.setdefault((fact.meter, fact.model), [0, 0])
        total[0] += fact.quantity
        total[1] += fact.amount_nanos
        units[fact.meter] = fact.unit
    lines = [
        StatementLine(
            section="usage",
            kind="usage",
            day=None,
            description=meter,
            reference=model or "(no model)",
            amount_nanos=-amount,
            quantity=quantity,
            unit=plural(units[meter], quantity),
        )
        for (meter, model), (quantity, amount) in sorted(totals.items())
    ]
    # The ledger decides what was charged: whatever the events do not explain is shown as such.
    rest = sum(charged.values()) + unmatched - sum(amount for _, amount in totals.values())
    if rest:
        lines.append(
            StatementLine(
                section="usage",
                kind="usage",
                day=None,
                description="Usage not itemised by meter",
                reference="",
                amount_nanos=-rest,
            )
        )
    return lines


def build_statement(
    *,
    account_id: str,
    account_name: str,
    month: StatementMonth,
    issued_at: datetime,
    opening_nanos: int,
    entries: Sequence[EntryFact],
    purchases: Mapping[int, PurchaseFact],
    usage: Iterable[UsageFact],
) -> Statement:
    """The statement of ``month`` from its entries (those effective in ``[month.start, month.end)``)."""
    usage_entries = [entry for entry in entries if entry.reason == reasons.USAGE]
    other_entries = [entry for entry in entries if entry.reason != reasons.USAGE]
    lines = _entry_lines(other_entries, purchases, month.timezone) + _usage_lines(usage_entries, usage)
    lines.sort(
        key=lambda line: (
            SECTION_ORDER.get(line.section, len(SECTION_ORDER)),
            line.day or month.first_day,
            line.reference,
            line.description,
        )
    )
    closing = opening_nanos + sum(entry.amount_nanos for entry in entries)
    built = Statement(
        account_id=account_id,
        account_name=account_name,
        timezone=month.timezone,
        month=month,
        issued_at=issued_at,
        closed=month.is_closed(issued_at),
        opening_nanos=opening_nanos,
        closing_nanos=closing,
        lines=tuple(lines),
    )
    assert built.balanced, "a statement's lines partition its month's entries"
    return built


def _entries(session: Session, account_id: str, month: StatementMonth) -> list[EntryFact]:
    rows = session.execute(
        select(LedgerEntry, CreditGrant.source, CreditGrant.description)
        .outerjoin(CreditGrant, CreditGrant.id == LedgerEntry.grant_id)
        .where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.effective_at >= month.start,
            LedgerEntry.effective_at < month.end,
        )
        .order_by(LedgerEntry.id)
    )
    return [
        EntryFact(
            entry_id=entry.id,
            effective_at=entry.effective_at,
            reason=entry.reason,
            reference=entry.reference,
            grant_id=entry.grant_id,
            grant_source=source or "",
            grant_description=description or "",
            amount_nanos=entry.amount_nanos,
        )
        for entry, source, description in rows
    ]


def _purchases(session: Session, account_id: str, entries: Sequence[EntryFact]) -> dict[int, PurchaseFact]:
    grant_ids = {e.grant_id for e in entries if e.grant_id is not None}
    grant_ids |= {g for e in entries if (g := _reference_id(e.reference, "grant")) is not None}
    if not grant_ids:
        return {}
    grants = session.execute(
        select(CreditGrant.id, CreditGrant.cost_basis_cents).where(
            CreditGrant.account_id == account_id,
            CreditGrant.source == "purchased",
            CreditGrant.id.in_(sorted(grant_ids)),
        )
    ).all()
    top_ups = dict(
        session.execute(
            select(TopUp.grant_id, TopUp.id).where(
                TopUp.account_id == account_id, TopUp.grant_id.in_([g for g, _ in grants])
            )
        ).all()
    )
    amounts = dict(
        session.execute(
            select(TopUp.id, TopUp.amount_cents).where(TopUp.id.in_(list(top_ups.values())))
        ).all()
    )
    return {
        int(grant_id): PurchaseFact(
            int(grant_id),
            top_ups.get(grant_id),
            amounts[top_ups[grant_id]] if grant_id in top_ups else cost_basis,
        )
        for grant_id, cost_basis in grants
    }


def _usage(session: Session, account_id: str, entries: Sequence[EntryFact]) -> list[UsageFact]:
    batches = {b for e in entries if e.reason == reasons.USAGE and (b := _reference_id(e.reference, "batch"))}
    if not batches:
        return []
    # One range query (batch ids grow with time), kept to the month's batches in Python.
    rows = session.execute(
        select(
            UsageEvent.batch_id,
            UsageEvent.meter_id,
            UsageEvent.model,
            func.sum(UsageEvent.quantity),
            func.sum(UsageEvent.amount_nanos),
        )
        .where(
            UsageEvent.account_id == account_id,
            UsageEvent.batch_id >= min(batches),
            UsageEvent.batch_id <= max(batches),
        )
        .group_by(UsageEvent.batch_id, UsageEvent.meter_id, UsageEvent.model)
    ).all()
    # Events of archived months: their totals per batch, meter and model (core.usage.archive).
    archived = ArchivedEventTotal
    rows += session.execute(
        select(
            archived.batch_id,
            archived.meter_id,
            archived.model,
            func.sum(archived.quantity),
            func.sum(archived.amount_nanos),
        )
        .where(
            archived.account_id == account_id,
            archived.batch_id >= min(batches),
            archived.batch_id <= max(batches),
        )
        .group_by(archived.batch_id, archived.meter_id, archived.model)
    ).all()
    meters = {m.id: m for m in session.scalars(select(Meter))}
    facts = []
    for batch_id, meter_id, model, quantity, amount in rows:
        if batch_id not in batches:
            continue
        meter = meters.get(meter_id)
        name = (meter.display_name or meter.name) if meter else f"Meter {meter_id}"
        facts.append(
            UsageFact(
                int(batch_id), name, meter.unit if meter else "unit", model or "", int(quantity), int(amount)
            )
        )
    return facts


def statement(session: Session, account_id: str, month_key: object, *, at: datetime) -> Statement:
    """The statement of ``account_id`` for ``month_key`` ("2026-11", the account's clock) as of ``at``.

    Read it in one snapshot (``core.usage.focus.focus_snapshot``) so its queries agree.
    """
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    month = statement_month(month_key, account.timezone, at=at)
    opening = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_nanos), 0)).where(
            LedgerEntry.account_id == account_id, LedgerEntry.effective_at < month.start
        )
    )
    entries = _entries(session, account_id, month)
    return build_statement(
        account_id=account_id,
        account_name=account.name,
        month=month,
        issued_at=at,
        opening_nanos=int(opening or 0),
        entries=entries,
        purchases=_purchases(session, account_id, entries),
        usage=_usage(session, account_id, entries),
    )


def account_statement_months(session: Session, account_id: str, *, at: datetime) -> list[StatementMonth]:
    """The months an account has statements for, newest first: from its first entry (or its
    creation, if earlier) to this month, which is month to date."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    first_entry = session.scalar(
        select(func.min(LedgerEntry.effective_at)).where(LedgerEntry.account_id == account_id)
    )
    since = min(account.created_at, first_entry) if first_entry is not None else account.created_at
    return statement_months(account.timezone, since=min(since, at), at=at)
