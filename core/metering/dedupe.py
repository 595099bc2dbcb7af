"""The dedupe window: which months of ``usage_event_keys`` a batch files its keys under and reads.

Each new event's ``(account_id, event_id)`` is filed in ``usage_event_keys`` under the UTC
month the batch received it (``received_month``), and a batch looks for its keys in every
month from ``key_window_start(now)`` on (``dedupe_window()`` = lateness + 2 days back,
rounded down to a month). On PostgreSQL the table's primary key is
``(account_id, event_id, received_month)``, so the unique index catches two transactions
filing the same key under the same month, even before either commits (the second waits for
the first); keys filed under other months are found by reading them, which only sees
committed rows.

**The month boundary.** A batch that files key K under November at 23:59:59 and is still
open at midnight, and a batch filing K under December at 00:00:01, would not see each
other: different partitions, and the first has not committed. Two rules close it, with
``GRACE`` (one hour):

1. A batch received within ``GRACE`` after a month starts files its keys under the
   previous month as well, first (``ON CONFLICT DO NOTHING``; a key is new only if it is new
   in both months): it meets November's open transaction on November's unique index.
2. A batch must commit before ``GRACE`` after the end of the month it filed its keys under
   (``commit_by``: checked just before the commit, which fails with ``CommitTooLate`` and
   rolls back otherwise; the client resends). So every key filed under November is
   committed by December 1, 01:00, after which batches stop filing under November and rely
   on reading it.

Both use the batch's own clock. SQLite needs neither: its write lock serialises batches.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import event
from sqlalchemy.orm import Session

from core.clock import Clock
from core.errors import BillingError
from core.metering.partitions import add_months, key_window_start, month_of, month_start
from core.metering.settings import MAX_FUTURE, dedupe_window

GRACE = timedelta(hours=1)
_COMMIT_BY = "meterline_dedupe_commit_by"

__all__ = [
    "GRACE",
    "CommitTooLate",
    "KeyMonths",
    "commit_by",
    "key_months",
    "probe_events_before",
]


class CommitTooLate(BillingError):
    """A batch ran past its month's grace before committing: rolled back, nothing stored."""

    http_status = 503
    default_code = "unavailable"


class KeyMonths:
    """Where a batch received at ``now`` files its keys, and from which month on it reads them."""

    __slots__ = ("file_under", "grace_month", "since")

    def __init__(self, now: datetime, *, postgres: bool) -> None:
        self.file_under: date = month_of(now)
        self.since: date = key_window_start(now)
        in_grace = postgres and now - month_start(self.file_under) < GRACE
        self.grace_month: date | None = add_months(self.file_under, -1) if in_grace else None


def key_months(now: datetime, *, postgres: bool) -> KeyMonths:
    return KeyMonths(now, postgres=postgres)


def probe_events_before(now: datetime) -> datetime:
    """Events dated before this may have been first received before the window: probe the raw rows.

    An event may be dated up to ``MAX_FUTURE`` after its arrival, so one dated at or after
    ``now - dedupe_window() + MAX_FUTURE`` was received inside the window, if ever. Only a
    batch allowed more lateness than the setting (a CLI backfill) has older ones.
    """
    return now - dedupe_window() + MAX_FUTURE


def commit_by(session: Session, clock: Clock, filed_under: date) -> None:
    """Make the session's next commit fail unless ``clock`` reads before ``filed_under``'s end + GRACE."""
    deadline = month_start(add_months(filed_under, 1)) + GRACE
    held = session.info.get(_COMMIT_BY)
    if held is None or deadline < held[0]:
        session.info[_COMMIT_BY] = (deadline, clock)


@event.listens_for(Session, "before_commit")
def _check_commit_deadline(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the check belongs to the real commit
    held = session.info.pop(_COMMIT_BY, None)
    if held is None:
        return
    deadline, clock = held
    if clock() >= deadline:
        raise CommitTooLate(
            "the batch took too long to commit around the turn of the month and was rolled back; "
            "nothing was stored: send it again"
        )


@event.listens_for(Session, "after_transaction_end")
def _forget_deadline(session: Session, transaction: object) -> None:
    if getattr(transaction, "parent", None) is None:
        session.info.pop(_COMMIT_BY, None)
