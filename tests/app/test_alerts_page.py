"""The Alerts and Limits pages (AppTest, SQLite and PostgreSQL): owners create rules and caps with clear
forms, see what fired and the sidebar badge; viewers see and cannot change; a webhook secret shows once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from core.clock import system_clock
from core.db import unit_of_work
from core.metering import ingest_events
from core.spend.alerts import list_rules, list_webhooks
from core.spend.caps import list_caps
from tests.app.harness import open_page, page_text, portal_url, signed_in  # noqa: F401
from tests.app.seed import ALICE, VIVIAN, event

pytestmark = pytest.mark.usefixtures("portal_url")


def fill(at: AppTest, key: str, value: str) -> None:
    at.text_input(key=key).input(value)


def submit(at: AppTest, form_key: str) -> AppTest:
    buttons = [b for b in at.button if getattr(b, "form_id", None) == form_key]
    assert buttons, f"no submit button in {form_key}"
    buttons[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def acme_rules() -> list:
    with unit_of_work(get_engine()) as session:
        return list_rules(session, "acc_acme")


def test_owner_creates_a_rule_that_fires_and_shows_everywhere() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    assert "No alert rules yet" in page_text(at)
    # Acme has 125 credits and $19 of usage: balance $106 < $200.
    fill(at, "alerts.new.name", "Low balance")
    fill(at, "alerts.new.threshold", "200")
    at.text_input(key="alerts.new.emails").input("ops@acme.test")
    submit(at, "alerts.new.form")
    text = page_text(at)
    assert "Rule “Low balance” saved" in text and "It fired right away" in text
    assert "Alert 'Low balance' fired" in text  # the notification centre
    assert "Firing" in text and "$200.00" in text
    assert "Notifications · 1 unread" in text  # the sidebar badge
    (rule,) = acme_rules()
    assert (rule.kind, rule.threshold_nanos, rule.email_to, rule.state) == (
        "balance_below",
        200 * 10**9,
        ("ops@acme.test",),
        "firing",
    )
    at.button(key="alerts.mark_read").click()
    at.run()
    assert "1 unread" not in page_text(at)


def test_a_bad_threshold_names_the_field_and_keeps_the_form() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    at.selectbox(key="alerts.new.kind").set_value("spend_above")
    at.run()
    fill(at, "alerts.new.name", "Budget")
    fill(at, "alerts.new.budget", "500")
    fill(at, "alerts.new.percent", "eighty")
    submit(at, "alerts.new.form")
    assert any("field: percent" in e.value for e in at.error)
    assert at.text_input(key="alerts.new.budget").value == "500"  # the form keeps what was typed
    assert acme_rules() == []


def test_percentage_rule_on_a_project_and_pause() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    at.selectbox(key="alerts.new.kind").set_value("spend_above")
    at.run()
    at.selectbox(key="alerts.new.scope").set_value("project")
    at.run()
    fill(at, "alerts.new.name", "Chatbot budget")
    fill(at, "alerts.new.scope_value", "chatbot")
    fill(at, "alerts.new.budget", "10")
    fill(at, "alerts.new.percent", "80")
    submit(at, "alerts.new.form")
    (rule,) = acme_rules()
    assert (rule.scope, rule.scope_value, rule.budget_nanos, rule.percent) == (
        "project",
        "chatbot",
        10 * 10**9,
        80,
    )
    # Chatbot spent $6 (tokens) + $3 (requests) = $9 ≥ 80 % of $10.
    assert rule.state == "firing"
    at.button(key=f"alerts.pause{rule.rule_id}").click()
    at.run()
    assert acme_rules()[0].paused and "Paused" in page_text(at)


def test_webhook_secret_is_shown_once() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    fill(at, "alerts.hook_url", "https://hooks.acme.test/meterline")
    submit(at, "alerts.webhook_form")
    with unit_of_work(get_engine()) as session:
        (hook,) = list_webhooks(session, "acc_acme")
    secrets_shown = [c.value for c in at.code if c.value.startswith("whsec_")]
    assert len(secrets_shown) == 1 and secrets_shown[0].endswith(hook.secret_hint)
    at.run()
    assert not [c.value for c in at.code if c.value.startswith("whsec_")]  # gone on the next run
    assert f"whsec_…{hook.secret_hint}" in page_text(at)


def test_a_viewer_sees_rules_and_caps_but_no_forms() -> None:
    owner = open_page(signed_in(ALICE), "alerts")
    fill(owner, "alerts.new.name", "Low balance")
    fill(owner, "alerts.new.threshold", "50")
    submit(owner, "alerts.new.form")
    viewer = open_page(signed_in(VIVIAN), "alerts")
    text = page_text(viewer)
    assert "Low balance" in text and "owners and admins can change them" in text
    assert not [f for f in viewer.text_input if f.key and f.key.startswith("alerts.new")]
    limits = open_page(signed_in(VIVIAN), "limits")
    assert "Owners and admins of this account can set them" in page_text(limits)
    assert not [f for f in limits.text_input if f.key == "limits.limit"]


def test_owner_sets_a_hard_cap_and_sees_spend_and_overshoot() -> None:
    at = open_page(signed_in(ALICE), "limits")
    assert "No caps yet" in page_text(at)
    fill(at, "limits.limit", "15")
    submit(at, "limits.cap_form")
    (cap,) = (lambda: list_caps_now())()
    assert (cap.scope, cap.limit_nanos, cap.mode) == ("account", 15 * 10**9, "hard")
    text = page_text(at)
    # Acme spent $19 this month ($6 today, $10 yesterday, $3 two days ago) — if those days are in this month.
    assert "$15.00" in text and "Hard" in text
    now = system_clock()
    with unit_of_work(get_engine(), write=True) as session:
        ingest_events(
            session, [event("over", "acc_acme", "requests", 2_000, now - timedelta(minutes=5))], at=now
        )
    at.run()
    assert "past the $15.00 hard cap" in page_text(at)
    assert "Usage is always recorded, never dropped" in page_text(at)


def list_caps_now() -> list:
    with unit_of_work(get_engine()) as session:
        return list_caps(session, "acc_acme")


def test_bad_cap_names_the_field() -> None:
    at = open_page(signed_in(ALICE), "limits")
    fill(at, "limits.limit", "-5")
    submit(at, "limits.cap_form")
    assert any("field: limit" in e.value for e in at.error)
    assert list_caps_now() == []


def test_overdraft_is_saved() -> None:
    at = open_page(signed_in(ALICE), "limits")
    fill(at, "limits.overdraft", "25")
    submit(at, "limits.overdraft_form")
    assert "an overdraft of $25.00" in page_text(at)
