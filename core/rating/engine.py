"""Pure rating: the price of a quantity under a price's tiers. No I/O in here.

A price is a list of graduated tiers by the account's monthly volume of the meter:
the units of an event that fall in a tier are charged at that tier's price. A flat
price is one tier without a bound. Prices are per ``per_units`` units, so
``amount = round_half_even(sum(units_in_tier * price_nanos) / per_units)``: one
rounding per event, after the whole sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.money import div_round_half_even


@dataclass(frozen=True)
class Tier:
    """Units up to ``up_to`` (cumulative monthly volume; None = no bound) cost ``price_nanos``."""

    up_to: int | None
    price_nanos: int


@dataclass(frozen=True)
class PriceQuote:
    """The price that applies to one event: which card version, per how many units, which tiers."""

    version_id: int
    per_units: int
    tiers: tuple[Tier, ...]

    @property
    def is_tiered(self) -> bool:
        return len(self.tiers) > 1


def validate_tiers(tiers: Sequence[Tier]) -> None:
    """Tiers rise strictly, only the last is unbounded, prices are non-negative."""
    if not tiers:
        raise ValueError("a price needs at least one tier")
    previous = 0
    for index, tier in enumerate(tiers):
        last = index == len(tiers) - 1
        if tier.price_nanos < 0:
            raise ValueError("prices cannot be negative")
        if last != (tier.up_to is None):
            raise ValueError("every tier but the last needs up_to; the last has none")
        if tier.up_to is not None:
            if tier.up_to <= previous:
                raise ValueError("tier bounds must rise")
            previous = tier.up_to


def rate_amount_nanos(quote: PriceQuote, quantity: int, volume_before: int = 0) -> int:
    """Amount in nanos for ``quantity`` units when the month already had ``volume_before``."""
    if quantity < 0 or volume_before < 0:
        raise ValueError("quantities cannot be negative")
    if not quote.is_tiered:
        return div_round_half_even(quantity * quote.tiers[0].price_nanos, quote.per_units)
    numerator = 0
    start = volume_before
    end = volume_before + quantity
    lower = 0
    for tier in quote.tiers:
        upper = tier.up_to
        in_tier_from = max(start, lower)
        in_tier_to = end if upper is None else min(end, upper)
        if in_tier_to > in_tier_from:
            numerator += (in_tier_to - in_tier_from) * tier.price_nanos
        if upper is None or upper >= end:
            break
        lower = upper
    return div_round_half_even(numerator, quote.per_units)
