"""The one display rule (docs/money.md): credits, dollars, prices, dates and times."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.display import (
    DATETIME_COLUMN_FORMAT,
    credits_change_number,
    credits_help,
    credits_number,
    exact_credits,
    format_credits,
    format_credits_change,
    format_date,
    format_date_range,
    format_datetime,
    format_dollars,
    format_dollars_cents,
    format_price,
    format_quantity,
    format_wall_time,
    purchase_text,
    zone_note,
)
from core.money import NANOS_PER_CREDIT


def test_credit_amounts_have_two_decimals_and_a_unit():
    assert format_credits(1_284_100_000_000) == "1,284.10 credits"
    assert format_credits(-3_200_000_000) == "-3.20 credits"
    assert format_credits(11_708_000_000) == "11.71 credits"  # the ledger row and its detail agree
    assert format_credits(8_058_800_000) == "8.06 credits"  # 30-day and 90-day views agree
    assert format_credits(0) == "0.00 credits"
    assert format_credits(-1) == "> -0.01 credits"  # never "-0.00"
    assert credits_number(5_000_000) == "< 0.01"  # half a cent rounds half-even to 0.00
    assert credits_number(15_000_000) == "0.02"


def test_amounts_below_a_cent_say_so_and_keep_the_exact_value_for_the_tooltip():
    assert format_credits(460) == "< 0.01 credits"
    assert credits_number(460) == "< 0.01"
    assert exact_credits(460) == "0.00000046 credits"
    assert credits_help(460) == "Exactly 0.00000046 credits"
    assert credits_help(11_708_000_000) == "Exactly 11.708 credits"
    assert credits_help(11_700_000_000) is None
    assert exact_credits(3 * NANOS_PER_CREDIT) == "3.00 credits"


def test_card_amounts_are_dollars_with_cents():
    assert format_dollars_cents(2_000) == "$20.00"
    assert format_dollars_cents(123_456) == "$1,234.56"
    assert format_dollars_cents(-320) == "-$3.20"
    assert format_dollars(20 * NANOS_PER_CREDIT) == "$20.00"
    assert format_dollars(460) == "< $0.01"
    assert purchase_text(2_000, 20 * NANOS_PER_CREDIT) == "$20.00 → 20.00 credits"


@pytest.mark.parametrize(
    ("price_nanos", "per_units", "expected"),
    [
        (2_405_000_000, 1, "2.405 credits"),  # prices are exact: never rounded to 2.40
        (1_250_000, 1, "0.00125 credits"),
        (3_000_000_000, 1, "3.00 credits"),
        (1, 1, "0.000000001 credits"),
        (0, 1, "0.00 credits"),
        (-3_200_000_000, 1, "-3.20 credits"),
        (2_405_000_000, 1_000_000, "0.000002405 credits"),
        (1, 1_000_000, "0.000000000000001 credits"),
        (2**63 - 1, 1_000_000, "9,223.372036854775807 credits"),
        (1_000_000_000, 3, "1.00 / 3 credits"),
        (1_000_000_000, 7_000_000, "1.00 / 7,000,000 credits"),
        (3_000_000_000, 3, "1.00 credits"),
    ],
)
def test_prices_print_every_digit(price_nanos, per_units, expected):
    assert format_price(price_nanos, per_units) == expected


@given(st.integers(-(2**63), 2**63 - 1), st.sampled_from([1, 2, 4, 5, 8, 10, 1_000, 1_000_000, 2**20]))
def test_prices_are_exact_for_finite_decimals(price_nanos, per_units):
    text = format_price(price_nanos, per_units).removesuffix(" credits")
    parsed = Fraction(Decimal(text.replace(",", "")))  # exact, no context rounding
    assert parsed * per_units * NANOS_PER_CREDIT == price_nanos
    assert len(text.rsplit(".", 1)[1]) >= 2


@given(st.integers(-(10**18), 10**18))
def test_shown_credits_are_the_exact_amount_rounded_half_even(nanos):
    text = credits_number(nanos)
    if text.startswith(("<", ">")):
        assert 0 < abs(nanos) < NANOS_PER_CREDIT // 200 or abs(nanos) == NANOS_PER_CREDIT // 200
    else:
        shown = Decimal(text.replace(",", ""))
        assert abs(shown * NANOS_PER_CREDIT - nanos) <= NANOS_PER_CREDIT // 200


def test_dates_and_times_read_one_way_in_the_accounts_zone():
    assert format_date(date(2026, 12, 7)) == "Dec 7, 2026"
    moment = datetime(2026, 12, 7, 12, 48, tzinfo=UTC)
    assert format_datetime(moment, "America/Los_Angeles") == "Dec 7, 2026, 04:48 PST"
    assert format_datetime(moment, "America/Los_Angeles", zone=False) == "Dec 7, 2026, 04:48"
    assert format_datetime(moment, "UTC") == "Dec 7, 2026, 12:48 UTC"
    assert zone_note("Europe/Berlin", moment) == "Times in Europe/Berlin (CET)"


def test_quantities_are_whole_with_a_unit():
    assert format_quantity(1_234_567, "tokens") == "1,234,567 tokens"


def test_a_change_of_the_balance_carries_its_sign():
    assert format_credits_change(20 * NANOS_PER_CREDIT) == "+20.00 credits"
    assert credits_change_number(-11_708_000_000) == "-11.71"
    assert credits_change_number(0) == "0.00"
    assert credits_change_number(460) == "< 0.01"  # not "+< 0.01"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 11, 22), date(2026, 11, 22), "Nov 22, 2026"),
        (date(2026, 11, 1), date(2026, 11, 22), "Nov 1–22, 2026"),
        (date(2026, 10, 25), date(2026, 11, 22), "Oct 25 – Nov 22, 2026"),
        (date(2026, 12, 28), date(2027, 1, 3), "Dec 28, 2026 – Jan 3, 2027"),
    ],
)
def test_a_span_of_days_names_the_year_once(start, end, expected):
    assert format_date_range(start, end) == expected


def test_a_wall_clock_time_reads_like_any_other_time():
    assert format_wall_time(datetime(2026, 12, 7, 4, 48)) == "Dec 7, 2026, 04:48"
    # The tables' column format says the same in Moment.js tokens.
    assert DATETIME_COLUMN_FORMAT == "MMM D, YYYY, HH:mm z"
