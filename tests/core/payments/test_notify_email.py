"""Customers are told by email (with SMTP_URL) and support gets disputes; nothing is sent for a rollback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from core.db import unit_of_work
from core.payments import start_checkout
from core.payments.notify import notify_customer
from core.payments.sandbox import CARD_SUCCEEDS
from tests.core.payments.helpers import (
    ACCOUNT,
    OWNER,
    PAGE_URL,
    MovableClock,
    make_account,
    provider,
    sandbox,
    top_up_row,
)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"

    def wait_for(self, count: int, timeout_s: float = 10) -> list[Message]:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{port}")
    monkeypatch.setenv("METERLINE_SUPPORT_EMAILS", "help@meterline.test")
    try:
        yield handler
    finally:
        controller.stop()


def test_customer_and_support_are_emailed(engine: Engine, now: datetime, inbox: Inbox) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    view = start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=2_500,
        save_card=False,
        request_key="k",
        page_url=PAGE_URL,
        clock=payments.clock,
    )
    paid = provider(payments).pay_checkout(
        str(top_up_row(engine, view.top_up_id).checkout_session_id), CARD_SUCCEEDS
    )
    (credited,) = inbox.wait_for(1)
    assert credited["Subject"] == "Meterline: 25.00 credits added"
    assert credited["To"] == "bill@pay.test, olga@pay.test"  # payers, not the viewer
    assert "$25.00 went through" in credited.get_payload()

    provider(payments).dispute(str(paid["payment_intent"]))
    messages = inbox.wait_for(3)
    subjects = {m["Subject"]: m["To"] for m in messages[1:]}
    assert subjects == {
        f"Meterline support: dispute_opened on {ACCOUNT}": "help@meterline.test",
        "Meterline: Payment disputed: credits on hold": "bill@pay.test, olga@pay.test",
    }


def test_nothing_is_emailed_when_the_transaction_rolls_back(
    engine: Engine, now: datetime, inbox: Inbox
) -> None:
    make_account(engine, now)
    with pytest.raises(RuntimeError), unit_of_work(engine, write=True) as session:
        notify_customer(session, account_id=ACCOUNT, title="never", body="rolled back", at=now)
        raise RuntimeError("the decision is undone")
    with unit_of_work(engine, write=True) as session:
        notify_customer(session, account_id=ACCOUNT, title="kept", body="committed", at=now)
    messages = inbox.wait_for(1)
    time.sleep(0.3)
    assert [m["Subject"] for m in messages] == ["Meterline: kept"]
