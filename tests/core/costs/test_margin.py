"""Margin over a hand-built month (both databases): revenue from the hourly rollup, cost from the
cost version in force at each hour (a change mid-month applies from its hour), a meter without a
cost card shown as such, never as a silent full margin; and only support admins may read it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from core.costs import margin_for_agent, margin_for_month, month_bounds
from core.db import unit_of_work
from core.errors import NotFound, PermissionDenied, ValidationError
from core.money import credits_to_nanos
from core.support.agents import SUPPORT, SUPPORT_ADMIN, Agent
from tests.core.costs.month import build_month


def usd(text: str) -> int:
    return credits_to_nanos(text)


def test_margin_per_model_applies_the_cost_change_from_its_hour(engine: Engine) -> None:
    build_month(engine)
    with unit_of_work(engine) as session:
        report = margin_for_month(session, "2026-11")
    lines = {(line.meter, line.model): line for line in report.lines}
    assert set(lines) == {
        ("input_tokens", "atlas-large"),
        ("input_tokens", "atlas-mini"),
        ("requests", "atlas-large"),
    }  # October's and December's usage stay out
    large = lines[("input_tokens", "atlas-large")]
    assert large.quantity == 6_000_000
    assert large.revenue_nanos == usd("18.00")
    # 2M + 1M (23:30 on Nov 14) at $1.00, then 1M (00:10 on Nov 15) + 2M at $1.50.
    assert large.cost_nanos == usd("7.50")
    assert large.margin_nanos == usd("10.50")
    assert large.margin_percent == Decimal("58.33")
    mini = lines[("input_tokens", "atlas-mini")]
    assert (mini.revenue_nanos, mini.cost_nanos, mini.margin_percent) == (
        usd("2.00"),
        usd("0.80"),
        Decimal("60.00"),
    )


def test_usage_without_a_cost_card_is_named_not_counted_as_margin(engine: Engine) -> None:
    build_month(engine)
    with unit_of_work(engine) as session:
        report = margin_for_month(session, "2026-11")
    requests = next(line for line in report.lines if line.meter == "requests")
    assert requests.revenue_nanos == usd("3.00")
    assert requests.cost_nanos is None and requests.margin_nanos is None and requests.margin_percent is None
    assert requests.uncosted_quantity == 300
    assert report.uncosted_lines == [requests]
    assert report.revenue_nanos == usd("23.00")
    assert report.uncosted_revenue_nanos == usd("3.00")
    assert report.cost_nanos == usd("8.30")
    assert report.margin_nanos == usd("11.70")  # of the $20.00 that has a cost
    assert report.margin_percent == Decimal("58.50")


def test_without_any_cost_card_every_line_says_so(engine: Engine) -> None:
    build_month(engine, with_costs=False)
    with unit_of_work(engine) as session:
        report = margin_for_month(session, "2026-11")
    assert report.cost_card_key is None
    assert report.lines and all(not line.has_cost for line in report.lines)
    assert report.cost_nanos == 0 and report.margin_percent is None


def test_an_empty_month_has_no_lines(engine: Engine) -> None:
    build_month(engine)
    with unit_of_work(engine) as session:
        report = margin_for_month(session, "2026-06")
    assert report.lines == [] and report.revenue_nanos == 0 and report.margin_percent is None


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "nov", "", "0000-01", "9999-12", "2026-11-01"])
def test_a_bad_month_names_the_field(month: str) -> None:
    with pytest.raises(ValidationError) as caught:
        month_bounds(month)
    assert caught.value.field == "month"


def test_december_ends_at_the_new_year() -> None:
    start, end = month_bounds("2026-12")
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")


def test_an_unknown_cost_card_is_not_found(engine: Engine) -> None:
    build_month(engine)
    with unit_of_work(engine) as session, pytest.raises(NotFound) as caught:
        margin_for_month(session, "2026-11", cost_card="nope")
    assert caught.value.field == "cost_card"


def test_only_support_admins_read_the_margin(engine: Engine) -> None:
    build_month(engine)
    with unit_of_work(engine) as session:
        assert margin_for_agent(session, Agent("lead@meterline.test", SUPPORT_ADMIN), "2026-11").lines
        with pytest.raises(PermissionDenied):
            margin_for_agent(session, Agent("agent@meterline.test", SUPPORT), "2026-11")
        with pytest.raises(PermissionDenied):
            margin_for_agent(session, "alice@acme.test", "2026-11")  # type: ignore[arg-type]
