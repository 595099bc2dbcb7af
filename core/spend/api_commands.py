"""Caps and alert rules changed through the HTTP API: each change checked, made, audited.

Thin commands over ``core.spend.caps`` and ``core.spend.alerts``: they take a ``Change`` (actor,
time, credential, idempotency key), check the permission first (so a refused caller learns
nothing), make the change, and write its audit entry in the same transaction
(``core.spend.change_log``). A create answers ``(answer, replayed)``: ``replayed`` is True
when an earlier create with the same ``Idempotency-Key`` and request was found and nothing new
was made.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core.accounts.permissions import ALERTS_EDIT, CAPS_EDIT, require_permission
from core.errors import ValidationError
from core.spend import alerts, caps
from core.spend.alerts import RuleInput, RuleView
from core.spend.api_shapes import cap_json, credits_text, factor_text, rule_json
from core.spend.change_log import Change, earlier_create, lock_account, record_change, request_digest

CAP_CREATE, CAP_UPDATE, CAP_DELETE = "caps.create", "caps.update", "caps.delete"
RULE_CREATE, RULE_UPDATE, RULE_DELETE = "alert_rules.create", "alert_rules.update", "alert_rules.delete"
RULE_FIELDS = frozenset(f.name for f in dataclasses.fields(RuleInput)) | {"paused"}


PERIOD_WORDS = {"day": "daily", "week": "weekly", "month": "monthly"}


def _cap_words(answer: dict[str, Any]) -> str:
    where = answer["scope"] if answer["value"] is None else f"{answer['scope']} {answer['value']}"
    period = PERIOD_WORDS.get(answer["period"], answer["period"])
    return f"{answer['mode']} {period} cap of {answer['limit']} credits on {where}"


def create_cap(
    session: Session,
    change: Change,
    *,
    account_id: str,
    scope: str,
    scope_value: str,
    period: str,
    limit: str,
    mode: str,
) -> tuple[dict[str, Any], bool]:
    require_permission(session, change.actor, account_id=account_id, permission=CAPS_EDIT)
    lock_account(session, account_id)
    digest = request_digest(
        {"scope": scope, "value": scope_value, "period": period, "limit": limit, "mode": mode}
    )
    earlier = earlier_create(session, change, action=CAP_CREATE, account_id=account_id, request_sha256=digest)
    if earlier is not None:
        return earlier, True
    view = caps.create_cap(
        session,
        account_id=account_id,
        scope=scope,
        scope_value=scope_value,
        period=period,
        limit=limit,
        mode=mode,
        actor=change.actor,
        at=change.at,
    )
    answer = cap_json(view)
    record_change(
        session,
        change,
        action=CAP_CREATE,
        account_id=account_id,
        target=f"spend_cap:{view.cap_id}",
        before=None,
        after=answer,
        reason=f"API: created a {_cap_words(answer)}",
        request_sha256=digest,
    )
    return answer, False


def update_cap(
    session: Session,
    change: Change,
    *,
    account_id: str,
    cap_id: int,
    limit: str | None = None,
    mode: str | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    require_permission(session, change.actor, account_id=account_id, permission=CAPS_EDIT)
    before = cap_json(caps.get_cap(session, account_id, cap_id))
    view = caps.update_cap(
        session,
        account_id=account_id,
        cap_id=cap_id,
        limit=limit,
        mode=mode,
        period=period,
        actor=change.actor,
        at=change.at,
    )
    after = cap_json(view)
    record_change(
        session,
        change,
        action=CAP_UPDATE,
        account_id=account_id,
        target=f"spend_cap:{cap_id}",
        before=before,
        after=after,
        reason=f"API: changed cap {cap_id} to a {_cap_words(after)}",
    )
    return after


def delete_cap(session: Session, change: Change, *, account_id: str, cap_id: int) -> None:
    require_permission(session, change.actor, account_id=account_id, permission=CAPS_EDIT)
    before = cap_json(caps.get_cap(session, account_id, cap_id))
    caps.delete_cap(session, account_id=account_id, cap_id=cap_id, actor=change.actor, at=change.at)
    record_change(
        session,
        change,
        action=CAP_DELETE,
        account_id=account_id,
        target=f"spend_cap:{cap_id}",
        before=before,
        after=None,
        reason=f"API: deleted cap {cap_id}, a {_cap_words(before)}",
    )


# --- Alert rules ------------------------------------------------------------------------------------


def rule_input(view: RuleView) -> RuleInput:
    """A stored rule as the input that would make it again (money as credits text)."""
    return RuleInput(
        name=view.name,
        kind=view.kind,
        scope=view.scope,
        scope_value=view.scope_value,
        threshold=None if view.threshold_nanos is None else credits_text(view.threshold_nanos),
        budget=None if view.budget_nanos is None else credits_text(view.budget_nanos),
        percent=view.percent,
        days=view.days,
        factor=None if view.factor_percent is None else factor_text(view.factor_percent),
        notify_in_app=view.notify_in_app,
        email_to=tuple(view.email_to),
        webhook_id=view.webhook_id,
        slack_webhook_id=view.slack_webhook_id,
    )


def patched_rule(view: RuleView, changes: dict[str, Any]) -> RuleInput:
    """The rule with ``changes`` (RuleInput fields) applied. An amount replaces a budget and
    percentage, and the other way round; moving to the account scope drops the scope's value."""
    current = dataclasses.asdict(rule_input(view))
    if "threshold" in changes:
        current["budget"] = current["percent"] = None
    if "budget" in changes or "percent" in changes:
        current["threshold"] = None
    if changes.get("scope") == "account":
        current["scope_value"] = ""
    current.update({name: value for name, value in changes.items() if name in current})
    if current["scope"] == "account" and changes.get("scope_value"):
        raise ValidationError(
            "the account scope takes no value: leave it out", code="not_allowed", field="scope_value"
        )
    current["email_to"] = tuple(current["email_to"])
    return RuleInput(**current)


def _rule_request(rule: RuleInput, paused: bool) -> dict[str, Any]:
    request = dataclasses.asdict(rule)
    request["email_to"] = list(rule.email_to)
    request["paused"] = paused
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in request.items()}


def create_rule(
    session: Session, change: Change, *, account_id: str, rule: RuleInput, paused: bool = False
) -> tuple[dict[str, Any], bool]:
    require_permission(session, change.actor, account_id=account_id, permission=ALERTS_EDIT)
    lock_account(session, account_id)
    digest = request_digest(_rule_request(rule, paused))
    earlier = earlier_create(
        session, change, action=RULE_CREATE, account_id=account_id, request_sha256=digest
    )
    if earlier is not None:
        return earlier, True
    view = alerts.create_rule(session, account_id=account_id, rule=rule, actor=change.actor, at=change.at)
    if paused:
        view = alerts.set_rule_paused(
            session,
            account_id=account_id,
            rule_id=view.rule_id,
            paused=True,
            actor=change.actor,
            at=change.at,
        )
    answer = rule_json(view)
    record_change(
        session,
        change,
        action=RULE_CREATE,
        account_id=account_id,
        target=f"alert_rule:{view.rule_id}",
        before=None,
        after=answer,
        reason=f"API: created alert rule {view.rule_id} “{view.name}”: {view.condition}",
        request_sha256=digest,
    )
    return answer, False


def update_rule(
    session: Session, change: Change, *, account_id: str, rule_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply ``changes`` (RuleInput fields and ``paused``; absent: unchanged) to a rule."""
    unknown = set(changes) - RULE_FIELDS
    if unknown:
        raise ValueError(f"not rule fields: {sorted(unknown)}")  # the API layer names only known fields
    require_permission(session, change.actor, account_id=account_id, permission=ALERTS_EDIT)
    current = alerts.get_rule(session, account_id, rule_id)
    before = rule_json(current)
    fields = {name: value for name, value in changes.items() if name != "paused"}
    view = current
    if fields:
        view = alerts.update_rule(
            session,
            account_id=account_id,
            rule_id=rule_id,
            rule=patched_rule(current, fields),
            actor=change.actor,
            at=change.at,
        )
    if "paused" in changes and bool(changes["paused"]) != view.paused:
        view = alerts.set_rule_paused(
            session,
            account_id=account_id,
            rule_id=rule_id,
            paused=bool(changes["paused"]),
            actor=change.actor,
            at=change.at,
        )
    after = rule_json(view)
    record_change(
        session,
        change,
        action=RULE_UPDATE,
        account_id=account_id,
        target=f"alert_rule:{rule_id}",
        before=before,
        after=after,
        reason=f"API: changed alert rule {rule_id} “{view.name}”: {view.condition}"
        + (" (paused)" if view.paused else ""),
    )
    return after


def delete_rule(session: Session, change: Change, *, account_id: str, rule_id: int) -> None:
    require_permission(session, change.actor, account_id=account_id, permission=ALERTS_EDIT)
    current = alerts.get_rule(session, account_id, rule_id)
    alerts.delete_rule(session, account_id=account_id, rule_id=rule_id, actor=change.actor, at=change.at)
    record_change(
        session,
        change,
        action=RULE_DELETE,
        account_id=account_id,
        target=f"alert_rule:{rule_id}",
        before=rule_json(current),
        after=None,
        reason=f"API: deleted alert rule {rule_id} “{current.name}”",
    )
