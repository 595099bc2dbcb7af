"""Text typed into the portal's forms (alert rules, caps, webhooks, support reasons) that no
database can store, a NUL or a lone surrogate, is a ValidationError naming its field, and
nothing is written (PostgreSQL would refuse it with an error of its own)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.accounts import Actor
from core.db import unit_of_work
from core.db.models import AlertRule, AlertWebhook, AuditLog, CreditGrant, SpendCap
from core.errors import ValidationError
from core.spend.alerts import RuleInput, create_rule, create_webhook
from core.spend.caps import set_cap
from core.support import SUPPORT, Agent, grant_credits_as_agent
from core.text import clean_text, is_clean_text
from tests.core.metering.catalog_setup import seed_catalog

BAD = ("bad\x00text", "bad\ud800text")
SAM = Agent("sam@meterline.example", SUPPORT)
SETUP = Actor.system("tests")


def _rule(name: str = "Low balance", **kwargs: object) -> Callable[[Session, datetime], object]:
    rule = RuleInput(name=name, kind="spend_above", threshold="10", **kwargs)  # type: ignore[arg-type]
    return lambda session, at: create_rule(session, account_id="acc_a", rule=rule, actor=SETUP, at=at)


CASES: dict[str, tuple[str, Callable[[str], Callable[[Session, datetime], object]]]] = {
    "rule name": ("name", lambda bad: _rule(bad)),
    "rule scope": ("scope_value", lambda bad: _rule(scope="project", scope_value=bad)),
    "rule email": ("email_to", lambda bad: _rule(notify_in_app=False, email_to=(f"a{bad}@b.test",))),
    "webhook": (
        "url",
        lambda bad: (
            lambda s, at: create_webhook(
                s, account_id="acc_a", url=f"https://hooks.example/{bad}", actor=SETUP, at=at
            )
        ),
    ),
    "cap scope": (
        "scope_value",
        lambda bad: (
            lambda s, at: set_cap(
                s,
                account_id="acc_a",
                scope="project",
                scope_value=bad,
                limit="5",
                mode="hard",
                actor=SETUP,
                at=at,
            )
        ),
    ),
    "support reason": (
        "reason",
        lambda bad: (
            lambda s, at: grant_credits_as_agent(
                s, SAM, account_id="acc_a", amount_nanos=10**9, reason=bad, at=at
            )
        ),
    ),
}


def _rows(session: Session) -> tuple[int, ...]:
    tables = (AlertRule, AlertWebhook, SpendCap, AuditLog, CreditGrant)
    return tuple(session.scalar(select(func.count()).select_from(table)) or 0 for table in tables)


@pytest.mark.parametrize("bad", BAD, ids=["nul", "surrogate"])
@pytest.mark.parametrize("case", list(CASES))
def test_unstorable_text_is_refused_naming_its_field(
    engine: Engine, now: datetime, case: str, bad: str
) -> None:
    seed_catalog(engine, now - timedelta(days=5))
    field, make = CASES[case]
    with unit_of_work(engine) as session:
        before = _rows(session)
    with pytest.raises(ValidationError) as refused, unit_of_work(engine, write=True) as session:
        make(bad)(session, now)
    assert refused.value.field == field
    with unit_of_work(engine) as session:
        assert _rows(session) == before


def test_clean_text_passes_what_can_be_stored() -> None:
    for text in ("", "plain", "émoji 🚀", "tab\tand\nnewline"):
        assert is_clean_text(text) and clean_text(text, field="x") == text
    assert not is_clean_text("\x00") and not is_clean_text("\udfff")
