"""The roll-forward's figures in the cases finance asks about, on both databases."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from core.errors import ValidationError
from core.finance import credit_rollforward, rollforward_dict
from core.finance.rollforward import RollforwardLine
from core.usage.focus import focus_snapshot
from tests.core.finance.checks import assert_rolls_forward
from tests.core.finance.history import CREDIT, History, months_between

_IDS = itertools.count()
DOLLAR = 10**9  # nano-dollars


def story(engine: Engine, now: datetime) -> History:
    return History(engine, f"acc_case_{next(_IDS)}", now)


def line(engine: Engine, history: History, month: str | None = None) -> RollforwardLine:
    chosen = month or history.clock.strftime("%Y-%m")
    with focus_snapshot(engine) as session:
        report = credit_rollforward(session, chosen)
    found = [x for x in report.lines if x.account_id == history.account_id]
    return found[0] if found else RollforwardLine(history.account_id)


def figures(item: RollforwardLine) -> tuple[int, ...]:
    """(opening, purchased, recognized, breakage, refunded, closing) in dollars (exact)."""
    values = (
        item.opening_deferred_usd_nanos,
        item.purchased_usd_nanos,
        item.recognized_usd_nanos,
        item.breakage_usd_nanos,
        item.refunded_usd_nanos,
        item.closing_deferred_usd_nanos,
    )
    return tuple(Decimal(v).scaleb(-9) for v in values)  # type: ignore[return-value]


def test_usage_of_a_purchase_is_recognised_and_the_rest_stays_deferred(engine: Engine, now: datetime) -> None:
    h = story(engine, now)
    h.buy(10_000)  # $100 → 100 credits
    h.use(30 * CREDIT)
    assert figures(line(engine, h)) == (0, 100, 30, 0, 0, 70)


def test_free_credits_burn_first_and_carry_no_revenue(engine: Engine, now: datetime) -> None:
    h = story(engine, now)
    h.grant(10 * CREDIT, "promotional")
    h.grant(5 * CREDIT, "goodwill")
    h.buy(10_000)
    h.use(20 * CREDIT)  # promotional (10), goodwill (5), then 5 purchased: the ledger's burn order
    result = line(engine, h)
    assert figures(result) == (0, 100, 5, 0, 0, 95)
    assert (result.promotional_granted_nanos, result.promotional_consumed_nanos) == (15 * CREDIT, 15 * CREDIT)


def test_overdraft_is_revenue_only_once_a_purchase_pays_it_off(engine: Engine, now: datetime) -> None:
    h = story(engine, now)
    h.use(40 * CREDIT)  # nothing covers it: a negative balance, no revenue
    assert figures(line(engine, h)) == (0, 0, 0, 0, 0, 0)
    h.wait(timedelta(days=1))
    h.buy(10_000)  # pays off the 40 first
    assert figures(line(engine, h)) == (0, 100, 40, 0, 0, 60)


def test_a_refund_of_a_partly_used_purchase_takes_back_only_the_unused_credits(
    engine: Engine, now: datetime
) -> None:
    h = story(engine, now)
    h.buy(10_000)
    h.use(60 * CREDIT)
    h.refund(0, 10_000)  # the whole payment goes back to the card; 60 credits were used already
    assert figures(line(engine, h)) == (0, 100, 60, 0, 40, 0)


def test_a_refunded_purchase_that_paid_off_an_overdraft_reverses_that_revenue(
    engine: Engine, now: datetime
) -> None:
    h = story(engine, now)
    h.use(30 * CREDIT)
    h.buy(10_000)  # repays 30: recognised
    h.refund(0, 10_000)  # the usage is owed again: that revenue goes, the whole purchase is refunded
    assert figures(line(engine, h)) == (0, 100, 0, 0, 100, 0)


def test_a_dispute_holds_the_credits_back_and_a_win_returns_them_next_month(
    engine: Engine, now: datetime
) -> None:
    h = story(engine, now)  # Nov 20
    h.buy(5_000)
    h.use(10 * CREDIT)
    h.dispute(0, 5_000, "needs_response", version=1)  # 40 credits still unused go on hold
    assert figures(line(engine, h)) == (0, 50, 10, 0, 40, 0)
    h.wait(timedelta(days=15))  # December
    h.dispute(0, 5_000, "won", version=2)
    assert figures(line(engine, h)) == (0, 0, 0, 0, -40, 40)
    assert_rolls_forward(engine, months_between(h.started, h.clock), [h.account_id])


def test_expired_purchased_credits_are_breakage_at_their_own_price(engine: Engine, now: datetime) -> None:
    h = story(engine, now)  # Nov 20
    h.grant(50 * CREDIT, "purchased", timedelta(days=20), cents=4_500)  # $45 for 50 credits: $0.90 each
    h.use(10 * CREDIT)
    assert figures(line(engine, h)) == (0, 45, 9, 0, 0, 36)
    h.wait(timedelta(days=25))  # expired on Dec 10
    assert figures(line(engine, h)) == (36, 0, 0, 36, 0, 0)


def test_credits_reversed_by_support_are_breakage_and_free_ones_count_as_expired(
    engine: Engine, now: datetime
) -> None:
    h = story(engine, now)
    h.grant(20 * CREDIT, "purchased", cents=2_000)
    h.grant(7 * CREDIT, "goodwill")
    h.void(0)
    h.void(1)
    result = line(engine, h)
    assert figures(result) == (0, 20, 0, 20, 0, 0)
    assert (result.promotional_granted_nanos, result.promotional_expired_nanos) == (7 * CREDIT, 7 * CREDIT)


def test_a_price_that_does_not_divide_evenly_still_balances_to_the_nano_dollar(
    engine: Engine, now: datetime
) -> None:
    h = story(engine, now)
    h.buy(1_000, credits_nanos=30 * CREDIT)  # $10 for 30 credits: $0.333… each
    h.use(CREDIT)
    h.wait(timedelta(days=12))
    h.use(CREDIT)
    h.refund(0, 333)
    assert_rolls_forward(engine, months_between(h.started, h.clock), [h.account_id])
    november = line(engine, h, "2026-11")
    assert november.purchased_usd_nanos == 10 * DOLLAR
    assert november.closing_deferred_usd_nanos == 9_666_666_667  # 29 credits at $10/30, half-even


def test_the_json_carries_exact_decimal_strings(engine: Engine, now: datetime) -> None:
    h = story(engine, now)
    h.buy(1_000)
    h.use(1_234_567_891)
    with focus_snapshot(engine) as session:
        data = rollforward_dict(credit_rollforward(session, "2026-11"))
    assert data["month"] == "2026-11"
    (account,) = [a for a in data["accounts"] if a["account_id"] == h.account_id]
    assert account["recognized"] == "1.234567891"
    assert account["closing_deferred"] == "8.765432109"
    assert account["purchased"] == "10.00"
    assert set(data["totals"]) == set(account) - {"account_id"}


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "november", "", "0000-01", "2026-11\ud800"])
def test_a_bad_month_is_refused_naming_the_field(engine: Engine, month: str) -> None:
    with focus_snapshot(engine) as session, pytest.raises(ValidationError) as refused:
        credit_rollforward(session, month)
    assert refused.value.field == "month"
