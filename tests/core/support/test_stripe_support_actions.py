"""Refunds and receipts from the console through the Stripe provider, against localstripe (both databases).

What localstripe lets us check, and what it does not: it makes refunds (and keeps their metadata,
lists them by PaymentIntent) but ignores idempotency keys and accepts over-refunds, so a refund made
twice would show as twice the amount here; the provider's lookup by the ``meterline_key`` metadata
is what keeps a retry from refunding twice, and these tests prove it. It stores a charge's
``receipt_email`` when updated but sends no email (and has no ``receipt_url``): the tests check the
SDK call reached the charge, not that Stripe emailed anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from core.clock import system_clock
from core.db import unit_of_work
from core.db.models import AuditLog
from core.errors import PermissionDenied, ValidationError
from core.ledger import reasons
from core.money import credits_to_nanos
from core.payments import Payments, buy_with_saved_card
from core.payments.config import PaymentConfig
from core.payments.provider import ProviderError, RefundMade
from core.payments.stripe_provider import StripeProvider
from core.support import SUPPORT, SUPPORT_ADMIN, Agent, refund_top_up, resend_receipt
from core.support.actions import refund_key
from tests.core.payments.helpers import (
    ACCOUNT,
    OWNER,
    SECRET,
    balance,
    entries_for,
    ledger_ok,
    make_priced_account,
    spend,
    top_up_row,
)
from tests.core.payments.test_notify_email import Inbox, inbox  # noqa: F401 (a fixture)
from tests.localstripe_server import API_KEY, flush, run_localstripe, saved_card, sdk

SAM = Agent("sam@meterline.example", SUPPORT)
ADA = Agent("ada@meterline.example", SUPPORT_ADMIN)
PAGE = "http://127.0.0.1/buy_credits?account=acc_pay"

pytestmark = pytest.mark.xdist_group("localstripe")


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from run_localstripe(tmp_path_factory)


@pytest.fixture
def payments(engine: Engine, localstripe: str) -> Payments:
    flush(localstripe)
    make_priced_account(engine, system_clock())
    config = PaymentConfig(mode="stripe", api_key=API_KEY, webhook_secret=SECRET, api_base=localstripe)
    return Payments(engine, config, StripeProvider(API_KEY, api_base=localstripe), system_clock, SECRET)


class LosesFirstAnswer(StripeProvider):
    """Stripe refunds, then the connection drops before the answer arrives (once)."""

    def __init__(self, api_key: str, *, api_base: str) -> None:
        super().__init__(api_key, api_base=api_base)
        self.keys: list[str] = []

    def refund_payment(
        self, payment_intent_id: str, *, amount_cents: int | None, idempotency_key: str
    ) -> RefundMade:
        self.keys.append(idempotency_key)
        made = super().refund_payment(
            payment_intent_id, amount_cents=amount_cents, idempotency_key=idempotency_key
        )
        if len(self.keys) == 1:
            raise ProviderError("Stripe: the connection was reset (the answer was lost)")
        return made


FORM = "form-0001"  # the refund form's submission id


def _buy(payments: Payments, localstripe: str, number: str = "4242424242424242") -> tuple[int, str]:
    card = saved_card(payments, localstripe, ACCOUNT, number)
    view = buy_with_saved_card(
        payments.engine,
        payments.provider,  # type: ignore[arg-type]
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=2_500,
        card_id=card,
        request_key=f"buy-{number}",
        page_url=PAGE,
        clock=payments.clock,
    )
    return view.top_up_id, str(top_up_row(payments.engine, view.top_up_id).payment_intent_id or "")


def _charge(localstripe: str, intent_id: str) -> dict[str, Any]:
    client = sdk(localstripe)
    intent = client.v1.payment_intents.retrieve(intent_id)
    return client.v1.charges.retrieve(intent.latest_charge.id).to_dict()  # type: ignore[union-attr]


def _audit(engine: Engine, action: str) -> list[AuditLog]:
    with unit_of_work(engine) as session:
        return list(
            session.scalars(
                select(AuditLog).where(AuditLog.action == "support." + action).order_by(AuditLog.id)
            )
        )


def test_a_stripe_refund_retried_from_the_same_submission_reverses_the_unspent_credits_once(
    payments: Payments, localstripe: str
) -> None:
    top_up_id, intent_id = _buy(payments, localstripe)
    assert top_up_row(payments.engine, top_up_id).state == "credited"
    spend(payments.engine, credits_to_nanos(15), system_clock())
    with pytest.raises(PermissionDenied):
        refund_top_up(payments, SAM, top_up_id=top_up_id, reason="customer asked", submission_id=FORM)

    flaky = LosesFirstAnswer(API_KEY, api_base=localstripe)
    console = Payments(payments.engine, payments.config, flaky, system_clock, SECRET)
    with pytest.raises(ProviderError):
        refund_top_up(console, ADA, top_up_id=top_up_id, reason="customer asked", submission_id=FORM)
    assert _charge(localstripe, intent_id)["amount_refunded"] == 2_500  # Stripe refunded...
    assert top_up_row(payments.engine, top_up_id).refunded_cents == 0  # ...and no refund event came
    done = refund_top_up(  # the retry
        console, ADA, top_up_id=top_up_id, reason="customer asked", submission_id=FORM
    )

    assert flaky.keys == [refund_key(top_up_id, FORM)] * 2
    # localstripe ignores idempotency keys and accepts over-refunds: $50 here would mean twice.
    assert _charge(localstripe, intent_id)["amount_refunded"] == 2_500
    refunds = sdk(localstripe).v1.refunds.list(params={"payment_intent": intent_id}).data
    assert [r.metadata["meterline_key"] for r in refunds] == [refund_key(top_up_id, FORM)]
    assert (done.refunded_cents, done.reversed_nanos, done.spent_nanos) == (
        2_500,
        credits_to_nanos(10),
        credits_to_nanos(15),
    )
    assert balance(payments.engine) == 0  # the 10 unspent credits went back; the 15 used stay used
    assert entries_for(payments.engine, reasons.GRANT_REFUNDED) == 1
    assert top_up_row(payments.engine, top_up_id).state == "refunded"
    [entry] = _audit(payments.engine, "refund_top_up")
    assert entry.details["after"]["refund_id"] == refunds[0].id
    assert (
        refund_top_up(  # a late second click of the same form answers as the first
            payments, ADA, top_up_id=top_up_id, reason="customer asked", submission_id=FORM
        )
        == done
    )
    with pytest.raises(ValidationError, match="refunded in full already"):  # a new form
        refund_top_up(payments, ADA, top_up_id=top_up_id, reason="customer asked", submission_id="form-0002")
    assert _charge(localstripe, intent_id)["amount_refunded"] == 2_500
    ledger_ok(payments.engine)


def test_partial_stripe_refunds_from_new_states_add_up(payments: Payments, localstripe: str) -> None:
    top_up_id, intent_id = _buy(payments, localstripe)
    first = refund_top_up(
        payments, ADA, top_up_id=top_up_id, reason="half", amount_cents=1_000, submission_id="form-0003"
    )
    second = refund_top_up(
        payments, ADA, top_up_id=top_up_id, reason="a bit more", amount_cents=500, submission_id="form-0004"
    )
    assert (first.reversed_nanos, second.reversed_nanos) == (credits_to_nanos(10), credits_to_nanos(5))
    assert _charge(localstripe, intent_id)["amount_refunded"] == 1_500
    with pytest.raises(ValidationError, match=r"between \$0.01 and \$10.00") as error:
        refund_top_up(
            payments,
            ADA,
            top_up_id=top_up_id,
            reason="too much",
            amount_cents=1_001,
            submission_id="form-0005",
        )
    assert error.value.field == "amount"
    assert balance(payments.engine) == credits_to_nanos(10)
    row = top_up_row(payments.engine, top_up_id)
    assert (row.state, row.refunded_cents) == ("credited", 1_500)
    ledger_ok(payments.engine)


def test_a_stripe_receipt_resend_sets_the_charge_receipt_email_and_the_portal_sends_nothing_itself(
    payments: Payments,
    localstripe: str,
    inbox: Inbox,  # noqa: F811
) -> None:
    top_up_id, intent_id = _buy(payments, localstripe)
    inbox.wait_for(1)  # "credits added", from the purchase
    inbox.messages.clear()

    sent = resend_receipt(payments, SAM, top_up_id=top_up_id, reason="lost it", email="ann@pay.test")
    assert (sent.recipients, sent.sent_by) == (("ann@pay.test",), "stripe")
    assert _charge(localstripe, intent_id)["receipt_email"] == "ann@pay.test"
    everyone = resend_receipt(payments, SAM, top_up_id=top_up_id, reason="to the payers")
    assert everyone.recipients == ("bill@pay.test", "olga@pay.test")
    # Each address was set in turn (Stripe emails on each change); the last one stays on the charge.
    assert _charge(localstripe, intent_id)["receipt_email"] == "olga@pay.test"
    time.sleep(0.5)
    assert inbox.messages == []  # Stripe emails its receipt: no second one from the portal
    entries = _audit(payments.engine, "resend_receipt")
    assert [e.details["after"]["sent_by"] for e in entries] == ["stripe", "stripe"]
    assert [e.details["before"]["resends"] for e in entries] == [0, 1]


def test_a_declined_top_up_has_no_receipt_to_resend(payments: Payments, localstripe: str) -> None:
    top_up_id, _intent = _buy(payments, localstripe, "4000000000000341")
    assert top_up_row(payments.engine, top_up_id).state == "failed"
    with pytest.raises(ValidationError, match="only a paid top-up has a receipt") as error:
        resend_receipt(payments, SAM, top_up_id=top_up_id, reason="customer asked")
    assert error.value.field == "top_up"
    assert _audit(payments.engine, "resend_receipt") == []
