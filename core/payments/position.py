"""A top-up's target ledger position, derived from its payment facts. Pure: no I/O, no clock.

Settlement works like the usage burn-down (``core.ledger.engine``): the handlers record
what the provider said as facts (``core.payments.facts``), this module computes where the
top-up's credits should stand given those facts and where they stand now, and one poster
(``core.payments.settle.settle_top_up``) moves the ledger by the difference under the
top-up's lock. Facts merge by commutative rules (a larger refunded total wins; a dispute's
latest version wins), so any order or repetition of the same facts gives the same target.

The position has four buckets, each the sum of the ledger entries of one reason that
reference the top-up's grant:

- ``refunded``: credits taken back because the payment was refunded (only grows);
- ``lost``: credits taken back because a dispute was lost (shrinks if an appeal is won);
- ``held``: credits on hold while a dispute is open (never more than the disputed amount);
- ``debt_reclaimed``: what the purchase had paid off a negative balance and a refund or a
  lost dispute put back (the payment that paid for that usage is gone).

Credits the customer already used cannot come back: the refunded or lost part beyond what
the grant still holds (plus what it paid off a debt) stays spent, and support is told.
Amounts in credits are proportional to cents: ``credits_for`` rounds half to even, so a
whole refund is exactly the whole purchase.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.money import div_round_half_even

# Dispute statuses (Stripe API 2026-10-28.endive). A dispute in any other status (a new one
# Stripe adds) is treated as open: its credits stay held until a person or a later status says.
DISPUTE_LOST = frozenset({"lost"})
DISPUTE_CLOSED_IN_OUR_FAVOUR = frozenset({"won", "warning_closed", "prevented"})
DISPUTE_OPEN_KNOWN = frozenset(
    {
        "warning_needs_response",
        "warning_under_review",
        "needs_response",
        "under_review",
        "appeal_needs_response",  # lost, and the merchant is appealing: not final either way
        "appeal_under_review",
    }
)


def dispute_outcome(status: str) -> str:
    """``"open"``, ``"lost"`` or ``"won"`` (no money lost) for a provider's dispute status."""
    if status in DISPUTE_LOST:
        return "lost"
    if status in DISPUTE_CLOSED_IN_OUR_FAVOUR:
        return "won"
    return "open"


def _status_rank(status: str) -> int:
    """Tie-break between two versions of a dispute seen at the same second: a final word wins."""
    outcome = dispute_outcome(status)
    return {"open": 0, "won": 1, "lost": 2}[outcome]


@dataclass(frozen=True)
class DisputeFact:
    """One dispute of the payment, as its latest known version says."""

    dispute_id: str
    amount_cents: int
    status: str
    as_of: int  # when the provider made this version (the event's ``created``, unix seconds)

    def newer_than(self, other: DisputeFact) -> bool:
        mine = (self.as_of, _status_rank(self.status), self.status, self.amount_cents)
        theirs = (other.as_of, _status_rank(other.status), other.status, other.amount_cents)
        return mine > theirs


def merge_dispute(known: DisputeFact | None, seen: DisputeFact) -> DisputeFact:
    """The version to keep: the newer one (commutative and idempotent)."""
    if known is None or seen.newer_than(known):
        return seen
    return known


@dataclass(frozen=True)
class PaymentFacts:
    """What the provider told us about one top-up's payment, merged."""

    paid_cents: int | None = None  # None: no success known
    paid_currency: str = ""
    refunded_cents: int = 0  # cumulative, as the provider counts it
    disputes: tuple[DisputeFact, ...] = ()
    credit_anyway: bool = False  # support decided to credit a payment that did not match


@dataclass(frozen=True)
class Terms:
    """What the customer bought."""

    amount_cents: int
    currency: str
    credits_nanos: int

    def credits_for(self, cents: int) -> int:
        """The credits ``cents`` of this purchase bought (half to even; all of it for the whole)."""
        cents = max(0, min(cents, self.amount_cents))
        return div_round_half_even(self.credits_nanos * cents, self.amount_cents)


@dataclass(frozen=True)
class Position:
    """Where the top-up's grant stands in the ledger now (all amounts ≥ 0)."""

    remaining_nanos: int  # what the grant still holds (usage may burn it)
    refunded_nanos: int = 0
    lost_nanos: int = 0
    held_nanos: int = 0
    debt_repaid_nanos: int = 0  # what the grant paid off negative balances
    debt_reclaimed_nanos: int = 0

    @property
    def reachable_nanos(self) -> int:
        """The grant's credits usage has not burned: what settlement can still move."""
        return self.remaining_nanos + self.refunded_nanos + self.lost_nanos + self.held_nanos


@dataclass(frozen=True)
class Target:
    refunded_nanos: int
    lost_nanos: int
    held_nanos: int
    debt_reclaimed_nanos: int
    spent_nanos: int  # refunded or lost credits that were used already and stay used


def should_grant(terms: Terms, facts: PaymentFacts) -> bool:
    """A success of exactly the price (or support's decision) grants the credits."""
    if facts.paid_cents is None:
        return False
    matches = facts.paid_cents == terms.amount_cents and facts.paid_currency == terms.currency
    return matches or facts.credit_anyway


def dispute_cents(facts: PaymentFacts) -> tuple[int, int]:
    """(lost, open) cents over all disputes."""
    lost = sum(d.amount_cents for d in facts.disputes if dispute_outcome(d.status) == "lost")
    still_open = sum(d.amount_cents for d in facts.disputes if dispute_outcome(d.status) == "open")
    return lost, still_open


def target_position(terms: Terms, facts: PaymentFacts, now: Position) -> Target:
    """Where the grant's credits should stand, given the facts and what usage left of them.

    Refunds come first, then lost disputes, then holds for open ones; each is bounded by
    the purchase (never more than the amount paid comes back in all) and by what the grant
    still has. What a refund or loss cannot take from the grant comes back from the
    negative balance the purchase paid off; the rest was used and stays used.
    """
    refunded_cents = min(facts.refunded_cents, terms.amount_cents)
    lost_cents, open_cents = dispute_cents(facts)
    lost_cents = min(lost_cents, terms.amount_cents - refunded_cents)
    open_cents = min(open_cents, terms.amount_cents - refunded_cents - lost_cents)
    want_refunded = terms.credits_for(refunded_cents)
    want_taken = terms.credits_for(refunded_cents + lost_cents)
    want_all = terms.credits_for(refunded_cents + lost_cents + open_cents)

    reachable = now.reachable_nanos
    refunded = max(min(want_refunded, reachable), now.refunded_nanos)  # a refund is never undone
    lost = max(0, min(want_taken - refunded, reachable - refunded))
    held = max(0, min(want_all - want_taken, reachable - refunded - lost))
    short = max(0, want_taken - refunded - lost)  # taken back but not in the grant any more
    debt_reclaimed = min(short, now.debt_repaid_nanos)
    return Target(
        refunded_nanos=refunded,
        lost_nanos=lost,
        held_nanos=held,
        debt_reclaimed_nanos=debt_reclaimed,
        spent_nanos=short - debt_reclaimed,
    )


def merge_disputes(seen: Iterable[DisputeFact]) -> tuple[DisputeFact, ...]:
    """One version per dispute id (the newest), in id order."""
    by_id: dict[str, DisputeFact] = {}
    for fact in seen:
        by_id[fact.dispute_id] = merge_dispute(by_id.get(fact.dispute_id), fact)
    return tuple(by_id[key] for key in sorted(by_id))
