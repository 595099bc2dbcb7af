"""Alert messages over real channels: email to an aiosmtpd server on loopback, webhooks to a local
HTTP receiver that checks the signature, retries with exponential backoff, and the delivery log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from core.accounts import Actor, add_member
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import Account, AlertDelivery
from core.spend.alerts import RuleInput, create_rule, create_webhook, delivery_log
from core.spend.channels import SIGNATURE_HEADER, sign, smtp_settings, verify
from core.spend.deliveries import MAX_ATTEMPTS, backoff, deliver_due
from core.spend.runtime import evaluate_now
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.spend_setup import spend
from tests.e2e.conftest import free_port

OWNER = Actor.member("owner@a.test")


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}?from=alerts@meterline.test", inbox
    finally:
        controller.stop()


class Receiver:
    """A tiny HTTP server thread: answers with the next planned status, records what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k: v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/meterline"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=40))
    with unit_of_work(engine, write=True) as session:
        add_member(session, account_id="acc_a", email=OWNER.email, role="owner", at=now)
    return engine


def _rule(engine: Engine, now: datetime, **fields: Any) -> None:
    with unit_of_work(engine, write=True) as session:
        create_rule(
            session,
            account_id="acc_a",
            rule=RuleInput(name="Low balance", kind="balance_below", threshold="90", **fields),
            actor=OWNER,
            at=now,
        )


def test_email_reaches_a_real_smtp_server(
    seeded: Engine, now: datetime, smtp_server: tuple[str, Inbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, inbox = smtp_server
    monkeypatch.setenv("SMTP_URL", url)
    with unit_of_work(seeded, write=True) as session:
        session.get(Account, "acc_a").timezone = "America/Los_Angeles"  # type: ignore[union-attr]
    _rule(seeded, now, email_to=["ops@a.test"])
    spend(seeded, "e1", 20, now - timedelta(hours=1))
    result = evaluate_now(seeded, ["acc_a"], clock=fixed_clock(now))
    assert result.fired == 1
    assert len(inbox.messages) == 1
    sender, recipients, raw = inbox.messages[0]
    message = message_from_bytes(raw)
    assert (sender, recipients) == ("alerts@meterline.test", ["ops@a.test"])
    assert message["Subject"] == "[Meterline] Alert 'Low balance' fired"
    body = message.get_payload(decode=True).decode()
    assert "now 80.00 credits" in body and "below 90.00 credits" in body
    assert "At: Nov 20, 2026, 04:00 PST" in body  # in the account's zone, named
    with unit_of_work(seeded) as session:
        log = delivery_log(session, "acc_a")
    assert {(d.channel, d.target, d.status, d.attempts) for d in log} == {
        ("email", "ops@a.test", "delivered", 1),
        ("in_app", "portal", "delivered", 1),
    }


def test_email_without_smtp_url_fails_once_and_says_why(
    seeded: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_URL", raising=False)
    _rule(seeded, now, email_to=["ops@a.test"])
    spend(seeded, "e1", 20, now - timedelta(hours=1))
    evaluate_now(seeded, ["acc_a"], clock=fixed_clock(now))
    with unit_of_work(seeded) as session:
        email = next(d for d in delivery_log(session, "acc_a") if d.channel == "email")
    assert (email.status, email.attempts) == ("failed", 1)
    assert "SMTP_URL" in email.last_error


def test_smtp_url_forms() -> None:
    plain = smtp_settings("smtp://127.0.0.1:2525")
    assert plain is not None and (plain.host, plain.port, plain.tls, plain.username) == (
        "127.0.0.1",
        2525,
        False,
        None,
    )
    secure = smtp_settings("smtps://me%40x.test:p%3Ass@mail.x.test?from=a@x.test")
    assert secure is not None and (
        secure.port,
        secure.tls,
        secure.username,
        secure.password,
        secure.sender,
    ) == (
        465,
        True,
        "me@x.test",
        "p:ss",
        "a@x.test",
    )
    assert smtp_settings("") is None
    with pytest.raises(ValueError):
        smtp_settings("http://mail.x.test")


def test_webhook_is_signed_and_retried_with_backoff_until_delivered(seeded: Engine, now: datetime) -> None:
    receiver = Receiver([500, 503])
    try:
        with unit_of_work(seeded, write=True) as session:
            hook = create_webhook(session, account_id="acc_a", url=receiver.url, actor=OWNER, at=now)
        _rule(seeded, now, webhook_id=hook.webhook.webhook_id)
        spend(seeded, "e1", 20, now - timedelta(hours=1))
        evaluate_now(seeded, ["acc_a"], clock=fixed_clock(now))  # first attempt: 500
        with unit_of_work(seeded) as session:
            row = session.scalars(select(AlertDelivery).where(AlertDelivery.channel == "webhook")).one()
            assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, now + backoff(1))
            assert "HTTP 500" in row.last_error
        # Not due yet: nothing is sent before the backoff has passed.
        assert deliver_due(seeded, clock=fixed_clock(now + timedelta(seconds=10))).retrying == 0
        second = now + backoff(1)
        assert deliver_due(seeded, clock=fixed_clock(second)).retrying == 1  # 503
        third = second + backoff(2)
        assert backoff(2) == 2 * backoff(1)
        assert deliver_due(seeded, clock=fixed_clock(third)).delivered == 1
        assert len(receiver.received) == 3
        for headers, body in receiver.received:
            assert verify(hook.secret, headers[SIGNATURE_HEADER], body, now=int(now.timestamp()) + 200)
            assert not verify("whsec_wrong", headers[SIGNATURE_HEADER], body, now=int(now.timestamp()) + 200)
            assert headers["Meterline-Delivery"] == str(row.id)
        payload = json.loads(receiver.received[-1][1])
        assert payload["type"] == "alert.fired" and payload["account_id"] == "acc_a"
        assert (payload["value"], payload["threshold"], payload["unit"]) == (80 * 10**9, 90 * 10**9, "nanos")
        assert (payload["at"], payload["timezone"]) == ("2026-11-20T12:00:00Z", "UTC")  # machine fields
        assert "below 90.00 credits (now 80.00 credits)" in payload["message"]  # the words follow the rule
        assert payload["rule"]["name"] == "Low balance"
        with unit_of_work(seeded) as session:
            row = session.get(AlertDelivery, row.id)
            assert row is not None and (row.status, row.attempts, row.last_error) == ("delivered", 3, "")
    finally:
        receiver.close()


def test_webhook_gives_up_after_the_last_attempt(seeded: Engine, now: datetime) -> None:
    receiver = Receiver([500] * MAX_ATTEMPTS)
    try:
        with unit_of_work(seeded, write=True) as session:
            hook = create_webhook(session, account_id="acc_a", url=receiver.url, actor=OWNER, at=now)
        _rule(seeded, now, webhook_id=hook.webhook.webhook_id, notify_in_app=False)
        spend(seeded, "e1", 20, now - timedelta(hours=1))
        evaluate_now(seeded, ["acc_a"], clock=fixed_clock(now))
        at = now
        for attempt in range(1, MAX_ATTEMPTS):
            at += backoff(attempt)
            deliver_due(seeded, clock=fixed_clock(at))
        with unit_of_work(seeded) as session:
            (only,) = delivery_log(session, "acc_a")
        assert (only.status, only.attempts) == ("failed", MAX_ATTEMPTS)
        assert len(receiver.received) == MAX_ATTEMPTS
    finally:
        receiver.close()


def test_a_slow_endpoint_does_not_hold_a_transaction_or_block_others(seeded: Engine, now: datetime) -> None:
    """While a webhook is being sent no transaction is open: ingestion commits meanwhile."""
    release = threading.Event()
    received = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.set()
            release.wait(10)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with unit_of_work(seeded, write=True) as session:
            hook = create_webhook(
                session,
                account_id="acc_a",
                url=f"http://127.0.0.1:{server.server_address[1]}/",
                actor=OWNER,
                at=now,
            )
        _rule(seeded, now, webhook_id=hook.webhook.webhook_id)
        spend(seeded, "e1", 20, now - timedelta(hours=1))
        sender = threading.Thread(
            target=evaluate_now, args=(seeded, ["acc_a"]), kwargs={"clock": fixed_clock(now)}
        )
        sender.start()
        assert received.wait(10)
        began = time.monotonic()
        spend(seeded, "e2", 1, now - timedelta(minutes=30))  # a write transaction, while the POST hangs
        assert time.monotonic() - began < 5
        release.set()
        sender.join(10)
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_signature_format() -> None:
    assert sign("whsec_x", 1700000000, b'{"a":1}').startswith("t=1700000000,v1=")
    header = sign("whsec_x", 1700000000, b"{}")
    assert verify("whsec_x", header, b"{}", now=1700000100)
    assert not verify("whsec_x", header, b"{}", now=1700000000 + 3600)  # too old: a replay
    assert not verify("whsec_x", header, b'{"a":1}', now=1700000100)  # another body
