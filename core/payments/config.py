"""Payment settings from the environment, read once per process.

    STRIPE_API_KEY            Stripe secret key: real Stripe (test or live) instead of the sandbox
    STRIPE_WEBHOOK_SECRET     the endpoint's signing secret (whsec_…); needed with STRIPE_API_KEY
    STRIPE_API_BASE           another Stripe-compatible server (tests: localstripe)
    STRIPE_PUBLISHABLE_KEY    pk_…, for the 3-D Secure page (Stripe.js) when a bank asks
    STRIPE_JS_URL             where Stripe.js is loaded from (default https://js.stripe.com/v3/)
    METERLINE_PUBLIC_URL      the portal's address as customers reach it (return URLs); else
                              the address the browser used
    METERLINE_TOP_UP_MIN      smallest top-up in dollars (default 5)
    METERLINE_TOP_UP_MAX      largest top-up in dollars (default 10000)
    METERLINE_TOP_UP_PRESETS  the preset amounts in dollars (default 10,25,50,100,250)
    METERLINE_RECHARGE_MAX_FAILURES  declines in a row before auto-recharge turns itself off (default 5)
    SMTP_URL                  smtp://user:pass@host:port (or smtps://, ?from=…) to email customers as well

Without ``STRIPE_API_KEY`` payments run in the **sandbox** (like Stripe's test mode: a local
checkout page, no money moves), except with ``METERLINE_ENV=production``, where buying is
refused rather than handing out free credits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from core.amount_input import typed_amount
from core.display import format_dollars_cents
from core.errors import ValidationError

Mode = Literal["stripe", "sandbox", "disabled"]
DEFAULT_STRIPE_JS_URL = "https://js.stripe.com/v3/"
DEFAULT_PRESETS_USD = (10, 25, 50, 100, 250)


class PaymentsNotConfigured(ValidationError):
    """Payments cannot run with these settings (the message names the variable to set)."""

    http_status = 503
    default_code = "payments_not_configured"


def dollars_to_cents(text: str, *, field: str = "amount") -> int:
    """Exact cents of a dollar amount as the forms' help texts say it ("25", "12.50", "$1,000");
    anything else ("1e1", "١٢", "10.001") is a ValidationError naming ``field``."""
    return int(typed_amount(text, field=field, what="an amount in dollars", dollars=True) * 100)


def format_cents(cents: int) -> str:
    """Cents for people: "$1,284.10" (exact; core.display's rule for card amounts)."""
    return format_dollars_cents(cents)


@dataclass(frozen=True)
class TopUpLimits:
    """How much one top-up may be, and the amounts offered with one click."""

    min_cents: int = 500
    max_cents: int = 1_000_000
    presets_cents: tuple[int, ...] = tuple(dollars * 100 for dollars in DEFAULT_PRESETS_USD)

    def check(self, amount_cents: int, *, field: str = "amount") -> int:
        """``amount_cents`` if within the limits, else a ValidationError that says them."""
        if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
            raise ValidationError("the amount must be a whole number of cents", field=field)
        if amount_cents < self.min_cents:
            raise ValidationError(
                f"the smallest top-up is {format_cents(self.min_cents)}", code="too_small", field=field
            )
        if amount_cents > self.max_cents:
            raise ValidationError(
                f"the largest top-up is {format_cents(self.max_cents)}", code="too_large", field=field
            )
        return amount_cents


@dataclass(frozen=True)
class PaymentConfig:
    mode: Mode
    api_key: str = ""
    webhook_secret: str = ""
    api_base: str = ""
    publishable_key: str = ""
    stripe_js_url: str = DEFAULT_STRIPE_JS_URL
    public_url: str = ""
    limits: TopUpLimits = TopUpLimits()
    smtp_url: str = ""
    recharge_max_failures: int = 5

    @property
    def is_sandbox(self) -> bool:
        return self.mode == "sandbox"


def _limits(env: Mapping[str, str]) -> TopUpLimits:
    low = dollars_to_cents(env.get("METERLINE_TOP_UP_MIN", "") or "5", field="METERLINE_TOP_UP_MIN")
    high = dollars_to_cents(env.get("METERLINE_TOP_UP_MAX", "") or "10000", field="METERLINE_TOP_UP_MAX")
    if not 0 < low <= high:
        raise ValidationError("METERLINE_TOP_UP_MIN must be positive and at most METERLINE_TOP_UP_MAX")
    raw = env.get("METERLINE_TOP_UP_PRESETS", "")
    presets = (
        tuple(
            dollars_to_cents(part, field="METERLINE_TOP_UP_PRESETS")
            for part in raw.split(",")
            if part.strip()
        )
        if raw.strip()
        else TopUpLimits.presets_cents
    )
    return TopUpLimits(low, high, tuple(sorted({p for p in presets if low <= p <= high})))


def payment_config(env: Mapping[str, str] | None = None) -> PaymentConfig:
    """The payment settings of this process (see the module doc for the variables)."""
    env = os.environ if env is None else env
    api_key = env.get("STRIPE_API_KEY", "").strip()
    production = env.get("METERLINE_ENV", "").strip().lower() == "production"
    if api_key:
        mode: Mode = "stripe"
    elif production:
        mode = "disabled"
    else:
        mode = "sandbox"
    failures = env.get("METERLINE_RECHARGE_MAX_FAILURES", "").strip() or "5"
    if not failures.isdigit() or not 1 <= int(failures) <= 20:
        raise ValidationError("METERLINE_RECHARGE_MAX_FAILURES must be a whole number from 1 to 20")
    return PaymentConfig(
        mode=mode,
        api_key=api_key,
        webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", "").strip(),
        api_base=env.get("STRIPE_API_BASE", "").strip().rstrip("/"),
        publishable_key=env.get("STRIPE_PUBLISHABLE_KEY", "").strip(),
        stripe_js_url=env.get("STRIPE_JS_URL", "").strip() or DEFAULT_STRIPE_JS_URL,
        public_url=env.get("METERLINE_PUBLIC_URL", "").strip().rstrip("/"),
        limits=_limits(env),
        smtp_url=env.get("SMTP_URL", "").strip(),
        recharge_max_failures=int(failures),
    )
