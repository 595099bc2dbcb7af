"""The Alerts page's Slack section (AppTest, SQLite and PostgreSQL): an owner adds a channel (its
URL, a secret, shown once, then only its hint), a rule posts to it, a bad URL names the field,
a viewer only reads."""

from __future__ import annotations

import pytest

from app.resources import get_engine
from core.db import unit_of_work
from core.spend.alerts import list_rules
from core.spend.slack_hooks import list_slack_webhooks
from tests.app.harness import fill, open_page, page_text, portal_url, signed_in, submit_form  # noqa: F401
from tests.app.seed import ALICE, VIVIAN

pytestmark = pytest.mark.usefixtures("portal_url")
URL = "https://hooks.slack.com/services/T0ACME/B0OPS/s3cretTokenZ9x8"


def _add_slack(at) -> None:  # type: ignore[no-untyped-def]
    fill(at, "alerts.slack_label", "#ops-alerts")
    fill(at, "alerts.slack_url", URL)
    submit_form(at, "alerts.slack_form")


def test_the_slack_url_is_shown_once_and_a_rule_posts_to_it() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    _add_slack(at)
    assert [c.value for c in at.code if "hooks.slack.com" in c.value] == [URL]
    with unit_of_work(get_engine()) as session:
        (hook,) = list_slack_webhooks(session, "acc_acme")
    at.run()
    assert not [c.value for c in at.code if "hooks.slack.com" in c.value]  # gone on the next run
    text = page_text(at)
    assert URL not in text and "#ops-alerts" in text and "…Z9x8" in text
    at.selectbox(key="alerts.new.kind").set_value("spend_spike").run()
    fill(at, "alerts.new.name", "Spike")
    fill(at, "alerts.new.factor", "3")
    at.checkbox(key="alerts.new.in_app").uncheck()
    at.selectbox(key="alerts.new.slack").set_value(hook.slack_webhook_id)
    submit_form(at, "alerts.new.form")
    (rule,) = [r for r in _acme_rules() if r.name == "Spike"]
    assert (rule.slack_webhook_id, rule.notify_in_app, rule.factor_percent) == (
        hook.slack_webhook_id,
        False,
        300,
    )
    assert "Slack #ops-alerts" in page_text(at)  # the rules table's channels
    assert "3× a usual day of its weekday" in page_text(at)


def test_a_url_that_is_not_slacks_names_the_field_and_saves_nothing() -> None:
    at = open_page(signed_in(ALICE), "alerts")
    fill(at, "alerts.slack_label", "#ops")
    fill(at, "alerts.slack_url", "https://hooks.evil.test/services/T/B/x")
    submit_form(at, "alerts.slack_form")
    assert any(e.value.startswith("Slack incoming-webhook URL: ") for e in at.error), [
        e.value for e in at.error
    ]
    with unit_of_work(get_engine()) as session:
        assert list_slack_webhooks(session, "acc_acme") == []


def test_a_viewer_sees_the_slack_channels_and_no_form() -> None:
    _add_slack(open_page(signed_in(ALICE), "alerts"))
    viewer = open_page(signed_in(VIVIAN), "alerts")
    text = page_text(viewer)
    assert "#ops-alerts" in text and URL not in text
    assert not [
        w.key for w in [*viewer.text_input, *viewer.selectbox] if w.key and w.key.startswith("alerts.slack")
    ]


def _acme_rules() -> list:  # type: ignore[type-arg]
    with unit_of_work(get_engine()) as session:
        return list_rules(session, "acc_acme")
