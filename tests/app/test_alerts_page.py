"""The Alerts page (AppTest, SQLite and PostgreSQL): owners create rules with clear forms, watching
names the account's usage carries, see what fired and the sidebar badge; viewers see and cannot
change; a webhook secret shows once. (The Limits page: test_limits_page.py.)"""

from __future__ import annotations

import pytest

from app.resources import get_engine
from app.spend_ui import NOT_USED_YET
from core.db import unit_of_work
from core.spend.alerts import list_rules, list_webhooks
from tests.app.harness import as_read, fill, open_page, page_text, portal_url, signed_in, submit_form, table  # noqa: F401
from tests.app.seed import ALICE, VIVIAN

pytestmark = pytest.mark.usefixtures("portal_url")


def acme_rules() -> list:
    with unit_of_work(get_engine()) as session:
        return list_rules(session, "acc_acme")


def test_owner_creates_a_rule_that_fires_and_shows_everywhere() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    assert "No alert rules yet" in page_text(at)
    # Acme has 125 credits and 19.00 of usage: a balance of 106.00 < 200.00 credits.
    fill(at, "alerts.new.name", "Low balance")
    fill(at, "alerts.new.threshold", "200")
    at.text_input(key="alerts.new.emails").input("ops@acme.test")
    submit_form(at, "alerts.new.form")
    text = page_text(at)
    assert "Rule “Low balance” saved" in text and "It fired right away" in text
    assert "Alert 'Low balance' fired" in text  # the notification centre
    assert "Firing" in text and "Balance drops below 200.00 credits" in text
    assert "$" not in " ".join(str(cell) for row in table(at, 0) for cell in row.values())
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
    submit_form(at, "alerts.new.form")
    assert any(e.value.startswith("Percent of the budget: ") for e in at.error), [e.value for e in at.error]
    assert at.text_input(key="alerts.new.budget").value == "500"  # the form keeps what was typed
    assert acme_rules() == []


def test_percentage_rule_on_a_project_and_pause() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    at.selectbox(key="alerts.new.kind").set_value("spend_above")
    at.run()
    at.selectbox(key="alerts.new.scope").set_value("project")
    at.run()
    at.selectbox(key="alerts.new.project").set_value("chatbot")
    fill(at, "alerts.new.name", "Chatbot budget")
    fill(at, "alerts.new.budget", "10")
    fill(at, "alerts.new.percent", "80")
    submit_form(at, "alerts.new.form")
    (rule,) = acme_rules()
    assert (rule.scope, rule.scope_value, rule.budget_nanos, rule.percent) == (
        "project",
        "chatbot",
        10 * 10**9,
        80,
    )
    # Chatbot spent 6.00 (tokens) + 3.00 (requests) = 9.00 credits ≥ 80 % of 10.00.
    assert rule.state == "firing"
    at.button(key=f"alerts.pause{rule.rule_id}").click()
    at.run()
    assert acme_rules()[0].paused and "Paused" in page_text(at)


def test_webhook_secret_is_shown_once() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    fill(at, "alerts.hook_url", "https://hooks.acme.test/meterline")
    submit_form(at, "alerts.webhook_form")
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
    submit_form(owner, "alerts.new.form")
    fill(owner, "alerts.hook_url", "https://hooks.acme.test/meterline")
    submit_form(owner, "alerts.webhook_form")
    viewer = open_page(signed_in(VIVIAN), "alerts")
    text = page_text(viewer)
    assert "Low balance" in text and "owners and admins can change them" in text
    assert "hooks.acme.test" in text  # the webhooks are listed...
    # ...and nothing that changes a rule or a webhook is offered: no form, no button, no picker.
    assert not viewer.get("form_submit_button")
    assert not [b.label for b in viewer.button if b.key and b.key.startswith("alerts.")], [
        b.key for b in viewer.button
    ]
    assert not [
        w.key for w in [*viewer.selectbox, *viewer.text_input] if w.key and w.key.startswith("alerts.")
    ]
    assert not viewer.expander


def test_rule_scopes_are_chosen_from_the_names_usage_carries() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    at.selectbox(key="alerts.new.kind").set_value("spend_above").run()
    at.selectbox(key="alerts.new.scope").set_value("api_key").run()
    keys = at.selectbox(key="alerts.new.api_key")
    assert keys.options[:2] == ["key_1", "key_2"] and keys.options[2] == "Another API key, not used yet…"
    at.selectbox(key="alerts.new.scope").set_value("meter").run()
    assert at.selectbox(key="alerts.new.meter").options == ["Input tokens", "Requests"]  # both used
    at.selectbox(key="alerts.new.scope").set_value("project").run()
    assert at.selectbox(key="alerts.new.project").options == [
        "chatbot",
        "search",
        "Another project, not used yet…",
    ]


def test_a_rule_on_a_project_nothing_uses_is_warned_about_and_needs_a_yes() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    at.selectbox(key="alerts.new.kind").set_value("spend_above").run()
    at.selectbox(key="alerts.new.scope").set_value("project").run()
    at.selectbox(key="alerts.new.project").set_value(NOT_USED_YET).run()
    at.text_input(key="alerts.new.project.new").input("copilt").run()
    warning = next(w.value for w in at.warning if "copilt" in as_read(w.value))
    assert as_read(warning).startswith(
        "No usage under “copilt” yet: this rule watches nothing until requests"
    )
    fill(at, "alerts.new.name", "Copilot spend")
    fill(at, "alerts.new.threshold", "5")
    submit_form(at, "alerts.new.form")
    assert any(as_read(e.value).startswith("Project: no usage under “copilt” yet") for e in at.error)
    assert acme_rules() == []
    at.checkbox(key="alerts.new.confirm_unused").check()
    submit_form(at, "alerts.new.form")
    (rule,) = acme_rules()
    assert (rule.scope, rule.scope_value) == ("project", "copilt")
