"""Buy credits page: what an amount buys, checkout, the return page asks the provider, roles, history,
removing a saved card."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.payments import get_payments
from core.clock import system_clock
from core.db import make_engine, unit_of_work
from core.db.models import Account, AuditLog, AutoRecharge, PaymentCard, TopUp
from core.ledger import lock_accounts, post_usage
from core.money import credits_to_nanos
from core.payments import Actor, payment_config, sandbox_payments, save_auto_recharge
from core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from core.payments.top_ups import ensure_customer
from tests.app.harness import open_page, page_text, signed_in, table
from tests.app.seed import ALICE, BOB, VIVIAN


@pytest.fixture(autouse=True)
def sandbox_events_at_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The portal's sandbox delivers its events now, not on a timer that could outlive the test."""
    import app.payments

    monkeypatch.setattr(
        app.payments,
        "payments_from_env",
        lambda engine: sandbox_payments(engine, payment_config(), delivery="sync"),
    )
    app.payments._payments_for.clear()
    yield
    app.payments._payments_for.clear()


def _balance(url: str, account_id: str = "acc_acme") -> int:
    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            return int(session.scalar(select(Account.balance_nanos).where(Account.id == account_id)) or 0)
    finally:
        engine.dispose()


def _buttons(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.label for b in at.button]


def test_owner_sees_sandbox_mode_presets_and_what_an_amount_buys(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "buy_credits")
    text = page_text(at)
    assert "Sandbox mode" in text
    assert [o for o in at.radio(key="buy.amount").options] == [
        "$10.00",
        "$25.00",
        "$50.00",
        "$100.00",
        "$250.00",
        "Other amount",
    ]
    assert "10.00 credits" in text and "$1.00 per credit" in text
    at.radio(key="buy.amount").set_value("Other amount").run()
    at.text_input(key="buy.custom").set_value("12.345").run()
    assert any("at most 2 decimals" in e.value for e in at.error)
    at.text_input(key="buy.custom").set_value("40.50").run()
    assert "40.50 credits" in page_text(at)


def test_checkout_then_return_page_credits_once(portal_url: str) -> None:
    before = _balance(portal_url)
    at = open_page(signed_in(ALICE), "buy_credits")
    at.radio(key="buy.amount").set_value("$25.00").run()
    assert at.radio(key="buy.method").value == "A new card (secure checkout)"
    at.button(key="buy.go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    engine = make_engine(portal_url)
    with unit_of_work(engine) as session:
        top_up = session.scalars(select(TopUp)).one()
    assert (top_up.state, top_up.amount_cents, top_up.save_card) == ("pending_payment", 2_500, True)
    assert "Waiting for the payment" in page_text(at)
    assert _balance(portal_url) == before  # nothing before paying

    provider = get_payments().provider
    assert isinstance(provider, SandboxProvider)
    provider.pay_checkout(top_up.checkout_session_id, CARD_SUCCEEDS)

    # The browser comes back to ?top_up=…: the page asks the provider, and shows the real state.
    at.query_params["top_up"] = str(top_up.id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Payment received" in s.value for s in at.success)
    assert _balance(portal_url) == before + 25 * 10**9
    history = table(at, 0)
    assert history[0]["Amount"] == "$25.00" and history[0]["State"] == "Credited"
    assert history[0]["Card"] == "Visa •••• 4242"
    assert history[0]["Ledger"].startswith("Entry #")
    at.run()  # reruns and reloads never credit again
    assert _balance(portal_url) == before + 25 * 10**9
    # The saved card is offered for one-click purchases now.
    assert at.radio(key="buy.method").options[0].startswith("Visa •••• 4242")
    engine.dispose()


def test_viewer_sees_history_but_cannot_buy(portal_url: str) -> None:
    at = open_page(signed_in(VIVIAN), "buy_credits")
    assert "buy.go" not in [b.key for b in at.button]
    assert any("Only owners, admins and billing members" in i.value for i in at.info)
    assert "Auto-recharge" in page_text(at)


def test_negative_balance_shows_what_the_top_up_pays_off(portal_url: str) -> None:
    engine = make_engine(portal_url)
    with unit_of_work(engine, write=True) as session:
        account = lock_accounts(session, ["acc_acme"])["acc_acme"]
        owed = account.balance_nanos + 12 * 10**9
        post_usage(
            session,
            account=account,
            amount_nanos=owed,
            at=system_clock() - timedelta(minutes=1),
            reference="batch:t",
        )
    engine.dispose()
    at = open_page(signed_in(ALICE), "buy_credits")
    at.radio(key="buy.amount").set_value("$50.00").run()
    info = " ".join(i.value for i in at.info)
    assert "12.00 credits below zero" in info and "pays 12.00 credits of that off first" in info
    assert "38.00 credits are left" in info


def test_auto_recharge_needs_a_saved_card_and_refuses_a_threshold_it_cannot_lift(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "buy_credits")
    assert "Save this card" in page_text(at) or "first buy with a new card" in page_text(at)
    assert "Why didn't it recharge?" in [e.label for e in at.expander]


def test_balance_page_has_a_buy_credits_button(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "balance")
    at.button(key="balance.buy").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Buy credits"


def _save_card(
    url: str, *, account_id: str = "acc_acme", owner: str = ALICE, auto_recharge: bool = True
) -> str:
    """A card saved at an earlier checkout, and (optionally) auto-recharge paying with it."""
    engine = make_engine(url)
    try:
        payments = sandbox_payments(engine, payment_config(), delivery="sync")
        provider = payments.provider
        assert isinstance(provider, SandboxProvider)
        customer = ensure_customer(engine, provider, account_id=account_id, clock=system_clock)
        card_id = provider.save_test_card(customer, CARD_SUCCEEDS)
        with unit_of_work(engine, write=True) as session:
            session.add(
                PaymentCard(
                    id=card_id,
                    account_id=account_id,
                    provider="sandbox",
                    customer_id=customer,
                    brand="visa",
                    last4="4242",
                    exp_month=12,
                    exp_year=2030,
                    created_at=system_clock(),
                )
            )
        if auto_recharge:
            save_auto_recharge(
                payments,
                actor=Actor(owner),
                account_id=account_id,
                enabled=True,
                threshold_nanos=credits_to_nanos(10),
                amount_cents=10_000,
                monthly_max_cents=50_000,
                card_id=card_id,
            )
        return card_id
    finally:
        engine.dispose()


def test_owner_removes_the_saved_card_then_the_page_offers_checkout(portal_url: str) -> None:
    _save_card(portal_url)
    at = open_page(signed_in(ALICE), "buy_credits")
    assert at.radio(key="buy.method").value == "Visa •••• 4242, expires 12/30"
    assert at.button(key="buy.go").label == "Pay $10.00 with Visa •••• 4242, expires 12/30"
    assert at.button(key="buy.remove.buy").label == "Remove this card"
    # One place to remove a card (under "Pay with"); auto-recharge only names the card it pays with.
    assert [b.key for b in at.button if str(b.key).startswith("buy.remove.")] == ["buy.remove.buy"]

    at.button(key="buy.remove.buy").click().run()  # the first click only asks
    assert not at.exception, [e.value for e in at.exception]
    warning = " ".join(w.value for w in at.warning)
    assert "Remove Visa •••• 4242, expires 12/30?" in warning
    assert "Auto-recharge pays with this card, so it will be turned off." in warning
    at.button(key="buy.remove_keep.buy").click().run()  # changed their mind: still saved
    assert at.radio(key="buy.method").options[0].startswith("Visa •••• 4242")

    at.button(key="buy.remove.buy").click().run()
    at.button(key="buy.remove_confirm.buy").click().run()
    assert not at.exception, [e.value for e in at.exception]
    success = " ".join(s.value for s in at.success)
    assert "Visa •••• 4242 was removed" in success
    assert "Auto-recharge was turned off because it paid with this card." in success
    assert at.radio(key="buy.method").options == ["A new card (secure checkout)"]
    assert at.button(key="buy.go").label == "Continue to payment · $10.00"
    assert "buy.remove.buy" not in [b.key for b in at.button]
    assert any("Auto-recharge was turned off because the card it paid with" in w.value for w in at.warning)
    assert "first buy with a new card" in page_text(at)

    engine = make_engine(portal_url)
    with unit_of_work(engine) as session:
        (entry,) = session.scalars(select(AuditLog).where(AuditLog.action == "payments.remove_card")).all()
        assert _recharge_enabled(session) is False
    assert entry.actor == ALICE and entry.account_id == "acc_acme"
    engine.dispose()

    at.run()  # the success message is said once
    assert not any("was removed" in s.value for s in at.success)


def _recharge_enabled(session: Any) -> bool | None:
    settings = session.get(AutoRecharge, "acc_acme")
    return None if settings is None else bool(settings.enabled)


def test_a_viewer_is_not_offered_to_remove_the_card(portal_url: str) -> None:
    _save_card(portal_url)
    at = open_page(signed_in(VIVIAN), "buy_credits")
    assert not [b.key for b in at.button if str(b.key).startswith("buy.remove")]


def test_a_support_agent_viewing_as_the_customer_is_not_offered_to_remove_the_card(portal_url: str) -> None:
    _save_card(portal_url, account_id="acc_borealis", owner=BOB)
    at = signed_in("agent@meterline.test", roles=["support"])
    at.query_params["open"] = "acc_borealis"
    open_page(at, "support_account")
    at.button(key="support_account.view_as").click().run()
    assert not at.exception, [e.value for e in at.exception]
    at = open_page(at, "buy_credits")
    assert "Read-only: you are viewing this account as its customer" in page_text(at)
    assert not [b.key for b in at.button if str(b.key).startswith("buy.remove")]
    assert "Remove this card" not in [b.label for b in at.button]
