"""Pure rating: flat and graduated prices, one rounding per event."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.rating import PriceQuote, Tier, rate_amount_nanos, validate_tiers

PER_MILLION = 1_000_000


def flat(price_nanos: int, per: int = PER_MILLION) -> PriceQuote:
    return PriceQuote(version_id=1, per_units=per, tiers=(Tier(None, price_nanos),))


def test_flat_price_per_million_tokens_is_exact():
    # $3.00 per million input tokens: 1,234 tokens cost 3,702,000 nanos ($0.003702).
    assert rate_amount_nanos(flat(3_000_000_000), 1_234) == 3_702_000


def test_sub_nano_amounts_round_half_to_even_once_per_event():
    # $0.0025 per million: 1 token = 2.5 nanos -> 2 (half to even); 3 tokens = 7.5 -> 8.
    quote = flat(2_500_000)
    assert rate_amount_nanos(quote, 1) == 2
    assert rate_amount_nanos(quote, 3) == 8


def test_graduated_tiers_split_an_event_across_the_boundary():
    quote = PriceQuote(1, PER_MILLION, (Tier(1_000_000, 10_000_000_000), Tier(None, 5_000_000_000)))
    # 400k tokens already this month; 1M more: 600k at $10/M and 400k at $5/M = $8.00.
    assert rate_amount_nanos(quote, 1_000_000, volume_before=400_000) == 8_000_000_000
    assert rate_amount_nanos(quote, 100, volume_before=5_000_000) == 500_000


@given(
    st.lists(st.integers(0, 5_000_000), min_size=1, max_size=30),
    st.integers(1, 3_000_000),
)
def test_tiered_amounts_are_additive_up_to_rounding(quantities, boundary):
    quote = PriceQuote(1, 1, (Tier(boundary, 7), Tier(None, 3)))
    volume = 0
    total = 0
    for quantity in quantities:
        total += rate_amount_nanos(quote, quantity, volume)
        volume += quantity
    # per_units = 1: no rounding, so rating event by event equals rating the month at once.
    assert total == rate_amount_nanos(quote, volume, 0)


def test_tiers_must_rise_and_only_the_last_is_open():
    validate_tiers([Tier(10, 1), Tier(None, 1)])
    with pytest.raises(ValueError):
        validate_tiers([Tier(10, 1), Tier(5, 1), Tier(None, 1)])
    with pytest.raises(ValueError):
        validate_tiers([Tier(None, 1), Tier(10, 1)])
    with pytest.raises(ValueError):
        validate_tiers([])
