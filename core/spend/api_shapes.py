"""The JSON shapes of caps and alert rules on the HTTP API, and in their audit entries.

Pure: a view in, a JSON-ready dict out. Money is credits as an exact decimal string with 9
places (``"50.000000000"``) with the same amount in nano-credits beside it (``limit_nanos``), as
everywhere in the API; times are ISO 8601 in UTC with ``Z``. A scope's ``value`` is null for the
whole account. The audit log keeps these same dicts as ``before`` and ``after``, so an entry
reads like the answers the caller saw.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from core.money import nanos_to_credits
from core.spend.alerts import RuleView
from core.spend.caps import CapView


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def credits_text(nanos: int) -> str:
    return format(nanos_to_credits(nanos), "f")


def _optional_credits(nanos: int | None) -> str | None:
    return None if nanos is None else credits_text(nanos)


def factor_text(factor_percent: int) -> str:
    """``250`` (percent) as ``"2.5"``: the K of a spike rule, at most two decimals."""
    text = format(Decimal(factor_percent) / 100, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def cap_json(cap: CapView) -> dict[str, Any]:
    return {
        "id": cap.cap_id,
        "account_id": cap.account_id,
        "scope": cap.scope,
        "value": cap.scope_value or None,
        "period": cap.period,
        "mode": cap.mode,
        "limit": credits_text(cap.limit_nanos),
        "limit_nanos": cap.limit_nanos,
        "state": cap.state,
        "created_by": cap.created_by,
        "created_at": iso(cap.created_at),
    }


def rule_json(rule: RuleView) -> dict[str, Any]:
    return {
        "id": rule.rule_id,
        "account_id": rule.account_id,
        "name": rule.name,
        "kind": rule.kind,
        "scope": rule.scope,
        "value": rule.scope_value or None,
        "threshold": _optional_credits(rule.threshold_nanos),
        "threshold_nanos": rule.threshold_nanos,
        "budget": _optional_credits(rule.budget_nanos),
        "budget_nanos": rule.budget_nanos,
        "percent": rule.percent,
        "days": rule.days,
        "factor": None if rule.factor_percent is None else factor_text(rule.factor_percent),
        "channels": {
            "in_app": rule.notify_in_app,
            "email": list(rule.email_to),
            "webhook_id": rule.webhook_id,
            "slack_webhook_id": rule.slack_webhook_id,
        },
        "paused": rule.paused,
        "state": rule.state,
        "condition": rule.condition,
        "created_by": rule.created_by,
        "created_at": iso(rule.created_at),
    }
