"""Prices for the FOCUS export: which rate card price a usage row was rated at, as exact unit prices.

A usage row of the export sums the hourly rollup over one UTC day (or the part of it between
two price versions), so one price applies to it: the account's price (its override card's, else
its card's) in force at the row's start, as the rater chose it for each event. That is the
*contracted* price. The *list* price is the account's base card's price for the same usage
(without the override card), i.e. what anyone on that card pays.

Unit prices are per ``PricingUnit``: the price's own ``per`` (``1000000 Tokens``) when quantities
divide by it into finite decimals, else one unit. A tiered price is quoted at its first tier
(the undiscounted one); what the tiers took off shows as ``ContractedCost - EffectiveCost``. When
a unit price has no finite decimal form, or the price depends on a dimension the rollups do not
keep, the unit price is left out (null) rather than approximated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import RateCard, RateCardVersion
from core.display import format_price
from core.money import NANOS_PER_CREDIT
from core.rating import AccountPricing, PriceMatch, RateBook

# The dimensions the usage rollups keep: prices keyed by any other dimension cannot be told apart here.
ROLLUP_DIMENSIONS = frozenset({"model", "project", "api_key"})


def exact_decimal(value: Fraction) -> Decimal | None:
    """``value`` as an exact Decimal, or None when its decimal expansion does not end (1/3).

    Built from a string, so no context precision rounds it, however many digits it has.
    """
    denominator = value.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    if denominator != 1:
        return None
    scale = max(twos, fives)
    return Decimal(f"{value.numerator * 10**scale // value.denominator}E-{scale}")


def credits(nanos: int) -> Fraction:
    """An amount in nanos as an exact number of credits (= US dollars)."""
    return Fraction(nanos, NANOS_PER_CREDIT)


# FOCUS UnitFormat: data sizes are abbreviations, the same in the singular and the plural.
DATA_SIZE_UNITS = frozenset(
    f"{prefix}{base}"
    for prefix in ("", "K", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
    for base in ("b", "B")
)


def plural_unit(unit: str) -> str:
    """A meter's singular unit as FOCUS writes units: capitalised and plural ("token" → "Tokens"),
    data sizes as they are ("GB")."""
    word = unit.strip() or "unit"
    if word in DATA_SIZE_UNITS:
        return word
    word = word[:1].upper() + word[1:]
    return word if word.endswith("s") else word + "s"


def _terminates(number: int) -> bool:
    return exact_decimal(Fraction(1, number)) is not None


@dataclass(frozen=True)
class CardVersion:
    """A rate card version as the export names it."""

    card_key: str
    card_name: str
    version: int


@dataclass(frozen=True)
class RowPrice:
    """The price one usage row was rated at, per ``pricing_per`` units (one ``PricingUnit``)."""

    sku_id: str
    sku_price_id: str
    pricing_per: int
    contracted_unit: Fraction | None  # credits per pricing unit; None: no exact unit price
    list_unit: Fraction | None
    tiers: tuple[tuple[int | None, Fraction], ...]  # (up_to monthly units, credits per pricing unit)
    description: str  # "$3.00 per 1,000,000 tokens (Standard pay-as-you-go, version 2)"


def card_versions(session: Session) -> dict[int, CardVersion]:
    """Every rate card version by id, with its card's key and name."""
    rows = session.execute(
        select(RateCardVersion.id, RateCardVersion.version, RateCard.key, RateCard.name).join(
            RateCard, RateCard.id == RateCardVersion.rate_card_id
        )
    ).all()
    return {version_id: CardVersion(key, name, version) for version_id, version, key, name in rows}


class PriceResolver:
    """Resolves (and remembers) the price of each meter and dimension values at a moment."""

    def __init__(self, book: RateBook, pricing: AccountPricing, versions: Mapping[int, CardVersion]):
        self._book = book
        self._pricing = pricing
        self._versions = versions
        self._cache: dict[tuple[int, str, str, str, datetime], RowPrice] = {}

    def version_starts(self) -> list[datetime]:
        """When the versions of the account's cards (base and override) took effect."""
        starts = self._book.version_starts(self._pricing.rate_card_id)
        starts += self._book.version_starts(self._pricing.override_rate_card_id)
        return sorted(set(starts))

    def price(
        self, meter_id: int, meter_name: str, unit: str, dims: tuple[str, str, str], at: datetime
    ) -> RowPrice:
        key = (meter_id, *dims, at)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._resolve(meter_id, meter_name, unit, dims, at)
        return found

    def _ambiguous(self, found: PriceMatch, meter_id: int, at: datetime) -> bool:
        """Whether the version also prices this meter by a dimension the rollups do not keep."""
        version = self._book.version_at(found.rate_card_id, at)
        prices = version.prices.get(meter_id, {}) if version is not None else {}
        return any(dimension and dimension not in ROLLUP_DIMENSIONS for dimension, _ in prices)

    def _resolve(
        self, meter_id: int, meter_name: str, unit: str, dims: tuple[str, str, str], at: datetime
    ) -> RowPrice:
        dimensions = {name: value for name, value in zip(("model", "project", "api_key"), dims, strict=True)}
        contracted = self._book.match(self._pricing, meter_id, dimensions, at)
        if contracted is None:
            return RowPrice(
                meter_name, f"{meter_name}:unpriced", 1, None, None, (), "not priced by a rate card"
            )
        listed = self._book.match_in(self._pricing.rate_card_id, meter_id, dimensions, at) or contracted
        version = self._versions[contracted.quote.version_id]
        sku_id = meter_name
        if contracted.match_dimension:
            sku_id = f"{meter_name}:{contracted.match_dimension}={contracted.match_value}"
        if self._ambiguous(contracted, meter_id, at) or self._ambiguous(listed, meter_id, at):
            # Which price of the version applied depends on a dimension the rollups do not keep.
            return RowPrice(
                meter_name,
                f"{version.card_key}:v{version.version}:{meter_name}",
                1,
                None,
                None,
                (),
                f"priced by {version.card_name}, version {version.version}",
            )
        per = contracted.quote.per_units
        pricing_per = per if _terminates(per) else 1

        def unit_price(price: PriceMatch, price_nanos: int) -> Fraction:
            return credits(price_nanos) * pricing_per / price.quote.per_units

        contracted_unit = unit_price(contracted, contracted.quote.tiers[0].price_nanos)
        list_unit = unit_price(listed, listed.quote.tiers[0].price_nanos)
        tiers: tuple[tuple[int | None, Fraction], ...] = ()
        if contracted.quote.is_tiered:
            tiers = tuple(
                (tier.up_to, unit_price(contracted, tier.price_nanos)) for tier in contracted.quote.tiers
            )
        units = plural_unit(unit).lower()
        first = format_price(contracted.quote.tiers[0].price_nanos)
        price_text = f"{first} per {per:,} {units}" if per > 1 else f"{first} per {units.removesuffix('s')}"
        if contracted.quote.is_tiered:
            price_text = f"from {price_text}, less at higher monthly volume"
        return RowPrice(
            sku_id=sku_id,
            sku_price_id=f"{version.card_key}:v{version.version}:{sku_id}",
            pricing_per=pricing_per,
            contracted_unit=contracted_unit if exact_decimal(contracted_unit) is not None else None,
            list_unit=list_unit if exact_decimal(list_unit) is not None else None,
            tiers=tiers,
            description=f"{price_text} ({version.card_name}, version {version.version})",
        )
