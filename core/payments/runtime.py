"""What the payment commands work with, wired once per process: engine, provider, secret, clock.

``payments_from_env`` picks the provider from the settings (``core.payments.config``): real
Stripe with ``STRIPE_API_KEY``, else the sandbox, whose events go to the same webhook
handler as Stripe's (signed with the same secret), a moment later on a background thread
as Stripe delivers them, or at once (``sandbox_delivery="sync"``: tests and the demo seed).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Engine

from core.clock import Clock, system_clock
from core.payments.config import PaymentConfig, payment_config
from core.payments.provider import PaymentProvider
from core.payments.sandbox import SandboxProvider
from core.payments.stripe_provider import StripeProvider

log = logging.getLogger("meterline.payments")

SANDBOX_DELIVERY_DELAY_S = 0.5


@dataclass
class Payments:
    engine: Engine
    config: PaymentConfig
    provider: PaymentProvider | None  # None: payments are off (production without Stripe keys)
    clock: Clock = system_clock
    _secret: str = field(default="", repr=False)

    @property
    def webhook_secret(self) -> str:
        """The secret webhook signatures are checked with ("" when none is configured)."""
        if self._secret:
            return self._secret
        if isinstance(self.provider, SandboxProvider):
            return self.provider.secret
        return ""

    @property
    def mode(self) -> str:
        return self.config.mode


def sandbox_payments(
    engine: Engine,
    config: PaymentConfig | None = None,
    *,
    clock: Clock = system_clock,
    delivery: Literal["sync", "async", "none"] = "sync",
    secret: str | None = None,
) -> Payments:
    """Payments on the sandbox provider, its events delivered to ``receive_webhook``."""
    from core.payments.webhook import receive_webhook

    config = config or PaymentConfig(mode="sandbox")
    provider = SandboxProvider(engine, secret=secret or config.webhook_secret or None, clock=clock)
    payments = Payments(engine, config, provider, clock)

    def deliver_now(payload: bytes, signature: str) -> None:
        reply = receive_webhook(
            engine,
            provider,
            payload=payload,
            signature=signature,
            secret=provider.secret,
            clock=payments.clock,
        )
        if reply.status != 200:
            log.error("the sandbox's own event was refused: %s %s", reply.status, reply.body)

    def deliver_later(payload: bytes, signature: str) -> None:
        def run() -> None:
            try:
                deliver_now(payload, signature)
            except Exception:  # as with Stripe: the return page and reconciliation settle it anyway
                log.exception("sandbox webhook delivery failed")

        timer = threading.Timer(SANDBOX_DELIVERY_DELAY_S, run)
        timer.daemon = True
        timer.start()

    if delivery == "sync":
        provider.deliver = deliver_now
    elif delivery == "async":
        provider.deliver = deliver_later
    return payments


def payments_from_env(engine: Engine, *, clock: Clock = system_clock) -> Payments:
    """The process's payments as configured (see ``core.payments.config``)."""
    config = payment_config()
    if config.mode == "stripe":
        provider = StripeProvider(config.api_key, api_base=config.api_base)
        return Payments(engine, config, provider, clock, config.webhook_secret)
    if config.mode == "sandbox":
        return sandbox_payments(engine, config, clock=clock, delivery="async")
    return Payments(engine, config, None, clock, config.webhook_secret)
