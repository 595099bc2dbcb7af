"""Payments: buying credits through Stripe (or the sandbox), credited exactly once.

provider.py        the PaymentProvider interface; stripe_provider.py and sandbox.py implement it
states.py          the top-up state machine (pure)
top_ups.py         start a checkout, buy with a saved card, read back the real state
settle.py          fulfill_top_up and the rest of settling: fail, refund, dispute (under locks)
webhook.py         verify, record once, settle (POST /api/webhooks/stripe)
reconcile.py       settle what a lost webhook left open (meterline payments reconcile)
recharge.py        auto-recharge: settings, one run, the trigger after ingestion
recharge_policy.py its guardrails (pure): should it buy now, and if not, why not
views.py           what the Buy credits page reads
cards.py           remove a saved card (detach it, stop offering it, auto-recharge off if it paid with it)
notify.py          in-app and email notices, support alerts
config.py          settings from the environment; runtime.py wires them into ``Payments``
"""

from core.accounts.permissions import Actor  # the acting user of every customer write (re-exported)
from core.payments.cards import CardRemoval, remove_saved_card
from core.payments.config import PaymentConfig, TopUpLimits, format_cents, payment_config
from core.payments.provider import Card, PaymentProvider, ProviderError
from core.payments.recharge import RechargeTrigger, run_auto_recharge, save_auto_recharge
from core.payments.reconcile import ReconcileReport, reconcile
from core.payments.runtime import Payments, payments_from_env, sandbox_payments
from core.payments.settle import PaymentReceived, fulfill_top_up
from core.payments.top_ups import (
    buy_with_saved_card,
    cancel_checkout,
    describe,
    refresh_top_up,
    start_checkout,
)
from core.payments.views import TopUpView, auto_recharge_view, saved_cards, top_up_history, top_up_view
from core.payments.webhook import WebhookReply, receive_webhook

__all__ = [
    "Actor",
    "Card",
    "CardRemoval",
    "PaymentConfig",
    "PaymentProvider",
    "PaymentReceived",
    "Payments",
    "ProviderError",
    "RechargeTrigger",
    "ReconcileReport",
    "TopUpLimits",
    "TopUpView",
    "WebhookReply",
    "auto_recharge_view",
    "buy_with_saved_card",
    "cancel_checkout",
    "describe",
    "format_cents",
    "fulfill_top_up",
    "payment_config",
    "payments_from_env",
    "receive_webhook",
    "reconcile",
    "refresh_top_up",
    "remove_saved_card",
    "run_auto_recharge",
    "sandbox_payments",
    "save_auto_recharge",
    "saved_cards",
    "start_checkout",
    "top_up_history",
    "top_up_view",
]
