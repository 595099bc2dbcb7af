"""The rate book: an immutable snapshot of every rate card, version and price.

Rating reads it for each event: the card version in force at the event's timestamp
(the last with ``effective_from <= timestamp``), the account's override card first,
then its base card; within a version, a price for the event's dimension value
(e.g. ``model = "atlas-large"``) wins over the meter's default price.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import RateCardVersion, RatePrice
from core.rating.engine import PriceQuote, Tier


@dataclass(frozen=True)
class AccountPricing:
    """Which cards price an account's usage."""

    account_id: str
    rate_card_id: int | None
    override_rate_card_id: int | None = None


@dataclass(frozen=True)
class _Version:
    version_id: int
    effective_from: datetime
    # meter_id -> {(match_dimension, match_value): quote}; ("", "") is the default price
    prices: dict[int, dict[tuple[str, str], PriceQuote]]


@dataclass(frozen=True)
class RateBook:
    """All versions of all cards, sorted by ``effective_from`` per card."""

    token: int
    _versions: dict[int, list[_Version]] = field(default_factory=dict)
    _starts: dict[int, list[datetime]] = field(default_factory=dict)

    def version_at(self, rate_card_id: int, at: datetime) -> _Version | None:
        starts = self._starts.get(rate_card_id)
        if not starts:
            return None
        index = bisect.bisect_right(starts, at) - 1
        return None if index < 0 else self._versions[rate_card_id][index]

    def _quote_in(
        self, rate_card_id: int | None, meter_id: int, dimensions: Mapping[str, str], at: datetime
    ) -> PriceQuote | None:
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
                return quote
        return prices.get(("", ""))

    def quote(
        self, pricing: AccountPricing, meter_id: int, dimensions: Mapping[str, str], at: datetime
    ) -> PriceQuote | None:
        """The price of one event, or None when no card prices it (usage kept, not billed)."""
        override = self._quote_in(pricing.override_rate_card_id, meter_id, dimensions, at)
        if override is not None:
            return override
        return self._quote_in(pricing.rate_card_id, meter_id, dimensions, at)


def rate_book_token(session: Session) -> int:
    """Changes whenever a version is added (versions are never edited): a cache key."""
    return int(session.scalar(select(func.coalesce(func.max(RateCardVersion.id), 0))) or 0)


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
