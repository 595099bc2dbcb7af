"""Pure burn-down: which grants pay for an amount of usage. No I/O in here.

Burn order is fixed: lowest ``priority`` first, then the soonest expiry (grants that
never expire last), then the oldest, then the lowest id. What no grant covers goes
to the account's *deficit* (a posting with ``grant_id`` None): the balance turns
negative, and the next grant pays the deficit off first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class GrantBalance:
    """What the engine needs to know of a grant."""

    grant_id: int
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    remaining_nanos: int


@dataclass(frozen=True)
class Posting:
    """One signed movement of credits on a grant (or on the deficit when ``grant_id`` is None)."""

    grant_id: int | None
    amount_nanos: int


def burn_key(grant: GrantBalance) -> tuple[int, int, datetime, datetime, int]:
    """Sort key that puts grants in burn order."""
    never = grant.expires_at is None
    expiry = grant.effective_at if grant.expires_at is None else grant.expires_at
    return (grant.priority, int(never), expiry, grant.effective_at, grant.grant_id)


def is_burnable(grant: GrantBalance, at: datetime) -> bool:
    """A grant can pay at ``at`` when it is in effect, not expired and not empty."""
    if grant.remaining_nanos <= 0 or grant.effective_at > at:
        return False
    return grant.expires_at is None or grant.expires_at > at


def plan_usage_burn(grants: Iterable[GrantBalance], amount_nanos: int, at: datetime) -> list[Posting]:
    """Postings that pay ``amount_nanos`` of usage at ``at`` (all negative; sum = -amount)."""
    if amount_nanos < 0:
        raise ValueError("usage amount cannot be negative")
    postings: list[Posting] = []
    left = amount_nanos
    for grant in sorted((g for g in grants if is_burnable(g, at)), key=burn_key):
        if left == 0:
            break
        take = min(grant.remaining_nanos, left)
        postings.append(Posting(grant.grant_id, -take))
        left -= take
    if left > 0:
        postings.append(Posting(None, -left))
    return postings


def plan_deficit_repayment(deficit_nanos: int, grant_id: int, grant_remaining_nanos: int) -> list[Posting]:
    """Postings that move credits from a new grant onto the deficit (empty if none owed)."""
    if deficit_nanos >= 0 or grant_remaining_nanos <= 0:
        return []
    repay = min(-deficit_nanos, grant_remaining_nanos)
    return [Posting(grant_id, -repay), Posting(None, repay)]
