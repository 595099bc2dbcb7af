"""Alert rules evaluated against real ingestion, on SQLite and PostgreSQL: every kind fires once per
crossing with its value and time, resolves when back, fires again after; scopes; pause and delete."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from core.accounts import Actor, add_member
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import AlertDelivery, AlertFiring, AlertRule, Notification
from core.errors import NotFound, ValidationError
from core.ledger import grant_credits
from core.spend import evaluate as evaluate_module
from core.spend.alerts import (
    RuleInput,
    create_rule,
    delete_rule,
    firing_history,
    list_rules,
    set_rule_paused,
    update_rule,
)
from core.spend.evaluate import Evaluation, evaluate_accounts
from core.spend.jobs import run_spend_jobs
from core.spend.notifications import mark_read, notifications, unread_count
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.spend_setup import CREDIT, spend

OWNER = Actor.member("owner@a.test")  # owner of acc_a and acc_b
READER = Actor.member("someone@a.test")  # a viewer of acc_a


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=40))  # acc_a and acc_b, 100 credits each
    with unit_of_work(engine, write=True) as session:
        for account_id in ("acc_a", "acc_b"):
            add_member(session, account_id=account_id, email=OWNER.email, role="owner", at=now)
        add_member(session, account_id="acc_a", email=READER.email, role="viewer", at=now)
    return engine


def add_rule(engine: Engine, now: datetime, **fields: object) -> int:
    fields.setdefault("name", "rule")
    with unit_of_work(engine, write=True) as session:
        return create_rule(
            session,
            account_id="acc_a",
            rule=RuleInput(**fields),
            actor=OWNER,
            at=now,  # type: ignore[arg-type]
        ).rule_id


def evaluate(engine: Engine, at: datetime, accounts: tuple[str, ...] = ("acc_a",)) -> Evaluation:
    with unit_of_work(engine, write=True) as session:
        return evaluate_accounts(session, accounts, at=at)


def history(engine: Engine) -> list[tuple[str, int, int]]:
    with unit_of_work(engine) as session:
        return [(f.event, f.value, f.threshold) for f in reversed(firing_history(session, "acc_a"))]


def test_balance_below_fires_once_resolves_and_fires_again(seeded: Engine, now: datetime) -> None:
    add_rule(seeded, now, kind="balance_below", threshold="60")
    spend(seeded, "e1", 30, now - timedelta(hours=3))
    assert evaluate(seeded, now).fired == 0  # balance 70
    spend(seeded, "e2", 15, now - timedelta(hours=2))
    assert evaluate(seeded, now).fired == 1  # balance 55
    assert evaluate(seeded, now + timedelta(minutes=1)).fired == 0  # still below: no second message
    with unit_of_work(seeded, write=True) as session:
        grant_credits(session, account_id="acc_a", amount_nanos=50 * CREDIT, source="goodwill", at=now)
    assert evaluate(seeded, now + timedelta(minutes=2)).resolved == 1  # balance 105
    spend(seeded, "e3", 50, now - timedelta(hours=1))
    assert evaluate(seeded, now + timedelta(minutes=3)).fired == 1  # balance 55 again
    assert history(seeded) == [
        ("fired", 55 * CREDIT, 60 * CREDIT),
        ("resolved", 105 * CREDIT, 60 * CREDIT),
        ("fired", 55 * CREDIT, 60 * CREDIT),
    ]


def test_absolute_and_percentage_spend_thresholds_both_fire(seeded: Engine, now: datetime) -> None:
    add_rule(seeded, now, name="absolute", kind="spend_above", threshold="20")
    add_rule(seeded, now, name="percent", kind="spend_above", budget="100", percent="30")
    spend(seeded, "e1", 19, now - timedelta(days=2))
    assert evaluate(seeded, now).fired == 0
    spend(seeded, "e2", 1, now - timedelta(hours=1))
    assert evaluate(seeded, now).fired == 1  # $20 reaches the absolute $20
    spend(seeded, "e3", 10, now - timedelta(hours=1))
    assert evaluate(seeded, now).fired == 1  # $30 reaches 30 % of $100
    with unit_of_work(seeded) as session:
        firings = firing_history(session, "acc_a")
    assert {(f.subject, f.value, f.threshold) for f in firings} == {
        ("Alert 'absolute'", 20 * CREDIT, 20 * CREDIT),
        ("Alert 'percent'", 30 * CREDIT, 30 * CREDIT),
    }
    assert all(f.at == now for f in firings)


def test_spend_resets_with_the_month_and_the_rule_resolves(seeded: Engine, now: datetime) -> None:
    add_rule(seeded, now, kind="spend_above", threshold="5")
    spend(seeded, "e1", 10, now - timedelta(hours=1))
    assert evaluate(seeded, now).fired == 1
    next_month = datetime(2026, 12, 1, 0, 5, tzinfo=now.tzinfo)
    assert evaluate(seeded, next_month).resolved == 1


@pytest.mark.parametrize(
    ("scope", "value", "matching"),
    [
        ("project", "web", {"project": "web"}),
        ("api_key", "key_1", {"api_key": "key_1"}),
    ],
)
def test_a_scoped_rule_counts_only_its_scope(
    seeded: Engine, now: datetime, scope: str, value: str, matching: dict[str, str]
) -> None:
    add_rule(seeded, now, kind="spend_above", threshold="5", scope=scope, scope_value=value)
    spend(seeded, "other", 50, now - timedelta(hours=2), project="api", api_key="key_2")
    assert evaluate(seeded, now).fired == 0
    spend(seeded, "mine", 5, now - timedelta(hours=1), **matching)
    assert evaluate(seeded, now).fired == 1


def test_a_meter_scoped_rule_counts_only_that_meter(seeded: Engine, now: datetime) -> None:
    add_rule(seeded, now, kind="spend_above", threshold="5", scope="meter", scope_value="input_tokens")
    spend(seeded, "req", 50, now - timedelta(hours=2))  # the requests meter
    assert evaluate(seeded, now).fired == 0
    with pytest.raises(ValidationError) as refused:
        add_rule(seeded, now, kind="spend_above", threshold="5", scope="meter", scope_value="nope")
    assert refused.value.field == "scope_value"


def _steady_week(engine: Engine, now: datetime, credits_per_day: int) -> None:
    for day in range(1, 8):
        spend(engine, f"d{day}", credits_per_day, now - timedelta(days=day), at=now)


def test_projected_spend_fires_from_the_projection(seeded: Engine, now: datetime) -> None:
    # Nov 13–19: $5 a day; today is Nov 20 (11 days to the month's end, today included):
    # $35 + 11 × $5 = $90 projected.
    _steady_week(seeded, now, 5)
    add_rule(seeded, now, name="high", kind="projected_spend_above", threshold="90.01")
    add_rule(seeded, now, name="low", kind="projected_spend_above", threshold="90")
    evaluate(seeded, now)
    with unit_of_work(seeded) as session:
        rules = {r.name: r for r in list_rules(session, "acc_a")}
    assert rules["low"].state == "firing" and rules["low"].last_value == 90 * CREDIT
    assert rules["high"].state == "ok"


def test_runway_fires_when_the_balance_runs_out_within_n_days(seeded: Engine, now: datetime) -> None:
    _steady_week(seeded, now, 10)  # $70 spent: $30 left at $10 a day = 3 days
    add_rule(seeded, now, name="two", kind="runway_below", days=2)
    add_rule(seeded, now, name="five", kind="runway_below", days=5)
    add_rule(seeded, now, name="three", kind="runway_below", days=3)
    evaluate(seeded, now)
    with unit_of_work(seeded) as session:
        states = {r.name: (r.state, r.last_value) for r in list_rules(session, "acc_a")}
    assert states == {"two": ("ok", 3), "five": ("firing", 3), "three": ("firing", 3)}


def test_spike_fires_at_k_times_the_recent_average(seeded: Engine, now: datetime) -> None:
    add_rule(seeded, now, kind="spend_spike", factor="3")
    spend(seeded, "today-early", 7, now - timedelta(hours=2))
    assert evaluate(seeded, now).fired == 0  # no history to compare with: nothing to say yet
    _steady_week(seeded, now, 2)  # average $2 a day
    evaluate(seeded, now)
    assert history(seeded) == [("fired", 7 * CREDIT, 6 * CREDIT)]  # $7 today ≥ 3 × $2


def test_paused_and_deleted_rules_stay_quiet(seeded: Engine, now: datetime) -> None:
    paused = add_rule(seeded, now, name="paused", kind="spend_above", threshold="1")
    deleted = add_rule(seeded, now, name="deleted", kind="spend_above", threshold="1")
    with unit_of_work(seeded, write=True) as session:
        set_rule_paused(session, account_id="acc_a", rule_id=paused, paused=True, actor=OWNER, at=now)
        delete_rule(session, account_id="acc_a", rule_id=deleted, actor=OWNER, at=now)
    spend(seeded, "e1", 5, now - timedelta(hours=1))
    assert evaluate(seeded, now).fired == 0
    with unit_of_work(seeded, write=True) as session:
        set_rule_paused(session, account_id="acc_a", rule_id=paused, paused=False, actor=OWNER, at=now)
        assert [r.name for r in list_rules(session, "acc_a")] == ["paused"]
    assert evaluate(seeded, now).fired == 1


def test_another_accounts_rule_cannot_be_touched(seeded: Engine, now: datetime) -> None:
    rule_id = add_rule(seeded, now, kind="balance_below", threshold="1")
    with unit_of_work(seeded, write=True) as session:
        with pytest.raises(NotFound):
            delete_rule(session, account_id="acc_b", rule_id=rule_id, actor=OWNER, at=now)
        with pytest.raises(NotFound):
            update_rule(
                session,
                account_id="acc_b",
                rule_id=rule_id,
                rule=RuleInput(name="x", kind="balance_below", threshold="5"),
                actor=OWNER,
                at=now,
            )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "balance_below"}, "threshold"),
        ({"kind": "balance_below", "threshold": "abc"}, "threshold"),
        ({"kind": "balance_below", "threshold": "-1"}, "threshold"),
        ({"kind": "balance_below", "threshold": "1", "scope": "project", "scope_value": "x"}, "scope"),
        ({"kind": "spend_above", "threshold": "1", "budget": "10", "percent": "5"}, "threshold"),
        ({"kind": "spend_above", "budget": "10"}, "threshold"),
        ({"kind": "spend_above", "budget": "10", "percent": "2.5"}, "percent"),
        ({"kind": "spend_above", "threshold": "1", "scope": "project"}, "scope_value"),
        ({"kind": "runway_below", "days": "0"}, "days"),
        ({"kind": "spend_spike", "factor": "1"}, "factor"),
        ({"kind": "spend_spike", "factor": "2.345"}, "factor"),
        ({"kind": "nope"}, "kind"),
        ({"kind": "balance_below", "threshold": "1", "name": " "}, "name"),
        ({"kind": "balance_below", "threshold": "1", "email_to": ["not an address"]}, "email_to"),
        ({"kind": "balance_below", "threshold": "1", "notify_in_app": False}, "channels"),
        ({"kind": "balance_below", "threshold": "1", "webhook_id": 999}, "webhook_id"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(
    seeded: Engine, now: datetime, fields: dict[str, object], field: str
) -> None:
    with pytest.raises((ValidationError, NotFound)) as refused:
        add_rule(seeded, now, **fields)
    assert refused.value.field == field


def test_a_crossing_notifies_in_app_and_queues_email_once(seeded: Engine, now: datetime) -> None:
    add_rule(seeded, now, kind="balance_below", threshold="90", email_to=["ops@a.test", "cfo@a.test"])
    spend(seeded, "e1", 20, now - timedelta(hours=1))
    result = evaluate(seeded, now)
    evaluate(seeded, now)
    assert len(result.delivery_ids) == 2
    with unit_of_work(seeded) as session:
        channels = sorted(session.scalars(select(AlertDelivery.channel)))
        assert channels == ["email", "email", "in_app"]
        assert unread_count(session, email="Someone@a.test", account_id="acc_a") == 1
        assert unread_count(session, email="someone@a.test", account_id="acc_b") == 0
        shown = notifications(session, email="someone@a.test", account_id="acc_a")
    assert shown[0].unread and "balance" in shown[0].body.lower()
    with unit_of_work(seeded, write=True) as session:
        mark_read(session, actor=READER, account_id="acc_a", up_to_id=shown[0].notification_id, at=now)
    with unit_of_work(seeded) as session:
        assert unread_count(session, email="someone@a.test", account_id="acc_a") == 0
        assert unread_count(session, email="other@a.test", account_id="acc_a") == 1


def test_concurrent_evaluations_fire_a_crossing_once(seeded: Engine, now: datetime) -> None:
    for index in range(5):
        add_rule(seeded, now, name=f"r{index}", kind="spend_above", threshold="1")
    spend(seeded, "e1", 5, now - timedelta(hours=1))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            evaluate(seeded, now)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with unit_of_work(seeded) as session:
        assert session.scalar(select(func.count()).select_from(AlertFiring)) == 5
        assert session.scalar(select(func.count()).select_from(Notification)) == 5


def test_the_periodic_job_evaluates_every_rule_past_one_read(
    seeded: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rules are read a page at a time; with pages of 2, five rules over two accounts take three reads.
    monkeypatch.setattr(evaluate_module, "RULES_PER_READ", 2)
    for account_id, count in (("acc_a", 3), ("acc_b", 2)):
        for n in range(count):
            with unit_of_work(seeded, write=True) as session:
                create_rule(
                    session,
                    account_id=account_id,
                    rule=RuleInput(name=f"low {n}", kind="balance_below", threshold="200"),
                    actor=OWNER,
                    at=now,
                )
    run = run_spend_jobs(seeded, clock=fixed_clock(now))
    assert run.fired == 5  # both balances (100 credits) are below 200
    with unit_of_work(seeded) as session:
        rules = session.scalars(select(AlertRule)).all()
    assert len(rules) == 5
    assert {(r.state, r.last_evaluated_at) for r in rules} == {("firing", now)}
