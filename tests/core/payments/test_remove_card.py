"""Removing a saved card: detached at the provider, no longer offered, auto-recharge off when it paid
with it, audited; only paying roles; twice is fine; Stripe's answers (recorded) read as they should."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from core.clock import Clock
from core.db import unit_of_work
from core.db.models import AuditLog, AutoRecharge, PaymentCard, PaymentCustomer, PaymentSandboxObject
from core.errors import NotFound, PermissionDenied
from core.money import credits_to_nanos
from core.payments import (
    Payments,
    ProviderError,
    auto_recharge_view,
    buy_with_saved_card,
    remove_saved_card,
    run_auto_recharge,
    save_auto_recharge,
    saved_cards,
)
from core.payments.cards import ACTION, CARD_REMOVED, NOTHING_SAVED
from core.payments.config import PaymentConfig, PaymentsNotConfigured
from core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from core.payments.stripe_provider import StripeProvider
from core.payments.top_ups import Actor, ensure_customer
from tests.core.payments.helpers import (
    ACCOUNT,
    BILLING,
    OUTSIDER,
    OWNER,
    PAGE_URL,
    SECRET,
    VIEWER,
    MovableClock,
    make_account,
    provider,
    sandbox,
)
from tests.core.payments.test_stripe_requests import RecordingClient


def _save(payments: Payments, at: datetime, *, exp_year: int = 2030) -> str:
    """A card saved as Checkout with "Save this card" leaves it: attached at the provider, a row here."""
    customer = ensure_customer(payments.engine, payments.provider, account_id=ACCOUNT, clock=payments.clock)  # type: ignore[arg-type]
    card_id = provider(payments).save_test_card(customer, CARD_SUCCEEDS)
    with unit_of_work(payments.engine, write=True) as session:
        session.add(
            PaymentCard(
                id=card_id,
                account_id=ACCOUNT,
                provider="sandbox",
                customer_id=customer,
                brand="visa",
                last4="4242",
                exp_month=12,
                exp_year=exp_year,
                created_at=at,
            )
        )
    return card_id


def _recharge_on(payments: Payments, card_id: str) -> None:
    save_auto_recharge(
        payments,
        actor=OWNER,
        account_id=ACCOUNT,
        enabled=True,
        threshold_nanos=credits_to_nanos(50),
        amount_cents=10_000,
        monthly_max_cents=25_000,
        card_id=card_id,
    )


def _cards(payments: Payments) -> list[str]:
    with unit_of_work(payments.engine) as session:
        return [card.label for card in saved_cards(session, ACCOUNT, "sandbox")]


def _audits(engine: Engine) -> list[AuditLog]:
    with unit_of_work(engine) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == ACTION).order_by(AuditLog.id)))


def _attached_to(payments: Payments, card_id: str) -> Any:
    with unit_of_work(payments.engine) as session:
        row = session.get(PaymentSandboxObject, card_id)
        assert row is not None
        return row.data["customer"]


def test_removing_the_card_detaches_it_stops_offering_it_and_turns_auto_recharge_off(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    clock = MovableClock(now)
    payments = sandbox(engine, clock)
    card_id = _save(payments, now)
    _recharge_on(payments, card_id)
    assert _cards(payments) == ["Visa •••• 4242, expires 12/30"]

    removal = remove_saved_card(payments, actor=BILLING, account_id=ACCOUNT, card_id=card_id)

    assert [c.payment_method_id for c in removal.removed] == [card_id]
    assert removal.auto_recharge_turned_off
    assert removal.message == (
        "Visa •••• 4242 was removed: no longer saved, and the portal cannot charge it again. "
        "Auto-recharge was turned off because it paid with this card."
    )
    assert _attached_to(payments, card_id) is None  # detached at the provider
    assert _cards(payments) == []  # the page offers Checkout only
    with pytest.raises(NotFound):
        buy_with_saved_card(
            engine,
            payments.provider,  # type: ignore[arg-type]
            payments.config,
            actor=OWNER,
            account_id=ACCOUNT,
            amount_cents=2_500,
            card_id=card_id,
            request_key="after-removal",
            page_url=PAGE_URL,
            clock=clock,
        )
    with unit_of_work(engine) as session:
        settings = session.get(AutoRecharge, ACCOUNT)
        assert settings is not None
        assert (settings.enabled, settings.card_id, settings.last_decision_code) == (
            False,
            None,
            CARD_REMOVED,
        )
        view = auto_recharge_view(session, ACCOUNT, at=now, max_failures=3)
    assert view.last_decision.startswith("Auto-recharge was turned off because the card it paid with")
    assert view.last_decision_code == CARD_REMOVED
    assert run_auto_recharge(payments, account_id=ACCOUNT).decision.code == "off"

    (entry,) = _audits(engine)
    assert (entry.actor, entry.account_id) == (BILLING.email, ACCOUNT)
    assert entry.reason == "removed the saved card Visa •••• 4242, auto-recharge off"
    assert entry.details == {
        "before": {
            "cards": [{"id": card_id, "brand": "visa", "last4": "4242"}],
            "auto_recharge": {"enabled": True, "card_id": card_id},
        },
        "after": {"cards": [], "auto_recharge": {"enabled": False, "card_id": None}},
    }


def test_removing_twice_says_there_is_no_saved_card(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    card_id = _save(payments, now)
    first = remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT, card_id=card_id)
    assert len(first.removed) == 1 and not first.auto_recharge_turned_off  # auto-recharge was never set up
    again = remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT, card_id=card_id)
    assert (again.removed, again.auto_recharge_turned_off, again.message) == ((), False, NOTHING_SAVED)
    everything = remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT)
    assert everything.message == NOTHING_SAVED
    assert len(_audits(engine)) == 1  # nothing changed the second and third time: nothing audited


@pytest.mark.parametrize("actor", [VIEWER, OUTSIDER, Actor.viewing_as_customer("agent@meterline.test")])
def test_a_viewer_an_outsider_or_a_support_agent_cannot_remove_the_card(
    engine: Engine, now: datetime, actor: Actor
) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    card_id = _save(payments, now)
    with pytest.raises(PermissionDenied):
        remove_saved_card(payments, actor=actor, account_id=ACCOUNT, card_id=card_id)
    assert _cards(payments) == ["Visa •••• 4242, expires 12/30"]
    assert _attached_to(payments, card_id) is not None  # nothing was asked of the provider
    assert _audits(engine) == []


def test_the_same_card_saved_twice_goes_at_once_and_other_cards_stay(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    first = _save(payments, now)
    second = _save(payments, now)  # saved again at a later checkout: another payment method id
    other = _save(payments, now, exp_year=2031)
    assert sorted(_cards(payments)) == ["Visa •••• 4242, expires 12/30", "Visa •••• 4242, expires 12/31"]
    _recharge_on(payments, first)  # the older twin: still the card being removed

    removal = remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT, card_id=second)

    assert {c.payment_method_id for c in removal.removed} == {first, second}
    assert removal.auto_recharge_turned_off
    assert removal.message.startswith("Visa •••• 4242 was removed")
    assert _cards(payments) == ["Visa •••• 4242, expires 12/31"]
    assert _attached_to(payments, first) is None and _attached_to(payments, second) is None
    assert _attached_to(payments, other) is not None


def test_a_card_already_detached_at_the_provider_counts_as_removed(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    card_id = _save(payments, now)
    sandbox_provider = provider(payments)
    assert sandbox_provider.detach_payment_method(card_id, idempotency_key="dashboard") is True
    assert sandbox_provider.detach_payment_method(card_id, idempotency_key="again") is False
    assert sandbox_provider.detach_payment_method("pm_sbx_missing", idempotency_key="k") is False
    removal = remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT, card_id=card_id)
    assert len(removal.removed) == 1
    assert _cards(payments) == []


class _Refusing(SandboxProvider):
    def detach_payment_method(self, payment_method_id: str, *, idempotency_key: str) -> bool:
        raise ProviderError("Stripe: the API is unavailable")


def test_a_provider_error_changes_nothing_and_a_retry_removes_it(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    clock: Clock = MovableClock(now)
    payments = sandbox(engine, clock)
    card_id = _save(payments, now)
    _recharge_on(payments, card_id)
    refusing = Payments(engine, payments.config, _Refusing(engine, secret=SECRET, clock=clock), clock)
    with pytest.raises(ProviderError, match="the API is unavailable"):
        remove_saved_card(refusing, actor=OWNER, account_id=ACCOUNT, card_id=card_id)
    assert _cards(payments) == ["Visa •••• 4242, expires 12/30"]
    with unit_of_work(engine) as session:
        settings = session.get(AutoRecharge, ACCOUNT)
        assert settings is not None and settings.enabled
    assert remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT).auto_recharge_turned_off


def test_saving_auto_recharge_with_another_card_clears_the_removed_card_note(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    card_id = _save(payments, now)
    _recharge_on(payments, card_id)
    remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT, card_id=card_id)
    new_card = _save(payments, now, exp_year=2032)
    _recharge_on(payments, new_card)
    with unit_of_work(engine) as session:
        view = auto_recharge_view(session, ACCOUNT, at=now, max_failures=3)
    assert view.enabled and view.card_id == new_card and view.last_decision_code == ""


def test_without_a_provider_removing_says_payments_are_not_set_up(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    off = Payments(engine, PaymentConfig(mode="disabled"), None, MovableClock(now))
    with pytest.raises(PaymentsNotConfigured, match="payments are not set up"):
        remove_saved_card(off, actor=OWNER, account_id=ACCOUNT)


# --- what the Stripe provider sends, and how it reads Stripe's answers (a recording HTTP client) ---


def _stripe(engine: Engine, client: RecordingClient, now: datetime) -> Payments:
    config = PaymentConfig(mode="stripe", api_key="sk_test_123", webhook_secret=SECRET)
    return Payments(
        engine,
        config,
        StripeProvider("sk_test_123", http_client=client, max_network_retries=0),
        MovableClock(now),
    )


def _stripe_card(payments: Payments, at: datetime, card_id: str = "pm_rec_1") -> str:
    with unit_of_work(payments.engine, write=True) as session:
        session.add(
            PaymentCustomer(account_id=ACCOUNT, provider="stripe", customer_id="cus_rec_1", created_at=at)
        )
        session.add(
            PaymentCard(
                id=card_id,
                account_id=ACCOUNT,
                provider="stripe",
                customer_id="cus_rec_1",
                brand="visa",
                last4="4242",
                exp_month=12,
                exp_year=2030,
                created_at=at,
            )
        )
    return card_id


def test_stripe_detach_request_and_its_idempotency_key(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    client = RecordingClient(
        lambda method, path, fields: (200, {"id": "pm_rec_1", "object": "payment_method", "customer": None})
    )
    payments = _stripe(engine, client, now)
    _stripe_card(payments, now)
    removal = remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT)
    assert removal.message.startswith("Visa •••• 4242 was removed")
    ((method, headers, fields),) = client.calls("/v1/payment_methods/pm_rec_1/detach")
    assert (method, fields) == ("POST", {})
    assert headers["Idempotency-Key"] == "card:pm_rec_1:detach"
    assert len(client.requests) == 1


@pytest.mark.parametrize(
    ("detach_answer", "retrieved"),
    [
        (
            (
                404,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "resource_missing",
                        "message": "No such",
                    }
                },
            ),
            None,
        ),
        (
            (
                400,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "The payment method you provided is not attached to a customer so "
                        "detachment is impossible.",
                    }
                },
            ),
            {"id": "pm_rec_1", "object": "payment_method", "customer": None},
        ),
    ],
    ids=["resource_missing", "not_attached"],
)
def test_a_card_stripe_no_longer_has_attached_counts_as_removed(
    engine: Engine, now: datetime, detach_answer: tuple[int, dict[str, Any]], retrieved: dict[str, Any] | None
) -> None:
    make_account(engine, now)

    def answer(method: str, path: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path.endswith("/detach"):
            return detach_answer
        assert retrieved is not None and method == "GET"
        return 200, retrieved

    payments = _stripe(engine, RecordingClient(answer), now)
    _stripe_card(payments, now)
    assert len(remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT).removed) == 1
    with unit_of_work(engine) as session:
        assert saved_cards(session, ACCOUNT, "stripe") == []


def test_a_stripe_refusal_is_a_provider_error_and_the_card_stays(engine: Engine, now: datetime) -> None:
    make_account(engine, now)

    def answer(method: str, path: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path.endswith("/detach"):
            return 400, {
                "error": {"type": "invalid_request_error", "message": "This request is not allowed."}
            }
        return 200, {"id": "pm_rec_1", "object": "payment_method", "customer": "cus_rec_1"}  # still attached

    payments = _stripe(engine, RecordingClient(answer), now)
    _stripe_card(payments, now)
    with pytest.raises(ProviderError, match="Stripe: This request is not allowed"):
        remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT)
    with unit_of_work(engine) as session:
        assert len(saved_cards(session, ACCOUNT, "stripe")) == 1
    assert _audits(engine) == []
