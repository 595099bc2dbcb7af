"""Late usage: events that arrived after their day had ended, so past numbers changed.

DESIGN invariant 6: a late event is rated at its own timestamp and counted in the day it
belongs to; the portal then says which past days changed and when, from ``late_usage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import LateUsage


@dataclass(frozen=True)
class LateChange:
    """Late events for past days in a range, received on or after ``since``."""

    first_day: date  # earliest day whose numbers changed
    last_day: date  # latest day whose numbers changed
    days_changed: int
    events: int
    amount_nanos: int
    last_received: date  # most recent (account-local) day late events arrived


def late_changes(
    session: Session, account_id: str, *, start: date, end: date, since: date
) -> LateChange | None:
    """Changes to days ``start``..``end`` by events received from ``since`` on; None if none."""
    row = session.execute(
        select(
            func.min(LateUsage.usage_date),
            func.max(LateUsage.usage_date),
            func.count(func.distinct(LateUsage.usage_date)),
            func.coalesce(func.sum(LateUsage.event_count), 0),
            func.coalesce(func.sum(LateUsage.amount_nanos), 0),
            func.max(LateUsage.received_date),
        ).where(
            LateUsage.account_id == account_id,
            LateUsage.usage_date >= start,
            LateUsage.usage_date <= end,
            LateUsage.received_date >= since,
        )
    ).one()
    first_day, last_day, days, events, amount, last_received = row
    if not events:
        return None
    return LateChange(
        first_day=first_day,
        last_day=last_day,
        days_changed=int(days),
        events=int(events),
        amount_nanos=int(amount),
        last_received=last_received,
    )
