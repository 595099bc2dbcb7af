"""Credits-expiring notices on SQLite and PostgreSQL: once per grant and threshold, whatever repeats
(re-evaluation, rule edits, a second rule, concurrent evaluators); none for a grant used up or
already expired; the default 30- and 7-day rules for new accounts and, after migration 0014, for
existing ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, func, select

from core.accounts import Actor, add_member, create_account
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.migrate import alembic_config, upgrade
from core.db.models import AlertDelivery, AlertFiring, AlertRule, CreditExpiryNotice, Notification
from core.display import format_credits, format_datetime
from core.errors import ValidationError
from core.ledger import expire_due_grants, grant_credits
from core.spend.alerts import RuleInput, create_rule, delete_rule, list_rules, update_rule
from core.spend.evaluate import Evaluation, accounts_with_rules, evaluate_accounts
from core.spend.expiring import (
    DEFAULT_RULES_AUTHOR,
    add_default_expiry_rules,
    backfill_default_expiry_rules,
    claim_notice,
)
from core.spend.runtime import evaluate_now
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.spend_setup import CREDIT, spend

OWNER = Actor.member("owner@a.test")


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=40))  # acc_a and acc_b, 100 credits each, never expiring
    with unit_of_work(engine, write=True) as session:
        add_member(session, account_id="acc_a", email=OWNER.email, role="owner", at=now)
        add_member(session, account_id="acc_b", email=OWNER.email, role="owner", at=now)
    return engine


def grant(engine: Engine, now: datetime, credits: int, *, expires_in: timedelta, priority: int = 50) -> int:
    """A promotional grant of ``credits`` that expires ``expires_in`` from ``now`` (burns before the
    seeded 100 credits when its priority is lower)."""
    with unit_of_work(engine, write=True) as session:
        return grant_credits(
            session,
            account_id="acc_a",
            amount_nanos=credits * CREDIT,
            source="promotional",
            at=now - timedelta(days=1),
            priority=priority,
            expires_at=now + expires_in,
            description="Launch promotion",
        ).grant_id


def add_rule(engine: Engine, now: datetime, days: int, **fields: object) -> int:
    with unit_of_work(engine, write=True) as session:
        return create_rule(
            session,
            account_id="acc_a",
            rule=RuleInput(name=f"expiring {days}", kind="credits_expiring", days=days, **fields),  # type: ignore[arg-type]
            actor=OWNER,
            at=now,
        ).rule_id


def evaluate(engine: Engine, at: datetime) -> Evaluation:
    with unit_of_work(engine, write=True) as session:
        return evaluate_accounts(session, ["acc_a"], at=at)


def notices(engine: Engine) -> list[tuple[int, int]]:
    with unit_of_work(engine) as session:
        rows = session.execute(
            select(CreditExpiryNotice.grant_id, CreditExpiryNotice.threshold_days).order_by(
                CreditExpiryNotice.grant_id, CreditExpiryNotice.threshold_days
            )
        )
        return [(g, d) for g, d in rows]


def count(engine: Engine, model: type) -> int:
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_two_thresholds_give_two_notices_per_grant_and_never_more(seeded: Engine, now: datetime) -> None:
    soon = grant(seeded, now, 40, expires_in=timedelta(days=5))
    later = grant(seeded, now, 60, expires_in=timedelta(days=20))
    add_rule(seeded, now, 30, email_to=["ops@a.test"])
    add_rule(seeded, now, 7, email_to=["ops@a.test"])
    first = evaluate(seeded, now)
    assert first.fired == 3  # soon: at 30 and at 7 days; later: at 30 days only (20 days > 7)
    assert notices(seeded) == [(soon, 7), (soon, 30), (later, 30)]
    assert evaluate(seeded, now).fired == 0
    assert evaluate(seeded, now + timedelta(hours=6)).fired == 0
    # Fifteen days on, "later" comes within 7 days: its second notice, once.
    assert evaluate(seeded, now + timedelta(days=15)).fired == 1
    assert evaluate(seeded, now + timedelta(days=15, hours=1)).fired == 0
    assert notices(seeded) == [(soon, 7), (soon, 30), (later, 7), (later, 30)]
    assert count(seeded, Notification) == 4
    with unit_of_work(seeded) as session:
        assert session.scalar(select(func.count()).where(AlertDelivery.channel == "email")) == 4


def test_the_message_names_grant_amount_expiry_and_what_would_go_unused(
    seeded: Engine, now: datetime
) -> None:
    # No usage yet: at this pace nothing is spent, so all 40 credits would expire unused.
    grant_id = grant(seeded, now, 40, expires_in=timedelta(days=5))
    add_rule(seeded, now, 7)
    evaluate(seeded, now)
    with unit_of_work(seeded) as session:
        message = session.scalar(select(AlertFiring.message))
        body = session.scalar(select(Notification.body))
        payload = session.scalar(select(AlertDelivery.payload))
    assert message == body
    assert message is not None
    assert f"grant #{grant_id}" in message
    assert format_credits(40 * CREDIT) in message  # what is left
    assert format_datetime(now + timedelta(days=5), "UTC") in message  # when, in the account's zone
    assert f"{format_credits(40 * CREDIT)} will expire unused" in message
    assert "Launch promotion" in message
    assert payload is not None and payload["grant"]["id"] == grant_id
    assert payload["grant"]["expected_lost_nanos"] == 40 * CREDIT


def test_the_unused_amount_follows_the_recent_pace(seeded: Engine, now: datetime) -> None:
    # 2 credits a day for the last week; a 40-credit grant (burning first) expiring in 5 days uses
    # about 10 of them before it expires: what is left of it after that would go unused.
    for day in range(1, 8):
        spend(seeded, f"d{day}", 2, now - timedelta(days=day), at=now)
    grant(seeded, now, 40, expires_in=timedelta(days=5), priority=1)
    add_rule(seeded, now, 7)
    evaluate(seeded, now)
    with unit_of_work(seeded) as session:
        lost = session.scalar(select(CreditExpiryNotice.expected_lost_nanos))
        message = session.scalar(select(AlertFiring.message)) or ""
    assert lost is not None and 0 < lost < 40 * CREDIT
    assert f"{format_credits(lost)} will expire unused" in message


def test_editing_or_doubling_the_rule_does_not_repeat_a_notice(seeded: Engine, now: datetime) -> None:
    grant(seeded, now, 40, expires_in=timedelta(days=5))
    rule_id = add_rule(seeded, now, 7)
    assert evaluate(seeded, now).fired == 1
    with unit_of_work(seeded, write=True) as session:
        update_rule(
            session,
            account_id="acc_a",
            rule_id=rule_id,
            rule=RuleInput(name="renamed", kind="credits_expiring", days=7, email_to=["x@a.test"]),
            actor=OWNER,
            at=now,
        )
    add_rule(seeded, now, 7)  # a second rule with the same N
    assert evaluate(seeded, now + timedelta(minutes=5)).fired == 0
    with unit_of_work(seeded, write=True) as session:  # paused and resumed, deleted and re-added
        delete_rule(session, account_id="acc_a", rule_id=rule_id, actor=OWNER, at=now)
    add_rule(seeded, now, 7)
    assert evaluate(seeded, now + timedelta(minutes=10)).fired == 0
    assert count(seeded, AlertFiring) == 1


def test_a_grant_used_up_or_already_expired_gets_no_notice(seeded: Engine, now: datetime) -> None:
    used = grant(seeded, now, 5, expires_in=timedelta(days=3), priority=1)
    spend(seeded, "all of it", 5, now - timedelta(hours=2))  # the priority-1 grant burns first
    gone = grant(seeded, now - timedelta(days=3), 20, expires_in=timedelta(days=2))  # expired yesterday
    with unit_of_work(seeded, write=True) as session:
        expire_due_grants(session, at=now)
    far = grant(seeded, now, 20, expires_in=timedelta(days=60))
    add_rule(seeded, now, 30)
    assert evaluate(seeded, now).fired == 0
    assert notices(seeded) == []
    assert {used, gone, far}  # three grants, none due a notice


def test_a_grant_past_its_expiry_not_yet_swept_gets_no_notice(seeded: Engine, now: datetime) -> None:
    grant(seeded, now - timedelta(days=2), 20, expires_in=timedelta(days=1))  # expired a day ago
    add_rule(seeded, now, 30)
    assert evaluate(seeded, now).fired == 0


def test_concurrent_evaluations_send_each_notice_once(seeded: Engine, now: datetime) -> None:
    grant(seeded, now, 40, expires_in=timedelta(days=5))
    grant(seeded, now, 60, expires_in=timedelta(days=20))
    add_rule(seeded, now, 30)
    add_rule(seeded, now, 7)
    _together(4, lambda: evaluate(seeded, now))
    assert count(seeded, CreditExpiryNotice) == 3
    assert count(seeded, AlertFiring) == 3
    assert count(seeded, Notification) == 3


def test_concurrent_claims_of_one_notice_succeed_once(seeded: Engine, now: datetime) -> None:
    """The unique key alone keeps "once", without the evaluator's rule locks."""
    grant_id = grant(seeded, now, 40, expires_in=timedelta(days=5))
    won: list[bool] = []

    def claim() -> None:
        with unit_of_work(seeded, write=True) as session:
            won.append(
                claim_notice(
                    session,
                    account_id="acc_a",
                    grant_id=grant_id,
                    days=7,
                    rule_id=None,
                    remaining_nanos=40 * CREDIT,
                    expected_lost_nanos=0,
                    at=now,
                )
            )

    _together(4, claim)
    assert sorted(won) == [False, False, False, True]


def _together(workers: int, work: Callable[[], object]) -> None:
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            work()
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


@pytest.mark.parametrize("days", ["0", "91", "2.5", "", "many"])
def test_bad_days_are_refused_naming_the_field(seeded: Engine, now: datetime, days: str) -> None:
    with pytest.raises(ValidationError) as refused:
        add_rule(seeded, now, days)  # type: ignore[arg-type]
    assert refused.value.field == "days"


def test_the_rule_belongs_to_the_whole_account(seeded: Engine, now: datetime) -> None:
    with pytest.raises(ValidationError) as refused:
        add_rule(seeded, now, 7, scope="project", scope_value="web")
    assert refused.value.field == "scope"


# --- Default rules ---------------------------------------------------------------------------------


def _defaults(engine: Engine, account_id: str) -> list[tuple[str, int | None, list[str], bool]]:
    with unit_of_work(engine) as session:
        rows = session.scalars(
            select(AlertRule)
            .where(AlertRule.account_id == account_id, AlertRule.created_by == DEFAULT_RULES_AUTHOR)
            .order_by(AlertRule.id)
        )
        return [(r.kind, r.days, list(r.email_to), r.deleted_at is None) for r in rows]


def test_a_new_account_starts_with_the_30_and_7_day_rules(engine: Engine, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_new", name="New Co", at=now)
        add_member(session, account_id="acc_new", email="Boss@New.test", role="owner", at=now)
        add_member(session, account_id="acc_new", email="viewer@new.test", role="viewer", at=now)
    assert _defaults(engine, "acc_new") == [
        ("credits_expiring", 30, ["boss@new.test"], True),
        ("credits_expiring", 7, ["boss@new.test"], True),
    ]
    with unit_of_work(engine) as session:
        shown = list_rules(session, "acc_new")
    assert [r.name for r in shown] == ["Credits expire within 30 days", "Credits expire within 7 days"]
    assert all(r.notify_in_app and not r.paused for r in shown)


def test_defaults_are_added_once_and_a_deleted_one_stays_deleted(engine: Engine, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_new", name="New Co", at=now)
        add_member(session, account_id="acc_new", email=OWNER.email, role="owner", at=now)
        first = list_rules(session, "acc_new")[0]
        delete_rule(session, account_id="acc_new", rule_id=first.rule_id, actor=OWNER, at=now)
        assert add_default_expiry_rules(session, "acc_new", at=now) == []
        assert backfill_default_expiry_rules(session, at=now) == 0
    assert [(days, live) for _, days, _, live in _defaults(engine, "acc_new")] == [(30, False), (7, True)]


def test_existing_accounts_get_the_defaults_from_the_migration(
    db_url: str, engine: Engine, now: datetime
) -> None:
    # An account from before the rules (made at head without them: the ORM models are head's),
    # then the schema taken back before 0014 and up again.
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_old", name="Old Co", at=now, default_alerts=False)
        add_member(session, account_id="acc_old", email="owner@old.test", role="owner", at=now)
        add_member(session, account_id="acc_old", email="billing@old.test", role="billing", at=now)
    engine.dispose()
    command.downgrade(alembic_config(db_url), "0013")
    upgrade(db_url)
    assert _defaults(engine, "acc_old") == [
        ("credits_expiring", 30, ["owner@old.test"], True),
        ("credits_expiring", 7, ["owner@old.test"], True),
    ]
    with unit_of_work(engine, write=True) as session:  # the backfill after it adds nothing more
        assert backfill_default_expiry_rules(session, at=now) == 0
    assert len(_defaults(engine, "acc_old")) == 2


def test_the_default_rules_fire_for_an_expiring_grant(engine: Engine, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_new", name="New Co", at=now)
        add_member(session, account_id="acc_new", email=OWNER.email, role="owner", at=now)
        grant_credits(
            session,
            account_id="acc_new",
            amount_nanos=25 * CREDIT,
            source="goodwill",
            at=now,
            expires_at=now + timedelta(days=6),
        )
    with unit_of_work(engine, write=True) as session:
        result = evaluate_accounts(session, ["acc_new"], at=now)
    assert result.fired == 2  # within 30 days, and within 7
    with unit_of_work(engine) as session:
        targets = sorted(session.scalars(select(AlertDelivery.target)))
    assert targets == [OWNER.email, OWNER.email, "portal", "portal"]


def test_the_evaluation_after_ingestion_leaves_expiry_notices_to_the_periodic_one(
    seeded: Engine, now: datetime
) -> None:
    # Usage never brings a grant into "expires within N days": after a batch, only the rules usage
    # moves are evaluated (every account has the two expiry rules); the periodic job sends the notice.
    grant(seeded, now, 40, expires_in=timedelta(days=5))
    add_rule(seeded, now, 7)
    with unit_of_work(seeded) as session:
        assert accounts_with_rules(session, ["acc_a"], after_usage=True) == []
        assert accounts_with_rules(session, ["acc_a"]) == ["acc_a"]
    assert evaluate_now(seeded, ["acc_a"], clock=fixed_clock(now), after_usage=True).rules_evaluated == 0
    assert notices(seeded) == []
    with unit_of_work(seeded, write=True) as session:
        create_rule(
            session,
            account_id="acc_a",
            rule=RuleInput(name="Low balance", kind="balance_below", threshold="500"),
            actor=OWNER,
            at=now,
        )
    after_batch = evaluate_now(seeded, ["acc_a"], clock=fixed_clock(now), after_usage=True)
    assert (after_batch.rules_evaluated, after_batch.fired) == (1, 1)  # the balance rule, not the expiry one
    assert notices(seeded) == []
    assert evaluate(seeded, now).fired == 1  # the periodic evaluation: the notice, once
    assert notices(seeded) != []
