"""Buy credits page: what an amount buys, checkout, the return page asks the provider, roles, history,
removing a saved card, pay-off amounts for a negative balance, strict amounts, banners that do not
pile up, auto-recharge's card, receipts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.payments import get_payments
from core.clock import system_clock
from core.db import make_engine, unit_of_work
from core.db.models import Account, AuditLog, AutoRecharge, PaymentCard, TopUp
from core.ledger import lock_accounts, post_usage
from core.money import credits_to_nanos
from core.payments import Actor, buy_with_saved_card, payment_config, sandbox_payments, save_auto_recharge
from core.payments.sandbox import CARD_3DS, CARD_DECLINED, CARD_SUCCEEDS, SandboxProvider
from core.payments.top_ups import ensure_customer
from tests.app.harness import as_read, open_page, page_text, shown_table, signed_in, table
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
    history = shown_table(at, 0)
    assert history[0]["Amount ($)"] == "25.00" and history[0]["State"] == "Credited"
    assert history[0]["Credits"] == "25.00" and history[0]["Purchase"] == f"Top-up #{top_up.id}"
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


def _owe(url: str, credits: int) -> None:
    """Acme's usage passes its credits by ``credits``: a negative balance."""
    engine = make_engine(url)
    with unit_of_work(engine, write=True) as session:
        account = lock_accounts(session, ["acc_acme"])["acc_acme"]
        post_usage(
            session,
            account=account,
            amount_nanos=account.balance_nanos + credits * 10**9,
            at=system_clock() - timedelta(minutes=1),
            reference="batch:t",
        )
    engine.dispose()


def test_a_negative_balance_is_offered_pay_off_amounts_in_plain_words(portal_url: str) -> None:
    _owe(portal_url, 12)
    at = open_page(signed_in(ALICE), "buy_credits")
    amount = at.radio(key="buy.amount")
    assert amount.options == ["$22.00", "$37.00", "$62.00", "$112.00", "$262.00", "Other amount"]
    assert amount.value == "$22.00"  # the smallest that clears the debt, and adds $10.00
    assert "you owe 12.00 credits" in page_text(at)
    info = next(i.value for i in at.info if i.value.startswith("You owe"))
    assert info == (
        "You owe 12.00 credits of usage your credits did not cover. This purchase pays that off first, "
        "then leaves **10.00 credits** to use."
    )
    assert at.button(key="buy.go").label == "Continue to payment · $22.00"
    # Less than the debt, typed: it says what stays owed.
    amount.set_value("Other amount").run()
    at.text_input(key="buy.custom").set_value("5").run()
    info = " ".join(i.value for i in at.info)
    assert "This purchase pays off 5.00 credits of it; you will still owe **7.00 credits**" in info
    assert "below zero" not in page_text(at) and "0.00 credits are left" not in page_text(at)


def test_other_amount_waits_for_a_typed_amount_without_an_error(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "buy_credits")
    at.radio(key="buy.amount").set_value("Other amount").run()
    assert not at.error
    assert "Type the amount above" in page_text(at)
    assert at.radio(key="buy.method").options == ["A new card (secure checkout)"]  # "Pay with" stays
    go = at.button(key="buy.go")
    assert go.disabled and go.label == "Continue to payment"


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("1e1", "type an amount in dollars with the digits 0-9 only"),
        ("١٢", "type an amount in dollars with the digits 0-9 only"),
        ("10.001", "at most 2 decimals"),
        ("4", "the smallest top-up is $5.00"),
    ],
)
def test_an_amount_that_is_not_one_says_what_is_wrong(portal_url: str, typed: str, error: str) -> None:
    at = open_page(signed_in(ALICE), "buy_credits")
    at.radio(key="buy.amount").set_value("Other amount").run()
    at.text_input(key="buy.custom").set_value(typed).run()
    (shown,) = [e.value for e in at.error]
    assert shown.startswith("Amount in dollars: ") and error in as_read(shown)
    assert at.button(key="buy.go").disabled  # nothing is bought with it
    assert at.radio(key="buy.method")  # and "Pay with" is still there


def test_spaces_around_a_typed_amount_are_fine(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "buy_credits")
    at.radio(key="buy.amount").set_value("Other amount").run()
    at.text_input(key="buy.custom").set_value(" 10 ").run()
    assert not at.error
    assert at.button(key="buy.go").label == "Continue to payment · $10.00"


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
    url: str,
    *,
    account_id: str = "acc_acme",
    owner: str = ALICE,
    auto_recharge: bool = True,
    number: str = CARD_SUCCEEDS,
    at: datetime | None = None,
) -> str:
    """A card saved at an earlier checkout, and (optionally) auto-recharge paying with it."""
    engine = make_engine(url)
    try:
        payments = sandbox_payments(engine, payment_config(), delivery="sync")
        provider = payments.provider
        assert isinstance(provider, SandboxProvider)
        customer = ensure_customer(engine, provider, account_id=account_id, clock=system_clock)
        card_id = provider.save_test_card(customer, number)
        with unit_of_work(engine, write=True) as session:
            session.add(
                PaymentCard(
                    id=card_id,
                    account_id=account_id,
                    provider="sandbox",
                    customer_id=customer,
                    brand="visa",
                    last4=number[-4:],
                    exp_month=12,
                    exp_year=2030,
                    created_at=at or system_clock(),
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


def _buy_with(url: str, card_id: str, cents: int, *, who: str = ALICE) -> int:
    """A purchase with a saved card made outside this page (another member, another browser)."""
    engine = make_engine(url)
    try:
        payments = sandbox_payments(engine, payment_config(), delivery="sync")
        assert payments.provider is not None
        view = buy_with_saved_card(
            engine,
            payments.provider,
            payments.config,
            actor=Actor(who),
            account_id="acc_acme",
            amount_cents=cents,
            card_id=card_id,
            request_key=f"test-{card_id}-{cents}",
            page_url="http://localhost:8501/buy_credits",
            clock=system_clock,
        )
        return view.top_up_id
    finally:
        engine.dispose()


def test_every_member_sees_every_purchase_of_the_account(portal_url: str) -> None:
    card = _save_card(portal_url, auto_recharge=False)
    top_up_id = _buy_with(portal_url, card, 2_500)  # Alice bought it
    at = open_page(signed_in(VIVIAN), "buy_credits")  # Vivian, a viewer, reads the history
    assert "No purchases yet" not in page_text(at)
    rows = shown_table(at, 0)
    assert rows[0]["Purchase"] == f"Top-up #{top_up_id}"
    # The seed's purchased grant had no top-up (a contract, an invoice): it is a purchase all the same.
    (contract,) = [row for row in rows if row["Purchase"].startswith("Grant #")]
    assert (contract["How"], contract["Amount ($)"], contract["Credits"], contract["State"]) == (
        "Contract or invoice",
        "100.00",
        "100.00",
        "Credited",
    )
    assert contract["Notes"] == "Top-up"  # its description


def test_a_viewer_is_offered_no_buying_no_card_and_no_auto_recharge_form(portal_url: str) -> None:
    _save_card(portal_url)
    at = open_page(signed_in(VIVIAN), "buy_credits")
    keys = [b.key for b in at.button]
    assert "buy.go" not in keys and not [k for k in keys if str(k).startswith("buy.remove")]
    assert "Save auto-recharge" not in [b.label for b in at.button]
    assert "with Visa •••• 4242, expires 12/30" in " ".join(s.value for s in at.success)  # but sees it


def test_a_failed_top_up_has_no_receipt_and_says_so(portal_url: str) -> None:
    declined = _save_card(portal_url, auto_recharge=False, number=CARD_DECLINED)
    top_up_id = _buy_with(portal_url, declined, 2_500)
    at = open_page(signed_in(ALICE), "buy_credits")
    (row,) = [r for r in shown_table(at, 0) if r["Purchase"] == f"Top-up #{top_up_id}"]
    assert row["State"] == "Failed" and row["Notes"] == "Your card was declined."
    assert table(at, 0)[0]["Receipt"] is None
    assert at.dataframe[0].proto.placeholder == "—"  # drawn as a dash, never "None"
    assert row["Receipt"] == "—" and "None" not in row.values()
    at.session_state["buy.history"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert any(i.value.startswith(f"Top-up #{top_up_id} has no receipt.") for i in at.info)


def test_a_receipt_opens_from_the_history_with_everything_it_must_say(portal_url: str) -> None:
    card = _save_card(portal_url, auto_recharge=False)
    top_up_id = _buy_with(portal_url, card, 2_500)
    at = open_page(signed_in(ALICE), "buy_credits")
    link = table(at, 0)[0]["Receipt"]
    assert link.endswith(f"/buy_credits?account=acc_acme&receipt={top_up_id}")
    at.session_state["buy.history"] = {"selection": {"rows": [0], "columns": [], "cells": []}}  # one click
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Receipt · top-up #{top_up_id}" in [h.value for h in at.subheader]
    receipt = as_read(next(m.value for m in at.markdown if "**Date:**" in m.value))
    for part in (
        "**Account:** Acme Robotics (acc_acme)",
        "**Credits:** 25.00 credits",
        "**Amount:** $25.00",
        "**Card:** Visa •••• 4242",
        "**Payment id:** `pi_",
    ):
        assert part in receipt, receipt
    assert "UTC" in receipt.split("**Date:**", 1)[1].split("\n", 1)[0]  # the date, with its zone

    page = signed_in(ALICE)  # its own address, to keep or print
    page.query_params["receipt"] = str(top_up_id)
    open_page(page, "buy_credits")
    assert f"Receipt · top-up #{top_up_id}" in [h.value for h in page.subheader]
    assert "buy.go" not in [b.key for b in page.button]


def test_settled_purchases_do_not_pile_up_as_banners(portal_url: str) -> None:
    _save_card(portal_url, auto_recharge=False)
    at = open_page(signed_in(ALICE), "buy_credits")
    at.button(key="buy.go").click().run()  # $10.00 with the saved card: credited at once
    at.radio(key="buy.amount").set_value("$25.00").run()
    at.button(key="buy.go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    received = [s.value for s in at.success if "Payment received" in s.value]
    assert len(received) == 1 and received[0].startswith("Payment received: 25.00 credits")
    (dismiss,) = [b for b in at.button if str(b.key).startswith("buy.dismiss.")]
    dismiss.click().run()
    assert not [s for s in at.success if "Payment received" in s.value]
    assert [r["Amount ($)"] for r in shown_table(at, 0)][:2] == ["25.00", "10.00"]  # the history keeps both


def test_a_card_added_later_does_not_become_auto_recharges_card(portal_url: str) -> None:
    now = system_clock()
    original = _save_card(portal_url, at=now - timedelta(days=2))  # auto-recharge pays with it
    _save_card(portal_url, auto_recharge=False, number=CARD_3DS, at=now - timedelta(days=1))
    _save_card(portal_url, auto_recharge=False, at=now)  # the same Visa saved again, under a new id
    at = open_page(signed_in(ALICE), "buy_credits")
    status = " ".join(s.value for s in at.success)
    assert "with Visa •••• 4242, expires 12/30." in status  # the card is always named
    (pay_with,) = [box for box in at.selectbox if box.label == "Pay with"]
    assert pay_with.value == "Visa •••• 4242, expires 12/30"
    assert "Visa •••• 3155, expires 12/30" in pay_with.options
    next(b for b in at.button if b.label == "Save auto-recharge").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    engine = make_engine(portal_url)
    with unit_of_work(engine) as session:
        settings = session.get(AutoRecharge, "acc_acme")
        assert settings is not None and settings.card_id == original  # not quietly switched
    engine.dispose()


def test_auto_recharge_fields_are_read_strictly_and_named(portal_url: str) -> None:
    _save_card(portal_url)
    at = open_page(signed_in(ALICE), "buy_credits")
    threshold = next(t for t in at.text_input if t.label.startswith("When the balance falls below"))
    threshold.set_value("1e2")
    next(b for b in at.button if b.label == "Save auto-recharge").click().run()
    (error,) = [as_read(e.value) for e in at.error]
    assert error.startswith("When the balance falls below (credits): ")
    assert "digits 0-9 only" in error
