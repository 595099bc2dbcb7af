"""Exact money: the one rounding function, conversions and display."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    NANOS_PER_CREDIT,
    credits_to_nanos,
    div_round_half_even,
    format_price_usd,
    format_usd,
    nanos_to_credits,
)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 2, 2), (7, 2, 4), (-5, 2, -2), (-7, 2, -4), (1, 3, 0), (2, 3, 1), (10, 5, 2), (0, 7, 0)],
)
def test_div_rounds_half_to_even(numerator, denominator, expected):
    assert div_round_half_even(numerator, denominator) == expected


@given(st.integers(-(10**18), 10**18), st.integers(1, 10**12))
def test_div_round_half_even_matches_decimal(numerator, denominator):
    expected = (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1), rounding="ROUND_HALF_EVEN")
    # Decimal's default 28-digit context is exact for these magnitudes.
    assert div_round_half_even(numerator, denominator) == int(expected)


def test_credits_convert_exactly_and_refuse_floats_and_sub_nano_precision():
    assert credits_to_nanos("12.50") == 12_500_000_000
    assert credits_to_nanos(3) == 3_000_000_000
    assert nanos_to_credits(1) == Decimal("1E-9")
    with pytest.raises(ValueError, match="float"):
        credits_to_nanos(0.1)
    with pytest.raises(ValueError, match="9 decimal places"):
        credits_to_nanos("0.0000000001")


def test_format_usd_shows_cents_and_keeps_tiny_amounts_honest():
    assert format_usd(1_284_100_000_000) == "$1,284.10"
    assert format_usd(-3_200_000_000) == "-$3.20"
    assert format_usd(150) == "$0.00000015"
    assert format_usd(0) == "$0.00"


@pytest.mark.parametrize(
    ("price_nanos", "per_units", "expected"),
    [
        (2_405_000_000, 1, "$2.405"),  # format_usd would round this to $2.40
        (1_250_000, 1, "$0.00125"),  # and this to $0.0012
        (3_000_000_000, 1, "$3.00"),  # at least two decimals, never "$3"
        (10_000_000, 1, "$0.01"),
        (1_284_100_000_000, 1, "$1,284.10"),
        (1, 1, "$0.000000001"),
        (0, 1, "$0.00"),
        (-3_200_000_000, 1, "-$3.20"),
        # A per-million price divided down to one unit keeps every digit, beyond nanos.
        (2_405_000_000, 1_000_000, "$0.000002405"),
        (1, 1_000_000, "$0.000000000000001"),
        (2_500_000_000, 1_000, "$0.0025"),
        (1_500_000_000, 1_000, "$0.0015"),
        (2**63 - 1, 1_000_000, "$9,223.372036854775807"),
    ],
)
def test_format_price_usd_prints_every_digit(price_nanos, per_units, expected):
    assert format_price_usd(price_nanos, per_units) == expected


def test_format_price_usd_says_when_a_price_per_unit_is_not_a_finite_decimal():
    assert format_price_usd(1_000_000_000, 3) == "$1.00 / 3"
    assert format_price_usd(2_000_000_000, 6) == "$2.00 / 6"
    assert format_price_usd(1_000_000_000, 7_000_000) == "$1.00 / 7,000,000"
    assert format_price_usd(3_000_000_000, 3) == "$1.00"


@given(st.integers(-(2**63), 2**63 - 1), st.sampled_from([1, 2, 4, 5, 8, 10, 1_000, 1_000_000, 2**20]))
def test_format_price_usd_is_exact_for_finite_decimals(price_nanos, per_units):
    text = format_price_usd(price_nanos, per_units)
    parsed = Fraction(Decimal(text.replace("$", "").replace(",", "")))  # exact, no context rounding
    assert parsed * per_units * NANOS_PER_CREDIT == price_nanos
    assert len(text.rsplit(".", 1)[1]) >= 2
