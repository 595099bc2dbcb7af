"""Slack as an alert channel: the URL's check, the Block Kit message, and delivery to a receiver on
loopback (Slack's own host name answered by the test network and served over TLS from a test CA,
or the development override origin), retried with backoff, in the delivery log without its URL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from core.accounts import Actor, add_member
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import AlertDelivery
from core.errors import NotFound, PermissionDenied, ValidationError
from core.spend.alerts import RuleInput, create_rule, delivery_log, get_rule
from core.spend.deliveries import backoff, deliver_due
from core.spend.runtime import evaluate_now
from core.spend.slack import slack_message, validate_slack_url
from core.spend.slack_hooks import create_slack_webhook, delete_slack_webhook, list_slack_webhooks
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.loopback_network import Endpoint, LoopbackCA, LoopbackNetwork
from tests.core.spend.spend_setup import spend

OWNER = Actor.member("owner@a.test")
SLACK_URL = "https://hooks.slack.com/services/T0001/B0002/abcdefXYZ123"
SLACK_PUBLIC = "93.184.215.20"  # what hooks.slack.com answers on the test network


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=40))
    with unit_of_work(engine, write=True) as session:
        add_member(session, account_id="acc_a", email=OWNER.email, role="owner", at=now)
    return engine


def _slack_rule(engine: Engine, now: datetime, url: str) -> int:
    """A Slack webhook at ``url`` and a rule "balance below 90" posting to it only; the hook's id."""
    with unit_of_work(engine, write=True) as session:
        hook = create_slack_webhook(
            session, account_id="acc_a", label="#ops-alerts", url=url, actor=OWNER, at=now
        )
        create_rule(
            session,
            account_id="acc_a",
            rule=RuleInput(
                name="Low <!channel> balance",
                kind="balance_below",
                threshold="90",
                notify_in_app=False,
                slack_webhook_id=hook.slack_webhook.slack_webhook_id,
            ),
            actor=OWNER,
            at=now,
        )
    return hook.slack_webhook.slack_webhook_id


def _assert_block_kit(message: dict[str, Any], *, link: str) -> None:
    assert [block["type"] for block in message["blocks"]] == ["header", "section", "actions"]
    header, section, actions = message["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "Low <!channel> balance fired", "emoji": False}
    assert section["text"]["type"] == "mrkdwn"
    assert "&lt;!channel&gt;" in section["text"]["text"] and "<!channel>" not in section["text"]["text"]
    fields = [field["text"] for field in section["fields"]]
    assert fields[:3] == [
        "*Value*\n80.00 credits",
        "*Threshold*\n90.00 credits",
        "*Status*\nFired: crossed the threshold",
    ]
    assert fields[3] == "*When*\nNov 20, 2026, 12:00 UTC"
    button = actions["elements"][0]
    assert (button["type"], button["text"]["text"], button["url"]) == ("button", "Open Alerts", link)
    text = message["text"]
    assert text.startswith("Low &lt;!channel&gt; balance fired: ")
    assert "value 80.00 credits, threshold 90.00 credits" in text and link in text


def test_slack_gets_block_kit_over_tls_retried_on_500_until_delivered(
    seeded: Engine,
    now: datetime,
    network: LoopbackNetwork,
    start_endpoint: Callable[..., Endpoint],
    trusted_ca: LoopbackCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METERLINE_PUBLIC_URL", "https://portal.meterline.test/")
    slack = start_endpoint([500], tls=trusted_ca.server_context("hooks.slack.com"))
    network.name("hooks.slack.com", [SLACK_PUBLIC])
    network.route(SLACK_PUBLIC, 443, slack.address)
    _slack_rule(seeded, now, SLACK_URL)
    spend(seeded, "e1", 20, now - timedelta(hours=1))

    evaluate_now(seeded, ["acc_a"], clock=fixed_clock(now))  # the first attempt: HTTP 500
    with unit_of_work(seeded) as session:
        row = session.scalars(select(AlertDelivery).where(AlertDelivery.channel == "slack")).one()
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, now + backoff(1))
        assert "HTTP 500" in row.last_error
    assert deliver_due(seeded, clock=fixed_clock(now + timedelta(seconds=5))).retrying == 0  # not due
    assert deliver_due(seeded, clock=fixed_clock(now + backoff(1))).delivered == 1

    assert [seen.path for seen in slack.seen] == ["/services/T0001/B0002/abcdefXYZ123"] * 2
    assert slack.server_names == ["hooks.slack.com", "hooks.slack.com"]  # TLS to Slack's name
    assert slack.seen[-1].headers["Content-Type"] == "application/json"
    _assert_block_kit(json.loads(slack.seen[-1].body), link="https://portal.meterline.test/alerts")

    with unit_of_work(seeded) as session:
        log = delivery_log(session, "acc_a")
    assert [(d.channel, d.status, d.attempts, d.last_error) for d in log] == [("slack", "delivered", 2, "")]
    assert log[0].target == "#ops-alerts (Slack …Z123)"  # the URL, a credential, is not in the log
    assert all("hooks.slack.com" not in d.target for d in log)


def test_the_override_origin_reaches_a_local_receiver_when_private_targets_are_allowed(
    seeded: Engine, now: datetime, start_endpoint: Callable[..., Endpoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("METERLINE_PUBLIC_URL", raising=False)
    monkeypatch.setenv("METERLINE_WEBHOOKS_ALLOW_PRIVATE", "1")
    receiver = start_endpoint([503, 500])
    origin = f"http://127.0.0.1:{receiver.port}"
    monkeypatch.setenv("METERLINE_SLACK_HOOKS_ORIGIN", origin)
    _slack_rule(seeded, now, f"{origin}/services/T1/B2/secret")
    spend(seeded, "e1", 20, now - timedelta(hours=1))
    evaluate_now(seeded, ["acc_a"], clock=fixed_clock(now))
    second = now + backoff(1)
    assert deliver_due(seeded, clock=fixed_clock(second)).retrying == 1
    assert deliver_due(seeded, clock=fixed_clock(second + backoff(2))).delivered == 1
    assert len(receiver.seen) == 3
    message = json.loads(receiver.seen[-1].body)
    # Without METERLINE_PUBLIC_URL there is no absolute link to give: no button, the text says so.
    assert [block["type"] for block in message["blocks"]] == ["header", "section"]
    assert "Open Alerts" not in message["text"]
    with unit_of_work(seeded) as session:
        (slack,) = delivery_log(session, "acc_a")
    assert (slack.status, slack.attempts) == ("delivered", 3)


def test_a_slack_webhook_removed_while_retrying_fails_its_delivery_for_good(
    seeded: Engine, now: datetime, network: LoopbackNetwork
) -> None:
    hook_id = _slack_rule(seeded, now, SLACK_URL)  # hooks.slack.com has no answer on this network
    spend(seeded, "e1", 20, now - timedelta(hours=1))
    evaluate_now(seeded, ["acc_a"], clock=fixed_clock(now))
    with unit_of_work(seeded, write=True) as session:
        (pending,) = delivery_log(session, "acc_a")
        assert (pending.status, pending.last_error) == (
            "pending",
            "the URL's host name does not resolve (DNS)",
        )
        delete_slack_webhook(session, account_id="acc_a", slack_webhook_id=hook_id, actor=OWNER, at=now)
    assert deliver_due(seeded, clock=fixed_clock(now + backoff(1))).failed == 1
    with unit_of_work(seeded) as session:
        (failed,) = delivery_log(session, "acc_a")
        assert (failed.status, failed.attempts) == ("failed", 2)
        assert failed.last_error == "the Slack webhook was removed"
        assert list_slack_webhooks(session, "acc_a") == []
        assert get_rule(session, "acc_a", 1).slack_webhook_id is None


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T1/B2/x",  # not https
        "https://hooks.slack.com.evil.test/services/T1/B2/x",
        "https://evil.test/services/T1/B2/x",
        "https://hooks.slack.com:8443/services/T1/B2/x",
        "https://user@hooks.slack.com/services/T1/B2/x",
        "https://hooks.slack.com/services/T1/B2/x?redirect=1",
        "https://hooks.slack.com/triggers/T1/B2/x",
        "https://hooks.slack.com/services/T1/../x",
        "https://127.0.0.1/services/T1/B2/x",
        "https://hooks.slack.com/services/T1/B2/x\u2028y",
        "",
    ],
)
def test_only_slacks_own_incoming_webhook_urls_are_accepted(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("METERLINE_SLACK_HOOKS_ORIGIN", raising=False)
    with pytest.raises(ValidationError) as refused:
        validate_slack_url(url)
    assert refused.value.field == "url"


def test_the_override_origin_is_ignored_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERLINE_SLACK_HOOKS_ORIGIN", "http://127.0.0.1:9")
    monkeypatch.setenv("METERLINE_ENV", "production")
    monkeypatch.delenv("METERLINE_WEBHOOKS_ALLOW_PRIVATE", raising=False)
    with pytest.raises(ValidationError):
        validate_slack_url("http://127.0.0.1:9/services/T1/B2/x")
    assert validate_slack_url("https://HOOKS.slack.com/services/T1/B2/x") == (
        "https://hooks.slack.com/services/T1/B2/x"
    )


def test_the_slack_url_is_shown_once_then_only_its_hint(seeded: Engine, now: datetime) -> None:
    with unit_of_work(seeded, write=True) as session:
        made = create_slack_webhook(
            session, account_id="acc_a", label="#billing", url=SLACK_URL, actor=OWNER, at=now
        )
    assert made.url == SLACK_URL
    with unit_of_work(seeded) as session:
        (listed,) = list_slack_webhooks(session, "acc_a")
    assert listed.shown == "#billing (Slack …Z123)"
    assert SLACK_URL not in repr(listed)
    with unit_of_work(seeded, write=True) as session:  # the same form sent twice: one channel
        again = create_slack_webhook(
            session, account_id="acc_a", label="#billing", url=SLACK_URL, actor=OWNER, at=now
        )
        assert again.slack_webhook == made.slack_webhook
        with pytest.raises(ValidationError) as refused:
            create_slack_webhook(
                session, account_id="acc_a", label="#ops", url=SLACK_URL, actor=OWNER, at=now
            )
        assert (refused.value.field, refused.value.code) == ("url", "already_added")
    with unit_of_work(seeded) as session:
        assert len(list_slack_webhooks(session, "acc_a")) == 1


def test_a_viewer_may_not_add_a_slack_webhook_and_another_accounts_is_not_found(
    seeded: Engine, now: datetime
) -> None:
    viewer = Actor.member("viewer@a.test")
    with unit_of_work(seeded, write=True) as session:
        add_member(session, account_id="acc_a", email=viewer.email, role="viewer", at=now)
    with pytest.raises(PermissionDenied), unit_of_work(seeded, write=True) as session:
        create_slack_webhook(session, account_id="acc_a", label="#x", url=SLACK_URL, actor=viewer, at=now)
    with unit_of_work(seeded, write=True) as session:
        made = create_slack_webhook(
            session, account_id="acc_a", label="#x", url=SLACK_URL, actor=OWNER, at=now
        )
    with pytest.raises(NotFound), unit_of_work(seeded, write=True) as session:
        create_rule(
            session,
            account_id="acc_b",
            rule=RuleInput(
                name="x",
                kind="balance_below",
                threshold="1",
                slack_webhook_id=made.slack_webhook.slack_webhook_id,
            ),
            actor=Actor.system("tests"),
            at=now,
        )


def test_a_rule_with_slack_only_is_a_rule_with_a_channel(seeded: Engine, now: datetime) -> None:
    _slack_rule(seeded, now, SLACK_URL)
    with unit_of_work(seeded) as session:
        rule = get_rule(session, "acc_a", 1)
    assert rule.slack_webhook_id is not None and not rule.notify_in_app


def test_a_cap_links_to_limits_and_a_resolution_says_so() -> None:
    payload = {
        "type": "cap.resolved",
        "subject": "Hard cap on the whole account",
        "condition": "Spend this month reaches the 500.00 credits cap",
        "message": "Acme: Hard cap on the whole account resolved — back from the threshold.",
        "value": 1,
        "threshold": 500 * 10**9,
        "unit": "nanos",
        "cap": {"id": 1},
    }
    message = slack_message(payload, when="Nov 20, 2026, 12:00 UTC", base_url="https://p.test")
    assert message["blocks"][0]["text"]["text"] == "Hard cap on the whole account resolved"
    assert message["blocks"][1]["fields"][2]["text"] == "*Status*\nResolved: back from the threshold"
    assert message["blocks"][2]["elements"][0]["url"] == "https://p.test/limits"
    assert message["text"].endswith("Open Limits: https://p.test/limits")
