"""Text typed into the portal's forms (alert rules, caps, webhooks, support reasons) that no
database can store, a NUL or a lone surrogate, is a ValidationError naming its field, and
nothing is written (PostgreSQL would refuse it with an error of its own). A name that is not one
line (a line separator, a control or an invisible format character in it) is refused the same way:
it would break every email subject it goes into."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.accounts import Actor, create_account, ensure_user
from core.db import unit_of_work
from core.db.models import Account, AlertRule, AlertWebhook, AuditLog, CreditGrant, SpendCap, User
from core.errors import ValidationError
from core.spend.alerts import RuleInput, create_rule, create_webhook
from core.spend.caps import set_cap
from core.support import SUPPORT, Agent, grant_credits_as_agent
from core.text import clean_text, is_clean_text, is_single_line, one_line, single_line_text
from tests.core.metering.catalog_setup import seed_catalog

BAD = ("bad\x00text", "bad\ud800text")
# Each breaks a line or hides in one: line and paragraph separators, NEXT LINE, VT, FF, CR LF,
# escape, a right-to-left override, a zero-width space.
NOT_ONE_LINE = ("\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\r\n", "\x1b", "\u202e", "\u200b")
NAMES = ("rule name", "rule scope", "rule email", "webhook", "cap scope", "account name")  # one line each
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
    "account name": (
        "name",
        lambda bad: lambda s, at: create_account(s, account_id="acc_new", name=f"New{bad}co", at=at),
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
    tables = (AlertRule, AlertWebhook, SpendCap, AuditLog, CreditGrant, Account)
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


@pytest.mark.parametrize("char", NOT_ONE_LINE, ids=[f"U+{ord(c[0]):04X}" for c in NOT_ONE_LINE])
@pytest.mark.parametrize("case", NAMES)
def test_a_name_that_is_not_one_line_is_refused_naming_its_field(
    engine: Engine, now: datetime, case: str, char: str
) -> None:
    seed_catalog(engine, now - timedelta(days=5))
    field, make = CASES[case]
    with unit_of_work(engine) as session:
        before = _rows(session)
    with pytest.raises(ValidationError) as refused, unit_of_work(engine, write=True) as session:
        make(f"Low_balance{char}prod")(session, now)
    assert refused.value.field == field
    with unit_of_work(engine) as session:
        assert _rows(session) == before


def test_a_support_reason_may_take_several_lines(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=5))
    with unit_of_work(engine, write=True) as session:
        CASES["support reason"][1]("Outage on Tuesday.\nSee ticket 42.")(session, now)


def test_a_member_name_from_the_sign_in_provider_is_kept_on_one_line(engine: Engine, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        ensure_user(session, email="maya@a.test", at=now, display_name="Maya\u2028Chen\u202e\r\n")
    with unit_of_work(engine) as session:
        assert session.scalar(select(User.display_name).where(User.email == "maya@a.test")) == "Maya Chen"
    with pytest.raises(ValidationError) as refused, unit_of_work(engine, write=True) as session:
        ensure_user(session, email="maya\u2028@a.test", at=now)
    assert refused.value.field == "email"


def test_one_line_keeps_what_a_name_may_hold() -> None:
    for text in (
        "Low balance",
        "émoji 🚀",
        "family 👨\u200d👩\u200d👧",
        "نیم\u200cفاصله",
        "non\u00a0breaking",
    ):
        assert (
            is_single_line(text) and single_line_text(text, field="name") == text and one_line(text) == text
        )
    assert one_line("Low balance\u2028prod\r\n\x0b\x0cx\x85y\u2029z") == "Low balance prod x y z"
    with pytest.raises(ValidationError, match="U\\+2028 LINE SEPARATOR") as refused:
        single_line_text("a\u2028b", field="scope_value")
    assert (refused.value.field, refused.value.code) == ("scope_value", "not_single_line")
