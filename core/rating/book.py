"""The rate book: an immutable snapshot of every rate card, version and price.

Rating reads it for each event: the card version in force at the event's timestamp
(the last with ``effective_from <= timestamp``), the account's override card first,
then its base card; within a version, a price for the event's dimension value
(e.g. ``model = "atlas-large"``) wins over the meter's default price.

Processes cache the book (``core.metering.rater.current_rate_book``) keyed by its
revision: a random value in the ``settings`` row ``rate_book.revision`` that every load
adding a version (or changing an account's override card) replaces in its own
transaction. The largest version id was no such key: ids are handed out in insert order
but committed in any order, so a load that committed after one with a larger id went
unseen until a restart.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.models import RateCardVersion, RatePrice, Setting
from core.rating.engine import PriceQuote, Tier

REVISION_KEY = "rate_book.revision"


@dataclass(frozen=True)
class AccountPricing:
    """Which cards price an account's usage."""

    account_id: str
    rate_card_id: int | None
    override_rate_card_id: int | None = None


@dataclass(frozen=True)
class PriceMatch:
    """Which price of a card version applies: its card, the dimension value it is for ("" = the
    meter's default price) and the quote (``quote.version_id`` is the version)."""

    rate_card_id: int
    match_dimension: str
    match_value: str
    quote: PriceQuote


@dataclass(frozen=True)
class _Version:
    version_id: int
    effective_from: datetime
    # meter_id -> {(match_dimension, match_value): quote}; ("", "") is the default price
    prices: dict[int, dict[tuple[str, str], PriceQuote]]


@dataclass(frozen=True)
class RateBook:
    """All versions of all cards, sorted by ``effective_from`` per card, read at revision ``token``."""

    token: str
    _versions: dict[int, list[_Version]] = field(default_factory=dict)
    _starts: dict[int, list[datetime]] = field(default_factory=dict)

    def version_at(self, rate_card_id: int, at: datetime) -> _Version | None:
        starts = self._starts.get(rate_card_id)
        if not starts:
            return None
        index = bisect.bisect_right(starts, at) - 1
        return None if index < 0 else self._versions[rate_card_id][index]

    def match_in(
        self, rate_card_id: int | None, meter_id: int, dimensions: Mapping[str, str], at: datetime
    ) -> PriceMatch | None:
        """The price of ``rate_card_id`` for one event at ``at``, and which of the version's prices it is."""
        if rate_card_id is None:
            return None
        version = self.version_at(rate_card_id, at)
        if version is None:
            return None
        prices = version.prices.get(meter_id)
        if not prices:
            return None
        for (dimension, value), quote in prices.items():
            if dimension and dimensions.get(dimension) == value:
                return PriceMatch(rate_card_id, dimension, value, quote)
        default = prices.get(("", ""))
        return None if default is None else PriceMatch(rate_card_id, "", "", default)

    def match(
        self, pricing: AccountPricing, meter_id: int, dimensions: Mapping[str, str], at: datetime
    ) -> PriceMatch | None:
        """The price that rates one event (the override card's first), with where it comes from."""
        override = self.match_in(pricing.override_rate_card_id, meter_id, dimensions, at)
        if override is not None:
            return override
        return self.match_in(pricing.rate_card_id, meter_id, dimensions, at)

    def quote(
        self, pricing: AccountPricing, meter_id: int, dimensions: Mapping[str, str], at: datetime
    ) -> PriceQuote | None:
        """The price of one event, or None when no card prices it (usage kept, not billed)."""
        found = self.match(pricing, meter_id, dimensions, at)
        return None if found is None else found.quote

    def version_starts(self, rate_card_id: int | None) -> list[datetime]:
        """When each version of ``rate_card_id`` took effect, oldest first."""
        return list(self._starts.get(rate_card_id, [])) if rate_card_id is not None else []


def rate_book_token(session: Session) -> str:
    """The rate book's revision as this transaction sees it (a cache key; "" before any load)."""
    return session.scalar(select(Setting.value).where(Setting.key == REVISION_KEY)) or ""


def lock_rate_book_revision(session: Session) -> None:
    """Hold the revision row until this transaction ends: rate card loads take turns.

    The row is created once, by whichever load comes first (``INSERT … ON CONFLICT DO
    NOTHING``: a second concurrent insert waits for the first and then does nothing), then
    locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write transaction already
    holds the database lock).
    """
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        dialect_insert(Setting)
        .values(key=REVISION_KEY, value=uuid.uuid4().hex)
        .on_conflict_do_nothing(index_elements=[Setting.key])
    )
    session.execute(select(Setting.key).where(Setting.key == REVISION_KEY).with_for_update())


def bump_rate_book_revision(session: Session) -> str:
    """Give the rate book a new revision in this transaction (call after ``lock_rate_book_revision``)."""
    revision = uuid.uuid4().hex
    session.execute(update(Setting).where(Setting.key == REVISION_KEY).values(value=revision))
    return revision


def load_rate_book(session: Session) -> RateBook:
    """Read every card version and price into an immutable ``RateBook``."""
    token = rate_book_token(session)
    versions = session.scalars(
        select(RateCardVersion).order_by(RateCardVersion.rate_card_id, RateCardVersion.effective_from)
    ).all()
    prices_by_version: dict[int, dict[int, dict[tuple[str, str], PriceQuote]]] = {}
    for price in session.scalars(select(RatePrice)):
        quote = PriceQuote(
            version_id=price.version_id,
            per_units=price.per_units,
            tiers=tuple(Tier(t.get("up_to"), int(t["price_nanos"])) for t in price.tiers),
        )
        by_meter = prices_by_version.setdefault(price.version_id, {})
        by_meter.setdefault(price.meter_id, {})[(price.match_dimension, price.match_value)] = quote
    book = RateBook(token=token)
    for version in versions:
        book._versions.setdefault(version.rate_card_id, []).append(
            _Version(version.id, version.effective_from, prices_by_version.get(version.id, {}))
        )
        book._starts.setdefault(version.rate_card_id, []).append(version.effective_from)
    return book
