"""The Alerts page and the credits-expiring rules (AppTest, SQLite and PostgreSQL): the default 30- and
7-day rules are listed like any rule, a new one is made with its own days field, and the notice it
sends names the grant, what is left, when it expires and what would go unused."""

from __future__ import annotations

import pytest

from app.resources import get_engine
from core.clock import system_clock
from core.db import unit_of_work
from core.spend.alerts import list_rules
from core.spend.evaluate import evaluate_accounts
from core.spend.expiring import add_default_expiry_rules
from tests.app.harness import fill, open_page, page_text, portal_url, signed_in, submit_form, table  # noqa: F401
from tests.app.seed import ALICE, VIVIAN

pytestmark = pytest.mark.usefixtures("portal_url")


def _with_defaults() -> None:
    with unit_of_work(get_engine(), write=True) as session:
        add_default_expiry_rules(session, "acc_acme", at=system_clock())


def test_the_default_rules_are_listed_like_any_rule() -> None:
    _with_defaults()
    at = open_page(signed_in(VIVIAN), "alerts")
    rows = table(at, 0)
    assert [r["Rule"] for r in rows] == ["Credits expire within 30 days", "Credits expire within 7 days"]
    assert rows[0]["Condition"].startswith("Credits of a grant expire within 30 days")
    assert rows[0]["Channels"] == f"in-app, {ALICE}"
    assert "as of " in page_text(at)  # the figures that move say when they are from


def test_owner_adds_an_expiry_rule_and_is_told_once() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    at.selectbox(key="alerts.new.kind").set_value("credits_expiring")
    at.run()
    assert at.selectbox(key="alerts.new.scope").options == ["Whole account"]
    fill(at, "alerts.new.name", "Welcome credits")
    fill(at, "alerts.new.days", "10")
    submit_form(at, "alerts.new.form")
    text = page_text(at)
    assert "It fired right away" in text
    assert "Alert 'Welcome credits' fired" in text  # the notification centre
    assert "of promotional grant #" in text and "expire in 4 days" in text
    (rule,) = [r for r in _acme_rules() if r.kind == "credits_expiring"]
    assert rule.days == 10
    with unit_of_work(get_engine(), write=True) as session:  # the periodic job, later: nothing new
        assert evaluate_accounts(session, ["acc_acme"], at=system_clock()).fired == 0


def test_days_out_of_range_name_the_field() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    at.selectbox(key="alerts.new.kind").set_value("credits_expiring")
    at.run()
    fill(at, "alerts.new.name", "Too far")
    fill(at, "alerts.new.days", "400")
    submit_form(at, "alerts.new.form")
    assert any(
        e.value.startswith("Tell me when a grant's credits expire within (days): ") for e in at.error
    ), [e.value for e in at.error]
    assert _acme_rules() == []


def _acme_rules() -> list:
    with unit_of_work(get_engine()) as session:
        return list_rules(session, "acc_acme")
