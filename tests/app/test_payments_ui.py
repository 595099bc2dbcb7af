"""The Buy credits page's pieces, without a page: pay-off amounts for a negative balance and what a
purchase does to it, typed amounts read strictly, auto-recharge's card kept, the history's rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.payments_ui import (
    OTHER,
    amount_choices,
    deficit_text,
    history_rows,
    history_table,
    owed_cents,
    parse_credits,
    parse_custom,
    recharge_cards,
    summarize,
)
from core.errors import ValidationError
from core.money import credits_to_nanos
from core.payments import Card, TopUpLimits
from core.payments.views import OtherPurchase, TopUpView

LIMITS = TopUpLimits()  # $5 to $10,000; presets $10, $25, $50, $100, $250
RAVI_OWES = -credits_to_nanos("55.26")


def test_without_a_debt_the_presets_are_offered() -> None:
    assert [c.label for c in amount_choices(LIMITS, 0)] == [
        "$10.00",
        "$25.00",
        "$50.00",
        "$100.00",
        "$250.00",
    ]
    assert not any(c.caption for c in amount_choices(LIMITS, 0))


def test_a_debt_is_offered_paid_off_plus_a_useful_amount_the_smallest_first() -> None:
    choices = amount_choices(LIMITS, RAVI_OWES)
    assert [c.label for c in choices] == ["$65.26", "$80.26", "$105.26", "$155.26", "$305.26"]
    assert choices[0].caption == "pays off 55.26 credits, then 10.00 credits to use"
    for choice in choices:  # every choice clears the debt
        assert summarize(choice.cents, RAVI_OWES).still_owed_nanos == 0


def test_a_debt_in_fractions_of_a_cent_is_rounded_up_so_nothing_stays_owed() -> None:
    owed = -(credits_to_nanos("55.26") + 1)  # a nano more than 55.26
    assert owed_cents(owed) == 5_527
    assert summarize(amount_choices(LIMITS, owed)[0].cents, owed).still_owed_nanos == 0


def test_choices_stay_within_the_limits() -> None:
    owed = -credits_to_nanos("9900")
    assert [c.label for c in amount_choices(LIMITS, owed)] == [
        "$9,910.00",
        "$9,925.00",
        "$9,950.00",
        "$10,000.00",
    ]
    # A debt past the largest top-up: the plain presets (the summary then says what stays owed).
    assert [c.cents for c in amount_choices(LIMITS, -credits_to_nanos("20000"))] == list(LIMITS.presets_cents)


def test_what_a_purchase_does_to_a_debt_in_plain_words() -> None:
    clears = deficit_text(summarize(6_526, RAVI_OWES))
    assert clears == (
        "You owe 55.26 credits of usage your credits did not cover. This purchase pays that off first, "
        "then leaves **10.00 credits** to use."
    )
    short = deficit_text(summarize(1_000, RAVI_OWES))
    assert "pays off 10.00 credits of it; you will still owe **45.26 credits**" in short
    assert "below zero" not in clears + short and "0.00 credits are left" not in clears + short


@pytest.mark.parametrize(
    ("typed", "cents"),
    [("40", 4_000), (" 10 ", 1_000), ("12.5", 1_250), ("1,250.50", 125_050), ("$25", 2_500)],
)
def test_a_typed_amount_is_read_as_the_help_text_says(typed: str, cents: int) -> None:
    assert parse_custom(typed, LIMITS) == cents


@pytest.mark.parametrize("typed", ["1e1", "١٢", "10.001", "-10", "NaN", "12,34", "10 dollars"])
def test_anything_else_is_an_error_naming_the_amount(typed: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_custom(typed, LIMITS)
    assert raised.value.field == "amount"


def test_nothing_typed_yet_is_not_an_error() -> None:
    assert parse_custom("", LIMITS) is None and parse_custom("  ", LIMITS) is None
    assert OTHER == "Other amount"


def test_limits_still_apply_to_a_typed_amount() -> None:
    with pytest.raises(ValidationError, match=r"smallest top-up is \$5\.00"):
        parse_custom("4.99", LIMITS)


def test_credits_are_read_strictly_too() -> None:
    assert parse_credits("1,250.50", field="threshold") == credits_to_nanos("1250.50")
    assert parse_credits("100 credits", field="threshold") == credits_to_nanos(100)
    for typed in ("1e2", "١٠٠", "0.001"):
        with pytest.raises(ValidationError) as raised:
            parse_credits(typed, field="threshold")
        assert raised.value.field == "threshold"


VISA = Card("pm_visa_old", "visa", "4242", 12, 2030)


def test_auto_recharge_keeps_its_card_when_another_is_added() -> None:
    three_ds = Card("pm_3ds", "visa", "3155", 12, 2030)  # newest first, as saved_cards lists them
    assert recharge_cards([three_ds, VISA], VISA) == [three_ds, VISA]


def test_the_same_card_saved_again_is_auto_recharges_own() -> None:
    again = replace(VISA, payment_method_id="pm_visa_new")  # listed once, under the newest id
    assert recharge_cards([again], VISA) == [VISA]
    assert recharge_cards([again], None) == [again]


def _top_up(top_up_id: int, state: str, when: datetime) -> TopUpView:
    return TopUpView(
        top_up_id=top_up_id,
        account_id="acc_x",
        kind="saved_card",
        kind_label="Saved card",
        provider="sandbox",
        state=state,
        state_label=state.title(),
        amount_cents=2_500,
        currency="usd",
        credits_nanos=credits_to_nanos(25),
        card_brand="visa",
        card_last4="0341",
        receipt_url="",
        checkout_url="",
        action_url="",
        failure_message="Your card was declined." if state == "failed" else "",
        grant_id=None,
        ledger_entry_id=None,
        refunded_cents=0,
        reversed_nanos=0,
        refund_spent_nanos=0,
        dispute_status="",
        frozen_nanos=0,
        note="",
        created_by="someone@x.test",
        created_at=when,
        credited_at=None,
    )


def test_the_history_has_every_purchase_newest_first_and_no_receipt_for_a_failed_one() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    contract = OtherPurchase(
        7, "Annual contract", credits_to_nanos(5_000), 450_000, now - timedelta(days=90), 3, "x"
    )
    rows = history_rows(
        [_top_up(2, "failed", now), _top_up(1, "credited", now - timedelta(days=1))],
        [contract],
        base="http://portal",
        params={"account": "acc_x"},
    )
    assert [r.purchase for r in rows] == ["Top-up #2", "Top-up #1", "Grant #7"]
    assert rows[0].receipt is None  # drawn as "—", never "None"
    assert rows[1].receipt == "http://portal/buy_credits?account=acc_x&receipt=1"
    assert rows[2].how == "Contract or invoice" and rows[2].amount_cents == 450_000
    frame = history_table(rows)
    assert list(frame.columns[:2]) == ["When", "State"]  # what a phone shows first
    assert frame["Receipt"].iloc[0] is None
