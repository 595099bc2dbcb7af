"""The credit roll-forward: a month of prepaid credits in dollars at cost basis, per account.

Purchased credits are money the company holds for the customer (deferred revenue). For one
calendar month (UTC) and each account::

    opening_deferred + purchased - recognized - breakage - refunded = closing_deferred

- **purchased**: purchased grants issued in the month, at what the customer paid.
- **recognized**: purchased credits consumed: usage the grant paid for, and a negative
  balance (overdraft) it paid off. Usage no grant covered is not revenue until a grant pays
  it off (``deficit_repaid``); a purchase that paid off usage and was then refunded or lost
  in a dispute reverses that revenue (``debt_restored``: the usage is owed again).
- **breakage**: purchased credits that expired, or that support reversed without a refund.
- **refunded**: purchased credits taken back because the payment was refunded or lost in a
  dispute, and those held while a dispute is open (a release or an appeal won counts back).

The ledger already records which grant each debit drew from (the burn order of
``core.ledger.engine`` chose it when the usage was posted), so nothing is re-allocated here:
each entry is read on the grant it moved. A grant's credits are valued at its own price,
``cost_basis_cents / amount_nanos`` (a grant without a cost basis at face value, 1 credit =
$1.00): the deferred value of a grant holding ``r`` nanos is ``r x price``, rounded half-even
to a nano-dollar. Purchases, breakage and refunds are valued the same way and recognised
revenue is what balances the grant's month, so the identity is exact, each month's closing
is the next month's opening, and the current month closes at the ledger's purchased
remainder valued at cost. At today's price (1 credit = $1.00) nothing rounds.

Promotional and goodwill credits carry no revenue: they are counted in credits, apart.

Money figures are integers of nano-dollars (``*_usd_nanos``, 10**-9 USD); promotional
figures nano-credits. ``core.finance.report`` writes them as exact decimal strings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import CreditGrant, LedgerEntry
from core.ledger import reasons
from core.money import div_round_half_even
from core.usage.focus import parse_month
from core.usage.focus_charges import Month

USD_NANOS_PER_CENT = 10**7  # one cent in nano-dollars
PURCHASED = "purchased"

# How each reason of an entry on a purchased grant moves deferred revenue.
PURCHASED_COLUMN: dict[str, str] = {
    reasons.GRANT_ISSUED: "purchased",
    reasons.USAGE: "recognized",
    reasons.DEFICIT_REPAID: "recognized",
    reasons.ADJUSTMENT: "recognized",
    reasons.GRANT_EXPIRED: "breakage",
    reasons.GRANT_VOIDED: "breakage",
    reasons.GRANT_REFUNDED: "refunded",
    reasons.GRANT_FROZEN: "refunded",
    reasons.GRANT_UNFROZEN: "refunded",
    reasons.DISPUTE_LOST: "refunded",
    reasons.DISPUTE_APPEAL_WON: "refunded",
}
# How each reason of an entry on a promotional or goodwill grant counts.
PROMOTIONAL_COLUMN: dict[str, str] = {
    reasons.GRANT_ISSUED: "granted",
    reasons.USAGE: "consumed",
    reasons.DEFICIT_REPAID: "consumed",
    reasons.ADJUSTMENT: "consumed",
    reasons.GRANT_EXPIRED: "expired",
    reasons.GRANT_VOIDED: "expired",
}


@dataclass(frozen=True)
class GrantTerms:
    """What the roll-forward needs of a grant: whose, which kind, and its price."""

    grant_id: int
    account_id: str
    source: str
    amount_nanos: int
    cost_basis_cents: int | None

    @property
    def purchased(self) -> bool:
        return self.source == PURCHASED

    def value_usd_nanos(self, credit_nanos: int) -> int:
        """``credit_nanos`` of this grant at its cost basis, in nano-dollars (half-even)."""
        if self.cost_basis_cents is None or self.amount_nanos <= 0:
            return credit_nanos  # face value: 1 credit = $1.00, so a nano-credit is a nano-dollar
        return div_round_half_even(
            credit_nanos * self.cost_basis_cents * USD_NANOS_PER_CENT, self.amount_nanos
        )


@dataclass(frozen=True)
class GrantMonth:
    """A grant's ledger over one month: what it held at the start, and its entries by reason."""

    opening_nanos: int
    moves_nanos: Mapping[str, int]  # reason -> signed sum of the month's entries on the grant
    debt_restored_nanos: int = 0  # signed sum of the month's ``debt_restored`` entries referencing it


@dataclass(frozen=True)
class RollforwardLine:
    """One account's month (or the total). Money in nano-dollars, promotional in nano-credits."""

    account_id: str
    opening_deferred_usd_nanos: int = 0
    purchased_usd_nanos: int = 0
    recognized_usd_nanos: int = 0
    breakage_usd_nanos: int = 0
    refunded_usd_nanos: int = 0
    closing_deferred_usd_nanos: int = 0
    promotional_granted_nanos: int = 0
    promotional_consumed_nanos: int = 0
    promotional_expired_nanos: int = 0

    @property
    def identity_holds(self) -> bool:
        """opening + purchased - recognized - breakage - refunded == closing."""
        moved = self.purchased_usd_nanos - self.recognized_usd_nanos - self.breakage_usd_nanos
        return (
            self.opening_deferred_usd_nanos + moved - self.refunded_usd_nanos
            == self.closing_deferred_usd_nanos
        )

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, f.name) == 0 for f in fields(self) if f.name != "account_id")

    def plus(self, other: RollforwardLine, account_id: str | None = None) -> RollforwardLine:
        sums = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "account_id"
        }
        return RollforwardLine(account_id=self.account_id if account_id is None else account_id, **sums)


TOTAL = "total"


@dataclass(frozen=True)
class Rollforward:
    """The month's roll-forward: a line per account with anything to say, and the total."""

    month: Month
    lines: tuple[RollforwardLine, ...]
    totals: RollforwardLine

    @property
    def identity_holds(self) -> bool:
        return self.totals.identity_holds and all(line.identity_holds for line in self.lines)


def grant_line(terms: GrantTerms, month: GrantMonth) -> RollforwardLine:
    """One grant's contribution to its account's line (pure)."""
    moves = month.moves_nanos
    if not terms.purchased:
        by_column: dict[str, int] = defaultdict(int)
        for reason, amount in moves.items():
            by_column[PROMOTIONAL_COLUMN.get(reason, "consumed")] += amount
        return RollforwardLine(
            account_id=terms.account_id,
            promotional_granted_nanos=by_column["granted"],
            promotional_consumed_nanos=-by_column["consumed"],
            promotional_expired_nanos=-by_column["expired"],
        )
    closing_nanos = month.opening_nanos + sum(moves.values())
    opening = terms.value_usd_nanos(month.opening_nanos)
    closing = terms.value_usd_nanos(closing_nanos)
    flows: dict[str, int] = defaultdict(int)
    for reason, amount in moves.items():
        flows[PURCHASED_COLUMN.get(reason, "recognized")] += amount
    purchased = terms.value_usd_nanos(flows["purchased"])
    breakage = -terms.value_usd_nanos(flows["breakage"])
    refunded = -terms.value_usd_nanos(flows["refunded"])
    # What the grant paid off a negative balance and then lost with its payment: revenue reversed.
    restored = -terms.value_usd_nanos(month.debt_restored_nanos)
    refunded += restored
    # Recognised revenue balances the grant's month: exact at 1 credit = $1.00, and within a
    # nano-dollar per reason of the entries' own value when a purchase had another price.
    recognized = opening + purchased - breakage - refunded - closing
    return RollforwardLine(
        account_id=terms.account_id,
        opening_deferred_usd_nanos=opening,
        purchased_usd_nanos=purchased,
        recognized_usd_nanos=recognized,
        breakage_usd_nanos=breakage,
        refunded_usd_nanos=refunded,
        closing_deferred_usd_nanos=closing,
    )


def build_rollforward(
    month: Month,
    grants: Iterable[GrantTerms],
    months: Mapping[int, GrantMonth],
    account_ids: Iterable[str] = (),
) -> Rollforward:
    """The roll-forward from each grant's month (pure). Accounts with nothing to say are left out,
    except those named in ``account_ids``."""
    lines: dict[str, RollforwardLine] = {
        account_id: RollforwardLine(account_id) for account_id in account_ids
    }
    for terms in grants:
        grant_month = months.get(terms.grant_id)
        if grant_month is None:
            continue
        line = grant_line(terms, grant_month)
        lines[terms.account_id] = lines.get(terms.account_id, RollforwardLine(terms.account_id)).plus(line)
    named = set(account_ids)
    kept = tuple(
        lines[account_id]
        for account_id in sorted(lines)
        if account_id in named or not lines[account_id].is_empty
    )
    totals = RollforwardLine(TOTAL)
    for line in kept:
        totals = totals.plus(line, TOTAL)
    return Rollforward(month=month, lines=kept, totals=totals)


def _grant_terms(session: Session, before: datetime) -> list[GrantTerms]:
    rows = session.execute(
        select(
            CreditGrant.id,
            CreditGrant.account_id,
            CreditGrant.source,
            CreditGrant.amount_nanos,
            CreditGrant.cost_basis_cents,
        )
        .where(CreditGrant.effective_at < before)
        .order_by(CreditGrant.id)
    )
    return [GrantTerms(g, a, s, int(n), None if c is None else int(c)) for g, a, s, n, c in rows]


def _grant_months(session: Session, month: Month) -> dict[int, GrantMonth]:
    """Each grant's month, in two aggregate queries over the ledger (by the entries' effective time)."""
    in_month = (LedgerEntry.effective_at >= month.start) & (LedgerEntry.effective_at < month.end)
    opening_rows = session.execute(
        select(LedgerEntry.grant_id, func.sum(LedgerEntry.amount_nanos))
        .where(LedgerEntry.grant_id.is_not(None), LedgerEntry.effective_at < month.start)
        .group_by(LedgerEntry.grant_id)
    )
    opening = {int(grant_id): int(total or 0) for grant_id, total in opening_rows}
    move_rows = session.execute(
        select(LedgerEntry.grant_id, LedgerEntry.reason, func.sum(LedgerEntry.amount_nanos))
        .where(LedgerEntry.grant_id.is_not(None), in_month)
        .group_by(LedgerEntry.grant_id, LedgerEntry.reason)
    )
    moves: dict[int, dict[str, int]] = defaultdict(dict)
    for grant_id, reason, total in move_rows:
        moves[int(grant_id)][reason] = int(total or 0)
    # ``debt_restored`` sits on the account's negative balance and names its grant in the reference.
    restored_rows = session.execute(
        select(LedgerEntry.reference, func.sum(LedgerEntry.amount_nanos))
        .where(LedgerEntry.grant_id.is_(None), LedgerEntry.reason == reasons.DEBT_RESTORED, in_month)
        .group_by(LedgerEntry.reference)
    )
    restored: dict[int, int] = {}
    for reference, total in restored_rows:
        kind, _, number = str(reference).partition(":")
        if kind == "grant" and number.isdigit():
            restored[int(number)] = restored.get(int(number), 0) + int(total or 0)
    grant_ids = set(opening) | set(moves) | set(restored)
    return {
        grant_id: GrantMonth(opening.get(grant_id, 0), moves.get(grant_id, {}), restored.get(grant_id, 0))
        for grant_id in grant_ids
    }


def credit_rollforward(session: Session, month: str | Month) -> Rollforward:
    """The roll-forward of ``month`` ("YYYY-MM", UTC) as the ledger has it now.

    Read it in one snapshot (``core.usage.focus.focus_snapshot``): its queries must agree.
    A bad month is a ValidationError naming ``month``.
    """
    chosen = month if isinstance(month, Month) else parse_month(month)
    return build_rollforward(chosen, _grant_terms(session, chosen.end), _grant_months(session, chosen))


def deferred_now_usd_nanos(session: Session) -> dict[str, int]:
    """Each account's purchased credits as the ledger holds them now (grants' remaining amounts),
    valued at cost basis: what the current month's roll-forward must close at."""
    rows = session.execute(
        select(
            CreditGrant.id,
            CreditGrant.account_id,
            CreditGrant.source,
            CreditGrant.amount_nanos,
            CreditGrant.cost_basis_cents,
            CreditGrant.remaining_nanos,
        ).where(CreditGrant.source == PURCHASED, CreditGrant.remaining_nanos != 0)
    )
    totals: dict[str, int] = defaultdict(int)
    for grant_id, account_id, source, amount, cost, remaining in rows:
        terms = GrantTerms(grant_id, account_id, source, int(amount), None if cost is None else int(cost))
        totals[account_id] += terms.value_usd_nanos(int(remaining))
    return dict(totals)


__all__ = [
    "GrantMonth",
    "GrantTerms",
    "Rollforward",
    "RollforwardLine",
    "build_rollforward",
    "credit_rollforward",
    "deferred_now_usd_nanos",
    "grant_line",
]
