"""Caps and rules changed through the API's commands (SQLite and PostgreSQL): two creates of one
request at once make one cap and one audit entry, and a PATCH's merge keeps what it does not name."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from core.accounts import Actor
from core.db import unit_of_work
from core.db.models import AuditLog, SpendCap
from core.spend import api_commands
from core.spend.alerts import RuleInput, create_rule, get_rule
from core.spend.change_log import Change
from tests.core.metering.catalog_setup import seed_catalog

KEY = Actor.customer_key(key_id=1, prefix="ml_live_abc123", account_id="acc_a", scopes=("spend:write",))


def _change(now: datetime, key: str | None) -> Change:
    return Change(actor=KEY, at=now, via={"customer_key": {"key_id": 1}}, idempotency_key=key)


def test_two_creates_with_one_idempotency_key_at_once_make_one_cap(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60))
    barrier = threading.Barrier(2)
    answers: list[tuple[dict[str, Any], bool]] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait()
            with unit_of_work(engine, write=True) as session:
                answers.append(
                    api_commands.create_cap(
                        session,
                        _change(now, "same-request"),
                        account_id="acc_a",
                        scope="project",
                        scope_value="copilot",
                        period="day",
                        limit="5",
                        mode="hard",
                    )
                )
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(replayed for _, replayed in answers) == [False, True]
    assert answers[0][0] == answers[1][0]
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(SpendCap)) == 1
        assert (
            session.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "spend.caps.create")
            )
            == 1
        )


def test_a_patch_keeps_the_fields_it_does_not_name(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60))
    rule = RuleInput(
        name="Copilot budget",
        kind="spend_above",
        scope="project",
        scope_value="copilot",
        budget="1000",
        percent="80",
        email_to=("ops@example.com",),
    )
    with unit_of_work(engine, write=True) as session:
        made = create_rule(session, account_id="acc_a", rule=rule, actor=Actor.system("t"), at=now)
        view = get_rule(session, "acc_a", made.rule_id)
    renamed = api_commands.patched_rule(view, {"name": "Renamed"})
    assert (renamed.budget, renamed.percent, renamed.scope_value, tuple(renamed.email_to)) == (
        "1000.000000000",
        80,
        "copilot",
        ("ops@example.com",),
    )
    amount = api_commands.patched_rule(view, {"threshold": "5"})
    assert (amount.threshold, amount.budget, amount.percent) == ("5", None, None)
    whole = api_commands.patched_rule(view, {"scope": "account"})
    assert (whole.scope, whole.scope_value) == ("account", "")
