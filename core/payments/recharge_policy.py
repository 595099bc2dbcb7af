"""Auto-recharge guardrails, pure: should it buy now, and if not, why not (in words a customer reads).

The same ``decide`` answers the ingestion trigger, the periodic sweep and the page's
"Why didn't it recharge?", so what the page says is what the code did. Guardrails:
on, a saved card, the balance below the threshold, nothing already in flight, past the
backoff after declines, within the monthly maximum, and a recharge big enough to lift
the balance above the threshold (no loop on a deep negative balance).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.display import format_credits, format_datetime
from core.errors import ValidationError
from core.money import cents_to_nanos
from core.payments.config import TopUpLimits, format_cents

BACKOFF_BASE = timedelta(hours=1)
BACKOFF_MAX = timedelta(hours=24)


@dataclass(frozen=True)
class RechargeSnapshot:
    """What a decision needs, read under the settings row's lock."""

    enabled: bool
    threshold_nanos: int
    amount_cents: int
    monthly_max_cents: int
    has_card: bool
    in_flight: bool
    failures: int
    next_attempt_at: datetime | None
    balance_nanos: int
    month_spent_cents: int  # auto-recharges this calendar month (account time), not failed or canceled
    max_failures: int
    timezone: str = "UTC"  # the account's: the words name times in it


@dataclass(frozen=True)
class Decision:
    go: bool
    code: str  # off | no_card | above_threshold | in_flight | backoff | monthly_max | too_small | recharge
    message: str


def backoff_delay(failures: int) -> timedelta:
    """How long to wait after ``failures`` declines in a row: 1 h, 2 h, 4 h, … up to 24 h."""
    if failures <= 0:
        return timedelta(0)
    return min(BACKOFF_BASE * (2 ** (failures - 1)), BACKOFF_MAX)


def decide(snapshot: RechargeSnapshot, now: datetime) -> Decision:
    """Whether to buy now; every "no" says which guardrail held and what would change it."""
    s = snapshot
    amount = format_cents(s.amount_cents)
    if not s.enabled:
        if s.failures >= s.max_failures:
            return Decision(
                False,
                "off",
                f"Auto-recharge turned itself off after {s.failures} declined attempts in a row. "
                "Check the card (or choose another) and turn it on again.",
            )
        return Decision(False, "off", "Auto-recharge is off.")
    if not s.has_card:
        return Decision(
            False, "no_card", "No saved card is chosen for auto-recharge: pick one in the settings."
        )
    if s.balance_nanos >= s.threshold_nanos:
        return Decision(
            False,
            "above_threshold",
            f"The balance ({format_credits(s.balance_nanos)}) is not below the threshold "
            f"({format_credits(s.threshold_nanos)}), so no recharge is needed.",
        )
    if s.in_flight:
        return Decision(False, "in_flight", "A recharge is already in progress; only one runs at a time.")
    if s.next_attempt_at is not None and now < s.next_attempt_at:
        return Decision(
            False,
            "backoff",
            f"The card was declined {s.failures} time{'s' if s.failures != 1 else ''} in a row; "
            f"the next attempt is not before {format_datetime(s.next_attempt_at, s.timezone)} "
            f"(attempt {s.failures + 1} of {s.max_failures}).",
        )
    if s.month_spent_cents + s.amount_cents > s.monthly_max_cents:
        return Decision(
            False,
            "monthly_max",
            f"This month's auto-recharges already add up to {format_cents(s.month_spent_cents)}; another "
            f"{amount} would pass the monthly maximum of {format_cents(s.monthly_max_cents)}. "
            "Raise the maximum or buy credits by hand.",
        )
    if s.balance_nanos + cents_to_nanos(s.amount_cents) <= s.threshold_nanos:
        return Decision(
            False,
            "too_small",
            f"A recharge of {amount} would leave the balance ({format_credits(s.balance_nanos)}) still below "
            f"the threshold ({format_credits(s.threshold_nanos)}), and it would buy again and again. "
            "Buy credits by hand to clear the negative balance, or raise the recharge amount.",
        )
    return Decision(
        True,
        "recharge",
        f"The balance ({format_credits(s.balance_nanos)}) fell below {format_credits(s.threshold_nanos)}: "
        f"buying {amount} of credits.",
    )


def check_settings(
    *,
    threshold_nanos: int,
    amount_cents: int,
    monthly_max_cents: int,
    limits: TopUpLimits,
    balance_nanos: int,
) -> None:
    """Refuse settings that could not work, naming the field: ValidationError."""
    limits.check(amount_cents, field="amount")
    if threshold_nanos < 0:
        raise ValidationError("the threshold cannot be negative", field="threshold")
    if cents_to_nanos(amount_cents) <= threshold_nanos:
        raise ValidationError(
            f"a recharge of {format_cents(amount_cents)} would not lift the balance above the threshold of "
            f"{format_credits(threshold_nanos)}: buy more than the threshold each time",
            code="amount_below_threshold",
            field="threshold",
        )
    if balance_nanos < threshold_nanos and balance_nanos + cents_to_nanos(amount_cents) <= threshold_nanos:
        raise ValidationError(
            f"the balance is {format_credits(balance_nanos)}: a recharge of {format_cents(amount_cents)} "
            f"would still leave it below the threshold of {format_credits(threshold_nanos)}. "
            "Buy credits to clear the negative balance first, or raise the amount",
            code="amount_below_deficit",
            field="amount",
        )
    if monthly_max_cents < amount_cents:
        raise ValidationError(
            "the monthly maximum must allow at least one recharge", code="too_small", field="monthly_max"
        )
    if monthly_max_cents > limits.max_cents * 100:
        raise ValidationError(
            f"the monthly maximum can be at most {format_cents(limits.max_cents * 100)}",
            code="too_large",
            field="monthly_max",
        )
