"""The console's refund and receipt forms on a paid (sandbox) top-up: confirmation, reason, what happened."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from core.db import unit_of_work
from core.db.models import AuditLog, TopUp
from core.payments import Actor, start_checkout
from core.payments.runtime import sandbox_payments
from core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from tests.app.console import field, submit
from tests.app.harness import open_page, page_text, signed_in
from tests.app.seed import ALICE

AGENT = "agent@meterline.test"
ADMIN = "admin@meterline.test"


@pytest.fixture
def paid_top_up(portal_url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """Acme bought $25 of credits in the sandbox (what the portal's own payments use here)."""
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("SMTP_URL", raising=False)
    payments = sandbox_payments(get_engine(), delivery="sync")
    provider = payments.provider
    assert isinstance(provider, SandboxProvider)
    view = start_checkout(
        get_engine(),
        provider,
        payments.config,
        actor=Actor(ALICE),
        account_id="acc_acme",
        amount_cents=2_500,
        save_card=False,
        request_key="page-test",
        page_url="http://portal.test/buy_credits",
    )
    with unit_of_work(get_engine()) as session:
        row = session.get(TopUp, view.top_up_id)
        assert row is not None
        session_id = str(row.checkout_session_id)
    provider.pay_checkout(session_id, CARD_SUCCEEDS)
    return view.top_up_id


def _acme(email: str, roles: list[str]) -> AppTest:
    at = signed_in(email, roles=roles)
    at.query_params["open"] = "acc_acme"
    return open_page(at, "support_account")


def _audited(action: str) -> list[AuditLog]:
    with unit_of_work(get_engine()) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == "support." + action)))


def test_an_agent_resends_a_receipt_after_confirming_and_is_told_it_was_not_emailed_without_smtp(
    paid_top_up: int,
) -> None:
    at = _acme(AGENT, ["support"])
    assert "Resend a receipt" in page_text(at)
    submit_key = submit(at, "receipt", "Resend receipt")
    at.text_area(key=field(at, "receipt", "reason")).input("Customer lost the email")
    at.button(key=submit_key).click().run()
    assert any("I confirm sending this receipt" in e.value for e in at.error), [e.value for e in at.error]
    assert _audited("resend_receipt") == []

    at.checkbox(key=field(at, "receipt", "confirm")).check()
    at.button(key=submit_key).click().run()
    assert not at.exception, [e.value for e in at.exception]
    messages = [s.value for s in at.success]
    assert any("not emailed: this server has no SMTP_URL" in m for m in messages), messages
    assert any("/payments/sandbox/receipt/" in m for m in messages), messages
    [entry] = _audited("resend_receipt")
    assert (entry.actor, entry.details["target"]) == (AGENT, f"top_up:{paid_top_up}")


def test_a_bad_address_names_the_field_and_sends_nothing(paid_top_up: int) -> None:
    at = _acme(AGENT, ["support"])
    at.text_input(key=field(at, "receipt", "email")).input("ann at acme")
    at.text_area(key=field(at, "receipt", "reason")).input("Customer asked")
    at.checkbox(key=field(at, "receipt", "confirm")).check()
    at.button(key=submit(at, "receipt", "Resend receipt")).click().run()
    errors = [e.value for e in at.error]
    assert any("is not an email address" in e and "(field: email)" in e for e in errors), errors
    assert _audited("resend_receipt") == []


def test_an_admin_refunds_part_of_a_top_up_and_is_told_what_came_back(paid_top_up: int) -> None:
    at = _acme(ADMIN, ["support_admin"])
    at.text_input(key=field(at, "refund", "amount")).input("10")
    at.text_area(key=field(at, "refund", "reason")).input("Charged twice")
    at.checkbox(key=field(at, "refund", "confirm")).check()
    at.button(key=submit(at, "refund", "Refund")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    messages = [s.value for s in at.success]
    assert any(
        f"Refunded $10.00 of top-up #{paid_top_up} through the payment provider: 10.00 credits taken back."
        in m
        for m in messages
    ), messages
    assert "sandbox" not in " ".join(e.value for e in at.error)
    with unit_of_work(get_engine()) as session:
        row = session.get(TopUp, paid_top_up)
        assert row is not None and row.refunded_cents == 1_000
    time.sleep(1)  # the sandbox's own refund event lands (it changes nothing) before the database goes
