"""Rate validated events with the rate book in force (cached per engine, keyed by its revision)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.db.models import Account, UsageRollupDaily
from core.metering.model import ValidEvent
from core.rating import (
    AccountPricing,
    PriceQuote,
    RateBook,
    load_rate_book,
    rate_amount_nanos,
    rate_book_token,
)

_books: weakref.WeakKeyDictionary[Any, RateBook] = weakref.WeakKeyDictionary()
_books_lock = threading.Lock()


def current_rate_book(session: Session) -> RateBook:
    """The rate book as of this transaction; reloaded whenever its revision changed.

    Every rate card load that adds a version changes the revision in its own transaction
    (``core.rating.book``), so a book cached before that load committed is never used
    after it, whatever order loads commit in. Cached per connection pool (one per engine),
    so two engines on two databases never share a book.
    """
    token = rate_book_token(session)
    key = session.get_bind().pool
    with _books_lock:
        cached = _books.get(key)
    if cached is not None and cached.token == token:
        return cached
    book = load_rate_book(session)
    with _books_lock:
        _books[key] = book
    return book


def _month(day: date) -> tuple[date, date]:
    start = day.replace(day=1)
    end = date(start.year + 1, 1, 1) if start.month == 12 else date(start.year, start.month + 1, 1)
    return start, end


def _stored_month_volume(session: Session, account_id: str, meter_id: int, day: date) -> int:
    start, end = _month(day)
    where = (
        UsageRollupDaily.account_id == account_id,
        UsageRollupDaily.meter_id == meter_id,
        UsageRollupDaily.usage_date >= start,
        UsageRollupDaily.usage_date < end,
    )
    try:
        # PostgreSQL sums bigints into numeric (exact, any size); SQLite's sum() raises on overflow.
        return int(
            session.scalar(select(func.coalesce(func.sum(UsageRollupDaily.quantity), 0)).where(*where)) or 0
        )
    except OperationalError as error:
        if "integer overflow" not in str(error):
            raise
    # Past 2**63 (a month of rows near their ceiling): add them up exactly here.
    return sum(session.scalars(select(UsageRollupDaily.quantity).where(*where)))


def rate_events(
    session: Session,
    events: Sequence[ValidEvent],
    usage_dates: Sequence[date],
    accounts: Mapping[str, Account],
    book: RateBook,
) -> list[tuple[int, int | None]]:
    """``(amount_nanos, rate_card_version_id)`` for each event (see ``rate_events_tiered``)."""
    return rate_events_tiered(session, events, usage_dates, accounts, book)[0]


def rate_events_tiered(
    session: Session,
    events: Sequence[ValidEvent],
    usage_dates: Sequence[date],
    accounts: Mapping[str, Account],
    book: RateBook,
) -> tuple[list[tuple[int, int | None]], bool]:
    """``(amount_nanos, rate_card_version_id)`` for each event, in the order given, and
    whether any price was tiered (its amount then depends on the stored monthly volume).

    Flat prices rate each event alone. Tiered prices need the account's volume of the
    meter earlier in the same account-local month: the usage already stored for that month
    (arrival order: a late event follows the month's stored usage) plus the events of this
    batch before it in timestamp order. No price → amount 0 and no version (usage is kept,
    not billed).
    """
    pricing = {
        account_id: AccountPricing(account_id, account.rate_card_id, account.override_rate_card_id)
        for account_id, account in accounts.items()
    }
    quotes: list[PriceQuote | None] = [
        book.quote(pricing[event.account_id], event.meter_id, event.dimensions, event.occurred_at)
        for event in events
    ]
    results: list[tuple[int, int | None]] = [(0, None)] * len(events)
    tiered: list[int] = []
    for position, (event, quote) in enumerate(zip(events, quotes, strict=True)):
        if quote is None:
            continue
        if quote.is_tiered:
            tiered.append(position)
        else:
            results[position] = (rate_amount_nanos(quote, event.quantity), quote.version_id)
    if tiered:

        def month_key(position: int) -> tuple[str, int, date]:
            event = events[position]
            return (event.account_id, event.meter_id, usage_dates[position].replace(day=1))

        needed = {month_key(p) for p in tiered}
        volumes = {key: _stored_month_volume(session, key[0], key[1], key[2]) for key in sorted(needed)}
        tiered_positions = set(tiered)
        for position in sorted(range(len(events)), key=lambda p: (events[p].occurred_at, events[p].index)):
            key = month_key(position)
            if key not in volumes:
                continue
            event = events[position]
            if position in tiered_positions:
                quote = quotes[position]
                assert quote is not None
                results[position] = (rate_amount_nanos(quote, event.quantity, volumes[key]), quote.version_id)
            volumes[key] += event.quantity
    return results, bool(tiered)
