"""Alert rules: what each kind measures, its threshold, and the words a customer reads.

Pure (no database): ``threshold_of`` and ``describe_condition`` work on any object with the
rule's fields (the ORM row or a view), so the evaluator, the pages and the tests share them.

Kinds and their thresholds (see ``core.db.models.AlertRule``):

    balance_below           balance < X                              (whole account)
    spend_above             spend this period ≥ X, or ≥ N % of a budget B
    projected_spend_above   projected spend at the period's end ≥ X
    runway_below            the balance runs out within N days       (whole account)
    spend_spike             today's spend ≥ K × a usual day of its weekday (trend-adjusted) and
                            beyond its usual spread (``core.spend.anomaly``; with under four
                            weeks of history, K × the mean of the last 7 complete days)
    credits_expiring        a grant with credits left expires within N days: once per grant and N
                            (not a crossing: see ``core.spend.expiring``)   (whole account)
"""

from __future__ import annotations

from typing import Protocol

from core.display import format_credits
from core.spend.anomaly import Baseline
from core.spend.crossing import Threshold
from core.spend.measure import Scope

KIND_LABELS = {
    "balance_below": "Balance below an amount",
    "spend_above": "Spend this month above an amount or a % of a budget",
    "projected_spend_above": "Projected spend this month above an amount",
    "runway_below": "Balance runs out within N days",
    "spend_spike": "Daily spend spike (K × a usual day of the same weekday)",
    "credits_expiring": "Credits expire within N days",
}
SCOPE_LABELS = {"account": "Whole account", "project": "Project", "meter": "Meter", "api_key": "API key"}
ACCOUNT_ONLY_KINDS = ("balance_below", "runway_below", "credits_expiring")  # the whole account's
UNIT_OF_KIND = {"runway_below": "days", "credits_expiring": "days"}  # every other kind measures nano-credits


class RuleFields(Protocol):
    kind: str
    scope: str
    scope_value: str
    threshold_nanos: int | None
    budget_nanos: int | None
    percent: int | None
    days: int | None
    factor_percent: int | None


def unit_of(kind: str) -> str:
    return UNIT_OF_KIND.get(kind, "nanos")


def threshold_of(rule: RuleFields, *, spike: Baseline | None = None) -> Threshold | None:
    """The rule's threshold on its measured value; None when it cannot be known yet (a spike
    rule without the history its baseline, ``spike``, needs)."""
    if rule.kind == "balance_below":
        return Threshold.absolute("below", _required(rule.threshold_nanos))
    if rule.kind in ("spend_above", "projected_spend_above"):
        if rule.threshold_nanos is not None:
            return Threshold.absolute("above", rule.threshold_nanos)
        return Threshold.percent_of("above", _required(rule.budget_nanos), _required(rule.percent))
    if rule.kind == "runway_below":
        # "Runs out within N days": a runway of N days or fewer fires.
        return Threshold.absolute("below", _required(rule.days) + 1)
    if rule.kind == "spend_spike":
        _required(rule.factor_percent)
        if spike is None:
            return None
        # K, the noise guard and the floor are in the baseline's threshold (core.spend.anomaly).
        return Threshold.absolute("above", spike.threshold_nanos)
    if rule.kind == "credits_expiring":
        # Days left on a grant: fewer than N + 1 (within N days) is due a notice, once.
        return Threshold.absolute("below", _required(rule.days) + 1)
    raise ValueError(f"unknown alert kind {rule.kind!r}")


def _required(value: int | None) -> int:
    if value is None:
        raise ValueError("the rule lacks a threshold field its kind needs")
    return value


def format_factor(factor_percent: int) -> str:
    whole, rest = divmod(factor_percent, 100)
    return f"{whole}×" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "×"


def describe_condition(rule: RuleFields) -> str:
    """The condition in words: "Spend this month on project copilot reaches 80% of $500.00 ($400.00)"."""
    scope = Scope(rule.scope, rule.scope_value)
    where = "" if scope.kind == "account" else f" on {scope.describe()}"
    if rule.kind == "balance_below":
        return f"Balance drops below {format_credits(_required(rule.threshold_nanos))}"
    if rule.kind in ("spend_above", "projected_spend_above"):
        what = "Spend this month" if rule.kind == "spend_above" else "Projected spend at the month's end"
        if rule.threshold_nanos is not None:
            return f"{what}{where} reaches {format_credits(rule.threshold_nanos)}"
        budget, percent = _required(rule.budget_nanos), _required(rule.percent)
        threshold = Threshold.percent_of("above", budget, percent)
        amount = format_credits(threshold.value)
        return f"{what}{where} reaches {percent}% of a {format_credits(budget)} budget ({amount})"
    if rule.kind == "runway_below":
        days = _required(rule.days)
        return f"The balance runs out within {days} day{'s' if days != 1 else ''} at the recent pace"
    if rule.kind == "spend_spike":
        return (
            f"Today's spend{where} reaches {format_factor(_required(rule.factor_percent))} "
            "a usual day of its weekday (trend-adjusted; beyond its usual spread)"
        )
    if rule.kind == "credits_expiring":
        days = _required(rule.days)
        return (
            f"Credits of a grant expire within {days} day{'s' if days != 1 else ''} "
            "(told once per grant, with what would expire unused at the recent pace)"
        )
    return rule.kind


def format_value(value: int | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "days":
        return f"{value:,} day{'s' if value != 1 else ''}"
    return format_credits(value)
