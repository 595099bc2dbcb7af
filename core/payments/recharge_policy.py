"""Auto-recharge guardrails, pure: should it buy now, how much, and if not, why not (in words a
customer reads).

The same ``decide`` answers the ingestion trigger, the periodic sweep and the page's
"Why didn't it recharge?", so what the page says is what the code did. Guardrails:
on, a saved card, the balance below the threshold, nothing already in flight, past the
backoff after declines, within the monthly maximum, and a recharge big enough to lift
the balance above the threshold (no loop on a deep negative balance).

Two modes: ``fixed`` buys ``amount_cents`` each time; ``target`` buys what brings the balance back
to ``target_nanos`` (``target_charge_cents``: the shortfall rounded up to a cent, at least the
top-up minimum, at most the top-up maximum and the room left under the monthly maximum).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from core.display import format_credits, format_datetime
from core.errors import ValidationError
from core.money import cents_to_nanos
from core.payments.config import TopUpLimits, format_cents

BACKOFF_BASE = timedelta(hours=1)
BACKOFF_MAX = timedelta(hours=24)
RECHARGE_MODES = ("fixed", "target")
RechargeMode = Literal["fixed", "target"]
NANOS_PER_CENT = cents_to_nanos(1)


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
    mode: str = "fixed"  # fixed | target
    target_nanos: int | None = None  # mode "target": the balance to bring the account back to
    limits: TopUpLimits = field(default_factory=TopUpLimits)  # one charge's minimum and maximum


@dataclass(frozen=True)
class Decision:
    go: bool
    code: str  # off | no_card | above_threshold | in_flight | backoff | monthly_max | too_small | recharge
    message: str
    amount_cents: int = 0  # when it goes: what to charge


def target_charge_cents(
    *, balance_nanos: int, target_nanos: int, min_cents: int, max_cents: int, room_cents: int
) -> int | None:
    """One charge that brings the balance back to the target: the shortfall rounded up to the next
    cent, at least ``min_cents``, at most ``max_cents`` and ``room_cents`` (what the monthly maximum
    still allows). None when the room is below the minimum: no charge can be made this month."""
    if room_cents < min_cents:
        return None
    shortfall_nanos = max(0, target_nanos - balance_nanos)
    cents = -(-shortfall_nanos // NANOS_PER_CENT)  # rounded up: never short of the target
    return min(max(cents, min_cents), max_cents, room_cents)


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
    if s.mode == "target":
        return _decide_target(s)
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
        s.amount_cents,
    )


def _decide_target(s: RechargeSnapshot) -> Decision:
    """The monthly-maximum, too-small and go decisions of "bring the balance back to Y"."""
    assert s.target_nanos is not None
    room = s.monthly_max_cents - s.month_spent_cents
    cents = target_charge_cents(
        balance_nanos=s.balance_nanos,
        target_nanos=s.target_nanos,
        min_cents=s.limits.min_cents,
        max_cents=s.limits.max_cents,
        room_cents=room,
    )
    if cents is None:
        return Decision(
            False,
            "monthly_max",
            f"This month's auto-recharges already add up to {format_cents(s.month_spent_cents)}; the "
            f"{format_cents(max(0, room))} left under the monthly maximum of "
            f"{format_cents(s.monthly_max_cents)} "
            f"is less than the smallest top-up ({format_cents(s.limits.min_cents)}). "
            "Raise the maximum or buy credits by hand.",
        )
    target = format_credits(s.target_nanos)
    if s.balance_nanos + cents_to_nanos(cents) <= s.threshold_nanos:
        return Decision(
            False,
            "too_small",
            f"The most one recharge may buy now ({format_cents(cents)}) would leave the balance "
            f"({format_credits(s.balance_nanos)}) still below the threshold "
            f"({format_credits(s.threshold_nanos)}), "
            "and it would buy again and again. Buy credits by hand to clear the negative balance, "
            "or raise the monthly maximum.",
        )
    reaches = s.balance_nanos + cents_to_nanos(cents)
    short = (
        ""
        if reaches >= s.target_nanos
        else f" (as much as one charge may be now: the balance reaches {format_credits(reaches)})"
    )
    return Decision(
        True,
        "recharge",
        f"The balance ({format_credits(s.balance_nanos)}) fell below {format_credits(s.threshold_nanos)}: "
        f"buying {format_cents(cents)} of credits to bring it back to {target}{short}.",
        cents,
    )


def check_settings(
    *,
    threshold_nanos: int,
    amount_cents: int,
    monthly_max_cents: int,
    limits: TopUpLimits,
    balance_nanos: int,
    mode: str = "fixed",
    target_nanos: int | None = None,
) -> None:
    """Refuse settings that could not work, naming the field: ValidationError."""
    if mode not in RECHARGE_MODES:
        raise ValidationError(
            f"mode must be one of {', '.join(RECHARGE_MODES)}", code="unknown_mode", field="mode"
        )
    if mode == "target":
        _check_target(
            threshold_nanos=threshold_nanos,
            target_nanos=target_nanos,
            monthly_max_cents=monthly_max_cents,
            limits=limits,
            balance_nanos=balance_nanos,
        )
        return
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


def max_target_nanos(limits: TopUpLimits) -> int:
    """The highest balance "bring it back to" may name: a month of the largest top-ups, at most."""
    return cents_to_nanos(limits.max_cents * 100)


def _check_target(
    *,
    threshold_nanos: int,
    target_nanos: int | None,
    monthly_max_cents: int,
    limits: TopUpLimits,
    balance_nanos: int,
) -> None:
    if threshold_nanos < 0:
        raise ValidationError("the threshold cannot be negative", field="threshold")
    if target_nanos is None:
        raise ValidationError("give the balance to bring it back to", code="required", field="target")
    if target_nanos <= threshold_nanos:
        raise ValidationError(
            f"the balance to bring it back to must be greater than the threshold of "
            f"{format_credits(threshold_nanos)}",
            code="target_not_above_threshold",
            field="target",
        )
    if target_nanos > max_target_nanos(limits):
        raise ValidationError(
            f"the balance to bring it back to can be at most {format_credits(max_target_nanos(limits))}",
            code="too_large",
            field="target",
        )
    if monthly_max_cents < limits.min_cents:
        raise ValidationError(
            f"the monthly maximum must allow at least one recharge ({format_cents(limits.min_cents)})",
            code="too_small",
            field="monthly_max",
        )
    if monthly_max_cents > limits.max_cents * 100:
        raise ValidationError(
            f"the monthly maximum can be at most {format_cents(limits.max_cents * 100)}",
            code="too_large",
            field="monthly_max",
        )
    largest = min(limits.max_cents, monthly_max_cents)
    if balance_nanos < threshold_nanos and balance_nanos + cents_to_nanos(largest) <= threshold_nanos:
        raise ValidationError(
            f"the balance is {format_credits(balance_nanos)}: even the largest recharge "
            f"({format_cents(largest)}) would leave it below the threshold of "
            f"{format_credits(threshold_nanos)}. "
            "Buy credits to clear the negative balance first",
            code="amount_below_deficit",
            field="threshold",
        )
