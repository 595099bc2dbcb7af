"""The money-rule checker itself (tests/app/money_rule.py): it catches what issue 16 saw and lets
the rule's own writing through."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.app.money_rule import TIME_COLUMN, Shown, date_problems, displayed, problems, problems_in


@pytest.mark.parametrize(
    "text",
    [
        "7-day total: $193.704",
        "Spent $0.088 today",
        "A dormant account: $0.00000046",
        "band $0.00 – $0.00000088",
        "−11.708",  # a ledger row (U+2212 minus), no unit, three decimals
        "Balance after: 95.350",
        "The day cost 8.0588 credits",
        "You will use 212.30 of them",  # two decimals, but of what?
    ],
)
def test_it_catches_money_without_its_unit_or_with_stray_decimals(text: str) -> None:
    assert problems_in(text), text


@pytest.mark.parametrize(
    "text",
    [
        "1,284.10 credits",
        "$20.00",
        "< 0.01 credits",
        "> -0.01 credits",
        "-$3.20 refunded",
        "$20.00 → 20.00 credits",
        "Your balance is -55.26 credits",
        "1 credit = $1.00",
        "Exactly 0.00000046 credits",  # a tooltip keeps every digit
        "2.405 credits per 1M tokens",  # prices are exact
        "0.000002405 credits / token",
        "12.5% of the budget",  # a share, not money
        "1.50× the daily average",
        "1,234,567 tokens in 42 events",  # counts
        "Top-up #12 on Dec 7, 2026, 04:48 PST",
        "Buy $10, $25 or $100",  # whole dollars are exact
        "version 1.2.3",
    ],
)
def test_it_lets_the_rules_own_writing_through(text: str) -> None:
    assert problems_in(text) == [], [str(p) for p in problems_in(text)]


def test_a_table_cell_may_leave_its_unit_to_the_header() -> None:
    assert problems_in("1,284.10", header="Amount (credits)") == []
    assert problems_in("-11.71", header="Change (credits)") == []
    assert problems_in("< 0.01", header="Spent (credits)") == []
    assert problems_in("20.00", header="Paid ($)") == []
    assert problems_in("0.000002405", header="Price per token (credits)") == []
    assert problems_in("12", header="Events") == []
    assert problems_in("1,284.10", header="Amount")  # which unit?
    assert problems_in("-11.708", header="Change (credits)")  # three decimals
    assert problems_in("12", header="Balance (credits)")  # an amount without its two decimals


def test_a_balance_or_spend_is_never_in_dollars() -> None:
    assert problems([Shown("$808.89", "Spend", cell=True)])  # the usage table
    assert problems([Shown("$536.39", "Balance", where="metric")])
    assert problems([Shown("Cumulative spend (USD)")])
    assert problems([Shown("Spend (USD)", where="selectbox option")])
    assert problems([Shown("$20.00", "Paid", cell=True)]) == []  # a card payment is dollars
    assert problems([Shown("Worth 536.39 credits; 1 credit = $1.00", "Balance", where="metric help")]) == []


def test_a_field_may_name_the_unit_of_its_example() -> None:
    assert problems([Shown("e.g. 40 or 12.50", "Other amount ($)", where="text_input placeholder")]) == []
    assert problems([Shown("500", "Monthly cap (credits)", where="text_input placeholder")]) == []
    assert problems([Shown("e.g. 12.50", "Other amount", where="text_input placeholder")])


def test_cells_read_as_the_browser_formats_them() -> None:
    assert displayed(Decimal("808.885758000"), "$%,.2f") == "$808.89"
    assert displayed(Decimal("-11.707608300"), "%+,.4f") == "-11.7076"
    assert displayed(Decimal("95.349581000"), "%,.3f") == "95.350"
    assert displayed(64.816536, "%.1f%%") == "64.8%"
    assert displayed(3638, "%,d") == "3,638"
    assert displayed(0.1234567) == "0.1235"
    assert displayed(None) == "" and displayed("text") == "text"
    assert problems_in(displayed(Decimal("95.349581000"), "%,.3f"), header="Balance after (credits)")


@pytest.mark.parametrize(
    "text",
    [
        "Balance, as of Dec 07 09:03 PST",
        "Dec 12, 2026 01:00 CET",
        "as of 17:04:33 UTC",
        "Day 2026-12-07",
        "Dec 7 2026",
    ],
)
def test_dates_and_times_one_way_catches_the_other_ways(text: str) -> None:
    assert date_problems([Shown(text)]), text


def test_dates_and_times_one_way_lets_the_rule_through() -> None:
    shown = [
        Shown("Balance, as of Dec 7, 2026, 09:03 PST"),
        Shown("Nov 1–22, 2026 (PST)"),
        Shown("Oct 25 – Nov 22, 2026"),
        Shown("MMM D, YYYY, HH:mm z", "When", where=TIME_COLUMN),
        Shown("call 555-0100 at 04:48"),
    ]
    assert date_problems(shown) == []
    assert date_problems([Shown("MMM D, YYYY HH:mm z", "When", where=TIME_COLUMN)])  # no comma
    assert date_problems([Shown("", "When", where=TIME_COLUMN)])  # Streamlit's default format
