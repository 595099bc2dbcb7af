"""Exact money: the one rounding function and conversions (display: test_display.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    credits_to_nanos,
    div_round_half_even,
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
