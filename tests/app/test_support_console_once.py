"""The account page's forms act once per submission: a success clears the form under a new submission
id (the old form's button is gone, so a second click finds nothing), the Act tab stays open, an error
keeps the form and its id; decisions name the request and need a reason and a tick; the refund
picker shows what a refund would take back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from core.db import unit_of_work
from core.db.models import CreditGrant, SupportApproval, TopUp
from core.money import credits_to_nanos
from core.payments.provider import Payment
from core.payments.settle import apply_payment
from core.support import SUPPORT, Agent, grant_credits_as_agent
from tests.app.console import field, submission_id, submit
from tests.app.harness import open_page, page_text, signed_in

AGENT = "agent@meterline.test"
ADMIN = "admin@meterline.test"
SAM = Agent("sam@meterline.test", SUPPORT)


def _acme(email: str, roles: list[str]) -> AppTest:
    at = signed_in(email, roles=roles)
    at.query_params["open"] = "acc_acme"
    return open_page(at, "support_account")


def _goodwill_grants() -> int:
    with unit_of_work(get_engine()) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(CreditGrant).where(CreditGrant.source == "goodwill")
            )
            or 0
        )


def _request(credits: int, reason: str) -> int:
    with unit_of_work(get_engine(), write=True) as session:
        outcome = grant_credits_as_agent(
            session,
            SAM,
            account_id="acc_acme",
            amount_nanos=credits_to_nanos(credits),
            reason=reason,
            at=datetime.now(UTC),
        )
    assert outcome.approval is not None
    return outcome.approval.approval_id


def test_a_grant_clears_its_form_under_a_new_submission_and_keeps_the_act_tab(portal_url: str) -> None:
    at = _acme(AGENT, ["support"])
    first = submission_id(at, "grant")
    old_button = submit(at, "grant", "Grant credits")
    at.text_input(key=field(at, "grant", "amount")).input("25")
    at.text_area(key=field(at, "grant", "reason")).input("Outage credit")
    at.checkbox(key=field(at, "grant", "confirm")).check()
    at.button(key=old_button).click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert any("Granted 25.00 credits" in s.value for s in at.success), [s.value for s in at.success]
    assert submission_id(at, "grant") != first
    assert at.text_input(key=field(at, "grant", "amount")).value == ""
    assert at.text_area(key=field(at, "grant", "reason")).value == ""
    assert at.checkbox(key=field(at, "grant", "confirm")).value is False
    with pytest.raises(KeyError):  # the filled-in form is gone: a second click has nothing to press
        at.button(key=old_button)
    assert at.session_state["support_account.tab"] == "Act"
    assert _goodwill_grants() == 1


def test_a_refused_grant_keeps_the_form_and_its_submission(portal_url: str) -> None:
    at = _acme(AGENT, ["support"])
    first = submission_id(at, "grant")
    at.text_input(key=field(at, "grant", "amount")).input("25")
    at.checkbox(key=field(at, "grant", "confirm")).check()
    at.button(key=submit(at, "grant", "Grant credits")).click().run()

    assert any("reason is required" in e.value for e in at.error), [e.value for e in at.error]
    assert submission_id(at, "grant") == first
    assert at.text_input(key=field(at, "grant", "amount")).value == "25"
    at.text_area(key=field(at, "grant", "reason")).input("Outage credit")
    at.button(key=submit(at, "grant", "Grant credits")).click().run()
    assert any("Granted 25.00 credits" in s.value for s in at.success), [s.value for s in at.success]
    assert _goodwill_grants() == 1


def test_a_decision_names_the_request_marks_a_duplicate_and_needs_a_reason_and_a_tick(
    portal_url: str,
) -> None:
    first = _request(250, "Outage on Nov 19")
    second = _request(250, "outage on Nov 19")
    at = _acme(ADMIN, ["support_admin"])
    text = page_text(at)
    assert f"Request #{first}" in text and "250.00 credits (goodwill) to **Acme Robotics**" in text
    assert "asked by sam@meterline.test" in text and "“Outage on Nov 19”" in text
    assert [w.value for w in at.warning if "duplicate" in w.value] == [
        f"Likely a duplicate of request #{first} (same account, amount and reason, still pending): "
        "reject one of them unless both are meant."
    ]

    form = f"decide.{second}"
    at.checkbox(key=field(at, form, "confirm")).check()
    at.button(key=submit(at, form, f"Approve #{second}")).click().run()
    assert any("(field: reason)" in e.value for e in at.error), [e.value for e in at.error]
    at.checkbox(key=field(at, form, "confirm")).uncheck()
    at.text_input(key=field(at, form, "reason")).input("Duplicate of the first")
    at.button(key=submit(at, form, f"Reject #{second}")).click().run()
    assert any("(field: confirmed)" in e.value for e in at.error), [e.value for e in at.error]
    assert _goodwill_grants() == 0

    at.checkbox(key=field(at, form, "confirm")).check()
    at.button(key=submit(at, form, f"Reject #{second}")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"Rejected request #{second}" in s.value for s in at.success), [s.value for s in at.success]
    assert not [w for w in at.warning if "duplicate" in w.value]  # the one left has no twin now
    with unit_of_work(get_engine()) as session:
        states = dict(session.execute(select(SupportApproval.id, SupportApproval.state)).all())
    assert states == {first: "pending", second: "rejected"}


def test_the_refund_picker_says_what_each_top_up_would_give_and_take_back(
    portal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    top_up_id = _paid(monkeypatch)
    at = _acme(ADMIN, ["support_admin"])
    picker = at.selectbox(key=field(at, "refund", "top_up"))
    assert picker.options == [
        f"#{top_up_id}: $25.00 of $25.00 refundable · 25.00 credits unspent of 25.00 credits"
    ]


def _paid(monkeypatch: pytest.MonkeyPatch) -> int:
    from core.db.models import TopUp
    from core.payments import Actor, start_checkout
    from core.payments.runtime import sandbox_payments
    from core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
    from tests.app.seed import ALICE

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
        request_key="picker-test",
        page_url="http://portal.test/buy_credits",
    )
    with unit_of_work(get_engine()) as session:
        row = session.get(TopUp, view.top_up_id)
        assert row is not None
        session_id = str(row.checkout_session_id)
    provider.pay_checkout(session_id, CARD_SUCCEEDS)
    return view.top_up_id


def _paid_not_credited() -> int:
    """A top-up whose payment came in for another amount than its price: paid, not credited."""
    now = datetime.now(UTC)
    with unit_of_work(get_engine(), write=True) as session:
        top_up = TopUp(
            account_id="acc_acme",
            kind="checkout",
            provider="sandbox",
            state="pending_payment",
            amount_cents=2_500,
            currency="usd",
            credits_nanos=credits_to_nanos(25),
            request_key="mismatch",
            payment_intent_id="pi_mismatch",
            access_token="t",
            created_by="alice@acme.test",
            created_at=now,
            updated_at=now,
        )
        session.add(top_up)
        session.flush()
        paid = Payment(payment_intent_id="pi_mismatch", status="succeeded", amount_cents=100, currency="usd")
        apply_payment(session, top_up_id=top_up.id, payment=paid, at=now, via="test")
        return top_up.id


def test_an_admin_credits_a_paid_top_up_that_was_not_credited_once(portal_url: str) -> None:
    top_up_id = _paid_not_credited()
    at = _acme(ADMIN, ["support_admin"])
    assert "Paid, not credited" in page_text(at)
    button = submit(at, "credit_paid", "Credit it")
    at.text_area(key=field(at, "credit_paid", "reason")).input("Paid the rest by bank transfer")
    at.checkbox(key=field(at, "credit_paid", "confirm")).check()
    at.button(key=button).click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert any(f"Top-up #{top_up_id}: credited" in s.value for s in at.success), [s.value for s in at.success]
    with unit_of_work(get_engine()) as session:
        row = session.get(TopUp, top_up_id)
        assert row is not None and row.state == "credited"
    assert "Paid, not credited" not in page_text(at)  # nothing left to resolve: the form is gone
