"""Ledger entries grouped into the events a customer recognises (pure: no database).

One event is what happened at one moment for one reason: a usage batch that burned two
grants is one "Usage" event of the batch's total, with the grants in its details; a grant
that paid off a negative balance is one "Credits added" event (the +X / -X pair of the
payoff nets to zero and moves into the details). The ledger itself stays one entry per
grant movement; this is only how it reads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from core.display import format_credits
from core.ledger import reasons
from core.ledger.views import LedgerLine

# Reasons that belong to the event of the grant that caused them.
_FOLDED_INTO_GRANT = {reasons.GRANT_ISSUED: "grant", reasons.DEFICIT_REPAID: "grant"}
_REFERENCE = re.compile(r"^(?P<kind>[a-z_]+):(?P<id>.+)$")
REFERENCE_WORDS = {
    "batch": "Usage batch",
    "grant": "Grant",
    "top_up": "Top-up",
    "topup": "Top-up",
    "payment": "Payment",
    "refund": "Refund",
    "dispute": "Dispute",
    "support": "Support action",
}


def readable_reference(reference: str) -> str:
    """ "batch:364" → "Usage batch 364", "grant:12" → "Grant #12"; anything else as it is."""
    match = _REFERENCE.match(reference or "")
    if not match:
        return reference
    kind, ident = match["kind"], match["id"]
    words = REFERENCE_WORDS.get(kind)
    if words is None:
        return reference
    return f"{words} #{ident}" if kind == "grant" else f"{words} {ident}"


@dataclass(frozen=True)
class LedgerEvent:
    """Entries of one event, newest event first in ``ledger_events``."""

    event_id: int  # the id of its first entry: stable, and orders events as the ledger does
    effective_at: datetime
    reason: str
    label: str  # what happened, in the customer's words
    reference: str  # raw, e.g. "batch:364"
    reference_label: str  # e.g. "Usage batch 364"
    change_nanos: int  # what the event did to the balance
    balance_after_nanos: int
    details: str  # the grants it touched, and a payoff, in one line
    entries: tuple[LedgerLine, ...]  # oldest first


def _key(line: LedgerLine) -> tuple[str, datetime, str]:
    family = _FOLDED_INTO_GRANT.get(line.reason, line.reason)
    return (line.reference or f"entry:{line.entry_id}", line.effective_at, family)


def _details(entries: Sequence[LedgerLine]) -> str:
    granted = [e for e in entries if e.reason == reasons.GRANT_ISSUED]
    paid_off = sum(
        e.amount_nanos for e in entries if e.reason == reasons.DEFICIT_REPAID and e.grant_id is None
    )
    parts: list[str] = []
    if granted:
        parts.append(", ".join(e.grant_label for e in granted))
        if paid_off:
            parts.append(f"{format_credits(paid_off)} of it paid off the negative balance")
        return "; ".join(parts)
    by_grant: dict[str, int] = {}
    for entry in entries:
        by_grant[entry.grant_label] = by_grant.get(entry.grant_label, 0) + entry.amount_nanos
    if len(by_grant) == 1:
        return next(iter(by_grant))
    return "; ".join(f"{label}: {format_credits(amount)}" for label, amount in by_grant.items())


def ledger_events(lines: Sequence[LedgerLine]) -> list[LedgerEvent]:
    """Group ledger lines (any order) into events, newest first."""
    groups: dict[tuple[str, datetime, str], list[LedgerLine]] = {}
    for line in sorted(lines, key=lambda item: item.entry_id):
        groups.setdefault(_key(line), []).append(line)
    events = []
    for entries in groups.values():
        first, last = entries[0], entries[-1]
        granted = next((e for e in entries if e.reason == reasons.GRANT_ISSUED), None)
        lead = granted or first
        label = lead.reason_label
        paid_off = sum(
            e.amount_nanos for e in entries if e.reason == reasons.DEFICIT_REPAID and e.grant_id is None
        )
        if granted is not None and paid_off:
            label = f"{label}, {format_credits(paid_off)} of them paying off the negative balance"
        events.append(
            LedgerEvent(
                event_id=first.entry_id,
                effective_at=first.effective_at,
                reason=lead.reason,
                label=label,
                reference=first.reference,
                reference_label=readable_reference(first.reference),
                change_nanos=sum(e.amount_nanos for e in entries),
                balance_after_nanos=last.balance_after_nanos,
                details=_details(entries),
                entries=tuple(entries),
            )
        )
    return sorted(events, key=lambda event: event.event_id, reverse=True)
