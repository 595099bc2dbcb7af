"""Stacked caps on SQLite and PostgreSQL: a cap per scope, value and period (an API key may have a
daily and a monthly cap), each measuring its own period with its own reset, and crossings that
fire once per period."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from core.accounts import Actor
from core.db import unit_of_work
from core.db.models import AlertFiring
from core.errors import ValidationError
from core.spend.caps import CapView, cap_statuses, list_caps, set_cap
from core.spend.evaluate import evaluate_accounts
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.spend_setup import CREDIT, spend

SYSTEM = Actor.system("tests")


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=40))  # acc_a, acc_b: 100 credits each, UTC
    return engine


def add_cap(engine: Engine, now: datetime, limit: str, **fields: str) -> CapView:
    fields.setdefault("scope", "account")
    fields.setdefault("mode", "hard")
    with unit_of_work(engine, write=True) as session:
        return set_cap(session, account_id="acc_a", limit=limit, actor=SYSTEM, at=now, **fields)  # type: ignore[arg-type]


def test_a_key_may_have_a_daily_and_a_monthly_cap(seeded: Engine, now: datetime) -> None:
    daily = add_cap(seeded, now, "5", scope="api_key", scope_value="ci", period="day")
    monthly = add_cap(seeded, now, "50", scope="api_key", scope_value="ci", period="month")
    again = add_cap(seeded, now, "6", scope="api_key", scope_value="ci", period="day", mode="soft")
    assert daily.cap_id != monthly.cap_id
    assert (again.cap_id, again.limit_nanos, again.mode, again.period) == (
        daily.cap_id,
        6 * CREDIT,
        "soft",
        "day",
    )
    with unit_of_work(seeded) as session:
        caps = list_caps(session, "acc_a")
    assert [(c.scope, c.scope_value, c.period) for c in caps] == [
        ("api_key", "ci", "day"),
        ("api_key", "ci", "month"),
    ]
    assert caps[0].scope_label == "API key ci" and caps[0].period_label == "daily"


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"scope": "api_key", "scope_value": "ci\ud800"}, "scope_value", None),
        ({"scope": "api_key", "scope_value": "ci\nprod"}, "scope_value", "not_single_line"),
        ({"scope": "api_key", "scope_value": "k" * 129}, "scope_value", "too_long"),
        ({"scope": "api_key", "scope_value": "  "}, "scope_value", "required"),
        ({"scope": "api_key", "scope_value": "ci", "period": "year"}, "period", "unknown_period"),
        ({"scope": "account", "period": ""}, "period", "unknown_period"),
        ({"scope": "key"}, "scope", "unknown_scope"),
    ],
)
def test_bad_caps_are_refused_naming_the_field(
    seeded: Engine, now: datetime, fields: dict[str, str], field: str, code: str | None
) -> None:
    with pytest.raises(ValidationError) as raised:
        add_cap(seeded, now, "5", **fields)
    assert raised.value.field == field
    if code is not None:
        assert raised.value.code == code


def test_each_cap_measures_its_own_period_and_says_when_it_resets(seeded: Engine, now: datetime) -> None:
    # now: Friday 2026-11-20 12:00 UTC; the account is on UTC.
    spend(seeded, "today", 3, now - timedelta(hours=1), api_key="ci")
    spend(seeded, "monday", 2, datetime(2026, 11, 16, 9, tzinfo=UTC), api_key="ci")
    spend(seeded, "early", 4, datetime(2026, 11, 2, 9, tzinfo=UTC), api_key="ci", project="web")
    spend(seeded, "other", 1, now - timedelta(hours=2), api_key="prod")
    spend(seeded, "last_week", 7, datetime(2026, 11, 15, 23, tzinfo=UTC), api_key="ci")  # Sunday
    day = add_cap(seeded, now, "10", scope="api_key", scope_value="ci", period="day")
    week = add_cap(seeded, now, "10", scope="api_key", scope_value="ci", period="week")
    month = add_cap(seeded, now, "20", scope="api_key", scope_value="ci", period="month")
    account = add_cap(seeded, now, "30", period="week", mode="soft")
    web = add_cap(seeded, now, "30", scope="project", scope_value="web")
    with unit_of_work(seeded) as session:
        statuses = {s.cap.cap_id: s for s in cap_statuses(session, "acc_a", at=now)}
    assert statuses[day.cap_id].spent_nanos == 3 * CREDIT
    assert statuses[week.cap_id].spent_nanos == 5 * CREDIT
    assert statuses[month.cap_id].spent_nanos == 16 * CREDIT
    assert statuses[account.cap_id].spent_nanos == 6 * CREDIT
    assert statuses[web.cap_id].spent_nanos == 4 * CREDIT
    assert statuses[week.cap_id].remaining_nanos == 5 * CREDIT
    assert statuses[day.cap_id].resets_at == datetime(2026, 11, 21, tzinfo=UTC)
    assert statuses[week.cap_id].resets_at == datetime(2026, 11, 23, tzinfo=UTC)
    assert statuses[month.cap_id].resets_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert statuses[week.cap_id].period.start == date(2026, 11, 16)


def test_a_daily_cap_fires_once_per_day(seeded: Engine, now: datetime) -> None:
    cap = add_cap(seeded, now, "5", scope="api_key", scope_value="ci", period="day")
    spend(seeded, "d1a", 6, now - timedelta(hours=2), api_key="ci")

    def evaluate(at: datetime) -> int:
        with unit_of_work(seeded, write=True) as session:
            return evaluate_accounts(session, ["acc_a"], at=at).fired

    def events() -> list[tuple[str, int]]:
        with unit_of_work(seeded) as session:
            return [
                (f.event, f.value)
                for f in session.scalars(
                    select(AlertFiring).where(AlertFiring.cap_id == cap.cap_id).order_by(AlertFiring.id)
                )
            ]

    assert evaluate(now) == 1
    assert evaluate(now + timedelta(minutes=5)) == 0  # once per crossing
    spend(seeded, "d1b", 1, now - timedelta(hours=1), api_key="ci")
    assert evaluate(now + timedelta(minutes=10)) == 0
    # The next day, crossed again before any evaluation saw it under the cap: it fires for that day.
    tomorrow = now + timedelta(days=1)
    spend(seeded, "d2", 5, tomorrow - timedelta(hours=1), api_key="ci")
    assert evaluate(tomorrow) == 1
    assert evaluate(tomorrow + timedelta(hours=1)) == 0
    # The day after: nothing spent yet, so it resolves; spending past it fires once more.
    later = now + timedelta(days=2)
    evaluate(later)
    spend(seeded, "d3", 5, later + timedelta(minutes=1), api_key="ci", at=later + timedelta(minutes=2))
    assert evaluate(later + timedelta(minutes=3)) == 1
    assert events() == [
        ("fired", 6 * CREDIT),
        ("fired", 5 * CREDIT),
        ("resolved", 0),
        ("fired", 5 * CREDIT),
    ]
    with unit_of_work(seeded) as session:
        (status,) = cap_statuses(session, "acc_a", at=later + timedelta(minutes=4))
    assert status.reached_at is not None  # fired in this day's period


def test_a_weekly_cap_resets_on_monday_in_the_account_zone(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=40), timezone="America/New_York")
    with unit_of_work(engine, write=True) as session:
        cap = set_cap(
            session,
            account_id="acc_a",
            scope="account",
            period="week",
            limit="5",
            mode="hard",
            actor=SYSTEM,
            at=now,
        )
    sunday_night = datetime(2026, 11, 23, 4, 30, tzinfo=UTC)  # Sunday 23:30 EST
    spend(engine, "sun", 6, sunday_night - timedelta(minutes=10))
    with unit_of_work(engine, write=True) as session:
        assert evaluate_accounts(session, ["acc_a"], at=sunday_night).fired == 1
        (status,) = cap_statuses(session, "acc_a", at=sunday_night)
    assert status.cap.cap_id == cap.cap_id
    assert status.resets_at == datetime(2026, 11, 23, 5, tzinfo=UTC)  # Monday 00:00 EST
    with unit_of_work(engine, write=True) as session:
        (monday,) = cap_statuses(session, "acc_a", at=datetime(2026, 11, 23, 5, tzinfo=UTC))
        assert monday.spent_nanos == 0
        assert evaluate_accounts(session, ["acc_a"], at=datetime(2026, 11, 23, 5, tzinfo=UTC)).resolved == 1


def test_0013_down_and_up_keeps_every_firing_and_its_cap_link(
    db_url: str, seeded: Engine, now: datetime
) -> None:
    from alembic import command
    from sqlalchemy import text

    from core.db.migrate import alembic_config, upgrade

    daily = add_cap(seeded, now, "1", scope="api_key", scope_value="ci", period="day")
    monthly = add_cap(seeded, now, "1")
    spend(seeded, "e1", 2, now - timedelta(hours=1), api_key="ci")
    with unit_of_work(seeded, write=True) as session:
        assert evaluate_accounts(session, ["acc_a"], at=now).fired == 2
    command.downgrade(alembic_config(db_url), "0012")
    with seeded.connect() as connection:
        caps = connection.execute(text("SELECT id FROM spend_caps ORDER BY id")).scalars().all()
        firings = connection.execute(text("SELECT cap_id FROM alert_firings ORDER BY id")).scalars().all()
        notifications = connection.execute(text("SELECT count(*) FROM notifications")).scalar()
    assert caps == [monthly.cap_id]
    assert sorted(firings, key=lambda c: c or 0) == [None, monthly.cap_id]  # the daily cap's stays, capless
    assert daily.cap_id not in firings and notifications == 2
    upgrade(db_url)
    with unit_of_work(seeded) as session:
        linked = session.scalars(select(AlertFiring.cap_id)).all()
        assert sorted(linked, key=lambda c: c or 0) == [None, monthly.cap_id]  # kept across the rebuild
        assert [c.period for c in list_caps(session, "acc_a")] == ["month"]


def test_authorize_reads_again_once_a_cap_period_ends(seeded: Engine, now: datetime) -> None:
    """A daily key cap full at 23:59:59 lets the key through at midnight, not up to a second later."""
    from core.spend.authorize import Authorizer

    add_cap(seeded, now, "5", scope="api_key", scope_value="ci", period="day")
    spend(seeded, "e1", 5, now - timedelta(hours=1), api_key="ci")
    clock = {"at": datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC)}
    authorizer = Authorizer(lambda: seeded, clock=lambda: clock["at"], refresh_s=60.0)
    assert authorizer.load("acc_a") is not None
    refused = authorizer.authorize("acc_a", api_key="ci", cost_nanos=0)
    assert refused is not None and refused.reason == "hard_cap_reached"
    assert refused.resets_at == datetime(2026, 11, 21, tzinfo=UTC)
    clock["at"] = datetime(2026, 11, 21, 0, 0, 0, 1, tzinfo=UTC)
    assert authorizer.authorize("acc_a", api_key="ci", cost_nanos=0) is None  # read it again first
    authorizer.load("acc_a")
    allowed = authorizer.authorize("acc_a", api_key="ci", cost_nanos=0)
    assert allowed is not None and allowed.allowed
    assert allowed.limit is not None and allowed.limit.spent_nanos == 0
    assert allowed.resets_at == datetime(2026, 11, 22, tzinfo=UTC)
