"""The ``spend_spike`` rule against real ingestion, on SQLite and PostgreSQL: today is compared with
a usual day of its weekday, the firing says so in words, and it fires once per crossing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from core.accounts import Actor, add_member
from core.db import unit_of_work
from core.spend.alerts import RuleInput, create_rule, firing_history, get_rule
from core.spend.evaluate import evaluate_accounts
from core.spend.notifications import notifications
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.spend_setup import CREDIT, spend

OWNER = Actor.member("owner@a.test")


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=70))
    with unit_of_work(engine, write=True) as session:
        add_member(session, account_id="acc_a", email=OWNER.email, role="owner", at=now)
    return engine


def _weekdays_only(engine: Engine, now: datetime, weeks: int, credits: int) -> None:
    """``credits`` a day on the weekdays of the ``weeks`` weeks before today; nothing at weekends."""
    for offset in range(1, 7 * weeks + 1):
        when = now - timedelta(days=offset)
        if when.weekday() < 5:
            spend(engine, f"d{offset}", credits, when)


def _rule(engine: Engine, now: datetime, factor: str) -> int:
    with unit_of_work(engine, write=True) as session:
        return create_rule(
            session,
            account_id="acc_a",
            rule=RuleInput(name="Spike", kind="spend_spike", factor=factor),
            actor=OWNER,
            at=now,
        ).rule_id


def _evaluate(engine: Engine, at: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        evaluate_accounts(session, ["acc_a"], at=at)


def test_a_spike_fires_once_with_the_weekday_in_words(seeded: Engine, now: datetime) -> None:
    assert now.weekday() == 4  # the fixture's "now" is a Friday
    rule_id = _rule(seeded, now, "3")
    _weekdays_only(seeded, now, 5, 2)  # 2 credits every weekday: a usual Friday is 2 credits
    spend(seeded, "today-1", 5, now - timedelta(hours=3))
    _evaluate(seeded, now - timedelta(hours=2))
    with unit_of_work(seeded) as session:
        assert firing_history(session, "acc_a") == []  # 2.5× a usual Friday: under K = 3
    spend(seeded, "today-2", 2, now - timedelta(hours=1))
    _evaluate(seeded, now)
    _evaluate(seeded, now + timedelta(minutes=5))  # still above: no second firing
    with unit_of_work(seeded) as session:
        (firing,) = firing_history(session, "acc_a")
        (note,) = notifications(session, email=OWNER.email, account_id="acc_a")
        rule = get_rule(session, "acc_a", rule_id)
    assert (firing.event, firing.value, firing.threshold) == ("fired", 7 * CREDIT, 6 * CREDIT)
    assert firing.message.endswith(
        ": Alert 'Spike' fired — Friday's spend, 7.00 credits, is 3.5 times a usual Friday's (2.00 credits)."
    )
    assert note.body == firing.message
    assert rule.condition == (
        "Today's spend reaches 3× a usual day of its weekday (trend-adjusted; beyond its usual spread)"
    )


def test_a_quiet_weekend_makes_no_monday_spike(seeded: Engine, now: datetime) -> None:
    monday = now + timedelta(days=3)
    _rule(seeded, monday, "1.3")
    _weekdays_only(seeded, monday, 5, 2)  # the 7-day mean before a Monday is 10 / 7 = 1.43 credits
    spend(seeded, "monday", 2, monday - timedelta(hours=1))  # an ordinary Monday: 1.4 × that mean
    _evaluate(seeded, monday)
    with unit_of_work(seeded) as session:
        assert firing_history(session, "acc_a") == []
