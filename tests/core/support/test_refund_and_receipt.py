"""Refunds and receipts from the console on the sandbox provider (both databases): one idempotency key
per submission, so a retry refunds once and two agents at once refund once; a receipt goes only for a paid
top-up, audited, emailed by the portal after commit (Stripe's side: test_stripe_support_actions)."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from core.db import unit_of_work
from core.db.models import AuditLog
from core.errors import Conflict, PermissionDenied, ValidationError
from core.ledger import reasons
from core.money import credits_to_nanos
from core.payments import Payments, start_checkout
from core.payments.provider import ProviderError, ReceiptSent, RefundMade
from core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from core.payments.top_ups import refresh_top_up
from core.support import SUPPORT, SUPPORT_ADMIN, Agent, refund_top_up, resend_receipt
from core.support.actions import receipt_key, refund_key
from tests.core.payments.helpers import (
    ACCOUNT,
    OWNER,
    PAGE_URL,
    MovableClock,
    balance,
    entries_for,
    ledger_ok,
    make_priced_account,
    sandbox,
    spend,
    top_up_row,
)
from tests.core.payments.test_notify_email import Inbox, inbox  # noqa: F401 (a fixture)

SAM = Agent("sam@meterline.example", SUPPORT)
ADA = Agent("ada@meterline.example", SUPPORT_ADMIN)
BOB = Agent("bob@meterline.example", SUPPORT_ADMIN)
FORM = "form-0001"  # the refund form's submission id
PAYERS = ["bill@pay.test", "olga@pay.test"]  # the owner and the billing member, not the viewer


class Recording(SandboxProvider):
    """The sandbox, remembering each key it was asked with; ``lose_first`` loses the first answer
    (the refund is made, the caller hears an error), ``barrier`` holds callers until all arrive."""

    def __init__(self, inner: SandboxProvider, *, lose_first: bool = False, parties: int = 0) -> None:
        self.__dict__.update(inner.__dict__)
        self.keys: list[str] = []
        self.lose_first = lose_first
        self.barrier = threading.Barrier(parties) if parties else None

    def refund_payment(
        self, payment_intent_id: str, *, amount_cents: int | None, idempotency_key: str
    ) -> RefundMade:
        self.keys.append(idempotency_key)
        if self.barrier is not None:
            self.barrier.wait(timeout=30)
        made = super().refund_payment(
            payment_intent_id, amount_cents=amount_cents, idempotency_key=idempotency_key
        )
        if self.lose_first:
            self.lose_first = False
            raise ProviderError("Stripe: the connection was reset (the answer was lost)")
        return made

    def send_receipt(self, payment_intent_id: str, *, email: str, idempotency_key: str) -> ReceiptSent:
        self.keys.append(idempotency_key)
        return super().send_receipt(payment_intent_id, email=email, idempotency_key=idempotency_key)


def _bought(
    engine: Engine, now: datetime, *, delivery: str = "sync", **config: Any
) -> tuple[Payments, int, str]:
    make_priced_account(engine, now)
    payments = sandbox(engine, MovableClock(now), delivery=delivery, **config)
    sandbox_provider = payments.provider
    assert isinstance(sandbox_provider, SandboxProvider)
    view = start_checkout(
        engine,
        sandbox_provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=2_500,
        save_card=False,
        request_key="k",
        page_url=PAGE_URL,
        clock=payments.clock,
    )
    paid = sandbox_provider.pay_checkout(
        str(top_up_row(engine, view.top_up_id).checkout_session_id), CARD_SUCCEEDS
    )
    if delivery != "sync":  # no event settles it: the customer's return page does
        refresh_top_up(engine, sandbox_provider, top_up_id=view.top_up_id, clock=payments.clock)
    assert top_up_row(engine, view.top_up_id).state == "credited"
    return payments, view.top_up_id, str(paid["payment_intent"])


def _with(payments: Payments, provider: SandboxProvider) -> Payments:
    return Payments(payments.engine, payments.config, provider, payments.clock)


def _audit(engine: Engine, action: str) -> list[AuditLog]:
    with unit_of_work(engine) as session:
        return list(
            session.scalars(
                select(AuditLog).where(AuditLog.action == "support." + action).order_by(AuditLog.id)
            )
        )


def _refunded_at_provider(payments: Payments, intent_id: str) -> int:
    assert isinstance(payments.provider, SandboxProvider)
    return int(payments.provider.payment_intent(intent_id)["latest_charge"]["amount_refunded"])


def test_a_refund_retried_after_a_lost_answer_refunds_once_and_reverses_the_unspent_credits_once(
    engine: Engine, now: datetime
) -> None:
    # No events (as with localstripe, or Stripe's arriving late): the action's own ledger write counts.
    payments, top_up_id, intent_id = _bought(engine, now, delivery="none")
    spend(engine, credits_to_nanos(15), now)
    flaky = Recording(payments.provider, lose_first=True)  # type: ignore[arg-type]
    console = _with(payments, flaky)

    with pytest.raises(ProviderError):
        refund_top_up(console, ADA, top_up_id=top_up_id, reason="customer asked", submission_id=FORM)
    assert top_up_row(engine, top_up_id).refunded_cents == 0  # the ledger has not heard yet
    done = refund_top_up(console, ADA, top_up_id=top_up_id, reason="customer asked", submission_id=FORM)

    assert flaky.keys == [refund_key(top_up_id, FORM)] * 2  # the retry asked with the same key
    assert _refunded_at_provider(payments, intent_id) == 2_500  # once, not $50
    assert (done.refunded_cents, done.reversed_nanos, done.spent_nanos) == (
        2_500,
        credits_to_nanos(10),
        credits_to_nanos(15),
    )
    assert balance(engine) == 0 and entries_for(engine, reasons.GRANT_REFUNDED) == 1
    assert top_up_row(engine, top_up_id).state == "refunded"
    late = refund_top_up(console, ADA, top_up_id=top_up_id, reason="customer asked", submission_id=FORM)
    assert late == done and len(flaky.keys) == 2  # a late second click: the first answer, nobody asked
    with pytest.raises(ValidationError, match="refunded in full already"):  # a new form
        refund_top_up(console, ADA, top_up_id=top_up_id, reason="customer asked", submission_id="form-0002")
    assert _refunded_at_provider(payments, intent_id) == 2_500
    ledger_ok(engine)


def test_two_agents_refunding_the_same_state_at_once_refund_once(engine: Engine, now: datetime) -> None:
    payments, top_up_id, intent_id = _bought(engine, now)
    both = Recording(payments.provider)  # type: ignore[arg-type]
    console = _with(payments, both)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def click(agent: Agent, form: str) -> None:
        start.wait(timeout=30)
        try:  # each agent's form was drawn when nothing was refunded
            refund_top_up(
                console,
                agent,
                top_up_id=top_up_id,
                reason="double charge",
                amount_cents=1_000,
                submission_id=form,
                seen_refunded_cents=0,
            )
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [
        threading.Thread(target=click, args=(agent, form))
        for agent, form in ((ADA, "form-ada-01"), (BOB, "form-bob-01"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [(type(e), getattr(e, "code", "")) for e in errors] in (
        [(Conflict, "refund_in_progress")],
        [(Conflict, "stale_form")],
    )
    assert len(both.keys) == 1
    assert _refunded_at_provider(payments, intent_id) == 1_000
    assert balance(engine) == credits_to_nanos(15)
    assert entries_for(engine, reasons.GRANT_REFUNDED) == 1
    [audited] = _audit(engine, "refund_top_up")
    assert (audited.details["before"]["refunded_cents"], audited.details["after"]["refunded_cents"]) == (
        0,
        1_000,
    )
    ledger_ok(engine)


def test_a_receipt_resend_goes_to_the_paying_members_is_audited_and_emailed_after_commit(
    engine: Engine,
    now: datetime,
    inbox: Inbox,  # noqa: F811
) -> None:
    payments, top_up_id, intent_id = _bought(engine, now, public_url="https://portal.example")
    inbox.wait_for(1)  # "credits added", from the purchase
    inbox.messages.clear()

    sent = resend_receipt(payments, SAM, top_up_id=top_up_id, reason="customer lost the email")

    assert sent.recipients == tuple(PAYERS) and sent.sent_by == "portal" and sent.repeated == ()
    (mail,) = inbox.wait_for(1)
    assert mail["To"] == ", ".join(PAYERS)
    assert mail["Subject"] == f"Meterline: receipt for top-up #{top_up_id} ($25.00)"
    body = mail.get_payload(decode=True).decode()
    assert "Paid: $25.00 (USD)" in body and "Credits: 25.00 credits" in body and "Visa ending 4242" in body
    # One way to write a time: the account's zone, named ("Nov 20, 2026, 12:00 UTC").
    paid_on = r"Paid: \$25\.00 \(USD\) on [A-Z][a-z]{2} \d{1,2}, \d{4}, \d{2}:\d{2} [A-Z+\d]+\r?\n"
    assert re.search(paid_on, body)
    assert f"https://portal.example/payments/sandbox/receipt/{intent_id}" in body
    [entry] = _audit(engine, "resend_receipt")
    assert (entry.actor, entry.account_id, entry.reason) == (SAM.email, ACCOUNT, "customer lost the email")
    assert entry.details["target"] == f"top_up:{top_up_id}"
    assert entry.details["before"] == {"state": "credited", "resends": 0}
    assert entry.details["after"]["recipients"] == PAYERS and entry.details["after"]["sent_by"] == "portal"
    assert payments.provider is not None
    stored = payments.provider.payment_intent(intent_id)  # type: ignore[attr-defined]
    assert [r["email"] for r in stored["_sandbox"]["receipts"]] == PAYERS

    again = resend_receipt(payments, SAM, top_up_id=top_up_id, reason="once more", email=" Ann@Pay.test ")
    assert again.recipients == ("ann@pay.test",) and again.repeated == ()
    assert inbox.wait_for(2)[1]["To"] == "ann@pay.test"
    assert _audit(engine, "resend_receipt")[1].details["before"]["resends"] == 1


def test_a_double_click_on_resend_sends_once(engine: Engine, now: datetime, inbox: Inbox) -> None:  # noqa: F811
    payments, top_up_id, intent_id = _bought(engine, now)
    inbox.wait_for(1)
    inbox.messages.clear()
    assert isinstance(payments.provider, SandboxProvider)
    # The first click reached the provider, then its page died before the audit entry committed:
    payments.provider.send_receipt(
        intent_id, email="ann@pay.test", idempotency_key=receipt_key(top_up_id, 0, "ann@pay.test")
    )
    sent = resend_receipt(payments, SAM, top_up_id=top_up_id, reason="asked twice", email="ann@pay.test")
    assert sent.repeated == ("ann@pay.test",) and sent.sent_by == ""
    time.sleep(0.5)
    assert inbox.messages == []
    [entry] = _audit(engine, "resend_receipt")
    assert entry.details["after"]["sent_by"] == "nobody: sent already"


def test_a_receipt_needs_a_paid_top_up_a_valid_email_and_an_agent(engine: Engine, now: datetime) -> None:
    payments, top_up_id, _intent = _bought(engine, now)
    unpaid = start_checkout(
        engine,
        payments.provider,  # type: ignore[arg-type]
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=1_000,
        save_card=False,
        request_key="unpaid",
        page_url=PAGE_URL,
        clock=payments.clock,
    )
    with pytest.raises(ValidationError, match="only a paid top-up has a receipt") as error:
        resend_receipt(payments, SAM, top_up_id=unpaid.top_up_id, reason="customer asked")
    assert error.value.field == "top_up"
    with pytest.raises(ValidationError, match="is not an email address") as error:
        resend_receipt(payments, SAM, top_up_id=top_up_id, reason="customer asked", email="ann at pay")
    assert error.value.field == "email"
    with pytest.raises(ValidationError) as error:
        resend_receipt(payments, SAM, top_up_id=top_up_id, reason="  ")
    assert error.value.field == "reason"
    with pytest.raises(PermissionDenied):
        resend_receipt(payments, "olga@pay.test", top_up_id=top_up_id, reason="x")  # type: ignore[arg-type]
    assert _audit(engine, "resend_receipt") == []


def test_without_smtp_the_resend_is_recorded_and_says_nothing_was_emailed(
    engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_URL", raising=False)
    payments, top_up_id, intent_id = _bought(engine, now)
    sent = resend_receipt(payments, SAM, top_up_id=top_up_id, reason="customer asked")
    assert sent.sent_by == "" and sent.receipt_url == f"/payments/sandbox/receipt/{intent_id}"
    [entry] = _audit(engine, "resend_receipt")
    assert entry.details["after"]["sent_by"] == "nobody: SMTP_URL is not set"
