"""Alert rules and webhook endpoints: create, edit, pause, delete; firing history and delivery log.

Every command takes the account it acts on and refuses an id of another account's rule the
same way as a missing one (``NotFound``), so a tampered id reveals nothing. Every write takes the
acting ``Actor`` and checks, in its own transaction, that it may change the account's alert rules
or webhooks (owners and admins: ``core.accounts.permissions``); a customer view is read-only.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.permissions import ALERTS_EDIT, WEBHOOKS_EDIT, Actor, require_permission
from core.db.models import ALERT_KINDS, ALERT_SCOPES, AlertDelivery, AlertFiring, AlertRule, AlertWebhook
from core.errors import NotFound, ValidationError
from core.money import credits_to_nanos, to_decimal
from core.spend.expiring import MAX_EXPIRY_DAYS
from core.spend.measure import meter_id_of
from core.spend.rules import ACCOUNT_ONLY_KINDS, describe_condition, unit_of
from core.spend.slack_hooks import live_slack_webhook
from core.text import single_line_text

MAX_RULES_PER_ACCOUNT = 100
MAX_WEBHOOKS_PER_ACCOUNT = 10
MAX_EMAILS_PER_RULE = 10
MAX_PERCENT = 10_000  # 100× a budget
MAX_DAYS = 365
MAX_FACTOR_PERCENT = 100_000  # 1,000×
MAX_MONEY_NANOS = 10**18
_EMAIL = re.compile(r"^[^@\s,;<>\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def is_email_address(text: str) -> bool:
    """True for one plain address (``name@host.tld``), the shape every email field here accepts."""
    return bool(_EMAIL.match(text))


@dataclass(frozen=True)
class RuleInput:
    """What a customer fills in. Money is credits (1 credit = $1) as a string or Decimal."""

    name: str
    kind: str
    scope: str = "account"
    scope_value: str = ""
    threshold: str | Decimal | int | None = None
    budget: str | Decimal | int | None = None
    percent: str | Decimal | int | None = None
    days: int | str | None = None
    factor: str | Decimal | int | None = None
    notify_in_app: bool = True
    email_to: Sequence[str] = field(default_factory=tuple)
    webhook_id: int | None = None
    slack_webhook_id: int | None = None


@dataclass(frozen=True)
class RuleView:
    rule_id: int
    account_id: str
    name: str
    kind: str
    scope: str
    scope_value: str
    threshold_nanos: int | None
    budget_nanos: int | None
    percent: int | None
    days: int | None
    factor_percent: int | None
    notify_in_app: bool
    email_to: tuple[str, ...]
    webhook_id: int | None
    paused: bool
    state: str
    last_value: int | None
    last_evaluated_at: datetime | None
    created_by: str
    created_at: datetime
    slack_webhook_id: int | None = None

    @property
    def condition(self) -> str:
        return describe_condition(self)

    @property
    def unit(self) -> str:
        return unit_of(self.kind)


@dataclass(frozen=True)
class WebhookView:
    webhook_id: int
    url: str
    secret_hint: str  # the secret's last characters: the whole secret is shown once, at creation
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class NewWebhook:
    webhook: WebhookView
    secret: str  # show it once; it is never shown again


@dataclass(frozen=True)
class FiringView:
    firing_id: int
    rule_id: int | None
    cap_id: int | None
    subject: str
    event: str
    value: int
    threshold: int
    unit: str
    message: str
    at: datetime


@dataclass(frozen=True)
class DeliveryView:
    delivery_id: int
    firing_id: int
    channel: str
    target: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    delivered_at: datetime | None
    created_at: datetime


def rule_view(rule: AlertRule) -> RuleView:
    return RuleView(
        rule_id=rule.id,
        account_id=rule.account_id,
        name=rule.name,
        kind=rule.kind,
        scope=rule.scope,
        scope_value=rule.scope_value,
        threshold_nanos=rule.threshold_nanos,
        budget_nanos=rule.budget_nanos,
        percent=rule.percent,
        days=rule.days,
        factor_percent=rule.factor_percent,
        notify_in_app=rule.notify_in_app,
        email_to=tuple(rule.email_to or ()),
        webhook_id=rule.webhook_id,
        paused=rule.paused,
        state=rule.state,
        last_value=rule.last_value,
        last_evaluated_at=rule.last_evaluated_at,
        created_by=rule.created_by,
        created_at=rule.created_at,
        slack_webhook_id=rule.slack_webhook_id,
    )


# --- Parsing what a person typed ------------------------------------------------------------------


def _money(value: object, field_name: str, *, allow_zero: bool = True) -> int:
    try:
        nanos = credits_to_nanos(value, field=field_name)
    except ValueError as error:
        raise ValidationError(str(error), code="not_a_number", field=field_name) from None
    if nanos < 0 or (nanos == 0 and not allow_zero):
        raise ValidationError(
            f"{field_name} must be more than zero", code="must_be_positive", field=field_name
        )
    if nanos > MAX_MONEY_NANOS:
        raise ValidationError(f"{field_name} is too large", code="too_large", field=field_name)
    return nanos


def _whole(value: object, field_name: str, *, low: int, high: int) -> int:
    try:
        number = to_decimal(value, field=field_name)
    except ValueError as error:
        raise ValidationError(str(error), code="not_a_number", field=field_name) from None
    if number != number.to_integral_value():
        raise ValidationError(f"{field_name} must be a whole number", code="not_an_integer", field=field_name)
    if not low <= number <= high:
        raise ValidationError(
            f"{field_name} must be from {low:,} to {high:,}", code="out_of_range", field=field_name
        )
    return int(number)


def parse_factor_percent(value: object) -> int:
    """A spike rule's K as typed ("2.5") as a percentage (250); ``ValidationError`` on ``factor``."""
    return _factor_percent(value)


def _factor_percent(value: object) -> int:
    try:
        factor = to_decimal(value, field="factor")
    except ValueError as error:
        raise ValidationError(str(error), code="not_a_number", field="factor") from None
    scaled = factor * 100
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            "factor takes at most two decimals (e.g. 2.5)", code="too_precise", field="factor"
        )
    if not 101 <= scaled <= MAX_FACTOR_PERCENT:
        raise ValidationError(
            "factor must be more than 1 and at most 1,000", code="out_of_range", field="factor"
        )
    return int(scaled)


def _emails(addresses: Sequence[str]) -> list[str]:
    cleaned = []
    for address in addresses:
        text = single_line_text(address.strip(), field="email_to")
        if not text:
            continue
        if not _EMAIL.match(text):
            raise ValidationError(f"{text!r} is not an email address", code="invalid_email", field="email_to")
        if text.lower() not in cleaned:
            cleaned.append(text.lower())
    if len(cleaned) > MAX_EMAILS_PER_RULE:
        raise ValidationError(
            f"at most {MAX_EMAILS_PER_RULE} email addresses", code="too_many", field="email_to"
        )
    return cleaned


def parse_email_list(text: str) -> list[str]:
    """Addresses separated by commas, semicolons or new lines."""
    return [part for part in re.split(r"[,;\s]+", text) if part]


@dataclass(frozen=True)
class _Parsed:
    threshold_nanos: int | None = None
    budget_nanos: int | None = None
    percent: int | None = None
    days: int | None = None
    factor_percent: int | None = None


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _thresholds(rule: RuleInput) -> _Parsed:
    if rule.kind == "balance_below":
        if _blank(rule.threshold):
            raise ValidationError("give the balance to alert below", code="required", field="threshold")
        return _Parsed(threshold_nanos=_money(rule.threshold, "threshold"))
    if rule.kind in ("spend_above", "projected_spend_above"):
        if not _blank(rule.threshold):
            if not (_blank(rule.budget) and _blank(rule.percent)):
                raise ValidationError(
                    "give either an amount or a percentage of a budget, not both",
                    code="ambiguous",
                    field="threshold",
                )
            return _Parsed(threshold_nanos=_money(rule.threshold, "threshold", allow_zero=False))
        if _blank(rule.budget) or _blank(rule.percent):
            raise ValidationError(
                "give an amount, or a budget and a percentage of it", code="required", field="threshold"
            )
        return _Parsed(
            budget_nanos=_money(rule.budget, "budget", allow_zero=False),
            percent=_whole(rule.percent, "percent", low=1, high=MAX_PERCENT),
        )
    if rule.kind == "runway_below":
        if _blank(rule.days):
            raise ValidationError("give the number of days", code="required", field="days")
        return _Parsed(days=_whole(rule.days, "days", low=1, high=MAX_DAYS))
    if rule.kind == "credits_expiring":
        if _blank(rule.days):
            raise ValidationError("give the number of days", code="required", field="days")
        return _Parsed(days=_whole(rule.days, "days", low=1, high=MAX_EXPIRY_DAYS))
    if rule.kind == "spend_spike":
        if _blank(rule.factor):
            raise ValidationError("give the factor K (e.g. 3 for 3×)", code="required", field="factor")
        return _Parsed(factor_percent=_factor_percent(rule.factor))
    raise ValidationError(f"kind must be one of {', '.join(ALERT_KINDS)}", code="unknown_kind", field="kind")


def _validated(session: Session, account_id: str, rule: RuleInput) -> tuple[str, str, str, _Parsed]:
    name = single_line_text(rule.name.strip(), field="name")
    if not name:
        raise ValidationError("give the rule a name", code="required", field="name")
    if len(name) > 200:
        raise ValidationError("the name is longer than 200 characters", code="too_long", field="name")
    if rule.kind not in ALERT_KINDS:
        raise ValidationError(
            f"kind must be one of {', '.join(ALERT_KINDS)}", code="unknown_kind", field="kind"
        )
    if rule.scope not in ALERT_SCOPES:
        raise ValidationError(
            f"scope must be one of {', '.join(ALERT_SCOPES)}", code="unknown_scope", field="scope"
        )
    scope_value = (
        single_line_text(rule.scope_value.strip(), field="scope_value") if rule.scope != "account" else ""
    )
    if rule.kind in ACCOUNT_ONLY_KINDS and rule.scope != "account":
        raise ValidationError(
            "a balance belongs to the whole account: use the account scope",
            code="account_only",
            field="scope",
        )
    if rule.scope != "account":
        if not scope_value:
            raise ValidationError(
                f"name the {rule.scope.replace('_', ' ')}", code="required", field="scope_value"
            )
        if len(scope_value) > 128:
            raise ValidationError(
                "the scope is longer than 128 characters", code="too_long", field="scope_value"
            )
        if rule.scope == "meter":
            meter_id_of(session, scope_value)
    parsed = _thresholds(rule)
    if rule.webhook_id is not None:
        _webhook(session, account_id, rule.webhook_id)
    if rule.slack_webhook_id is not None:
        live_slack_webhook(session, account_id, rule.slack_webhook_id)
    emails = _emails(rule.email_to)
    if not (rule.notify_in_app or emails or rule.webhook_id is not None or rule.slack_webhook_id is not None):
        raise ValidationError(
            "pick at least one channel: in-app, email, a webhook or Slack",
            code="no_channel",
            field="channels",
        )
    return name, scope_value, ",".join(emails), parsed


def _apply(
    rule_row: AlertRule, rule: RuleInput, name: str, scope_value: str, emails: str, parsed: _Parsed
) -> None:
    rule_row.name = name
    rule_row.kind = rule.kind
    rule_row.scope = rule.scope
    rule_row.scope_value = scope_value
    rule_row.threshold_nanos = parsed.threshold_nanos
    rule_row.budget_nanos = parsed.budget_nanos
    rule_row.percent = parsed.percent
    rule_row.days = parsed.days
    rule_row.factor_percent = parsed.factor_percent
    rule_row.notify_in_app = bool(rule.notify_in_app)
    rule_row.email_to = [e for e in emails.split(",") if e]
    rule_row.webhook_id = rule.webhook_id
    rule_row.slack_webhook_id = rule.slack_webhook_id


def _rule(session: Session, account_id: str, rule_id: int, *, lock: bool = False) -> AlertRule:
    stmt = select(AlertRule).where(
        AlertRule.id == rule_id, AlertRule.account_id == account_id, AlertRule.deleted_at.is_(None)
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    rule = session.scalar(stmt.execution_options(populate_existing=True))
    if rule is None:
        raise NotFound(f"alert rule {rule_id} does not exist", field="rule_id")
    return rule


def create_rule(
    session: Session, *, account_id: str, rule: RuleInput, actor: Actor, at: datetime
) -> RuleView:
    """Add a rule (starting in the ``ok`` state: a condition already true fires at the next evaluation)."""
    require_permission(session, actor, account_id=account_id, permission=ALERTS_EDIT)
    name, scope_value, emails, parsed = _validated(session, account_id, rule)
    count = len(
        session.scalars(
            select(AlertRule.id).where(AlertRule.account_id == account_id, AlertRule.deleted_at.is_(None))
        ).all()
    )
    if count >= MAX_RULES_PER_ACCOUNT:
        raise ValidationError(
            f"at most {MAX_RULES_PER_ACCOUNT} alert rules per account", code="too_many", field="rule"
        )
    row = AlertRule(
        account_id=account_id, state="ok", paused=False, created_by=actor.author, created_at=at, updated_at=at
    )
    _apply(row, rule, name, scope_value, emails, parsed)
    session.add(row)
    session.flush()
    return rule_view(row)


def update_rule(
    session: Session, *, account_id: str, rule_id: int, rule: RuleInput, actor: Actor, at: datetime
) -> RuleView:
    """Change a rule; its crossing state stays, and the next evaluation fires or resolves it against
    the new threshold."""
    require_permission(session, actor, account_id=account_id, permission=ALERTS_EDIT)
    row = _rule(session, account_id, rule_id, lock=True)
    name, scope_value, emails, parsed = _validated(session, account_id, rule)
    if (row.kind, row.scope, row.scope_value) != (rule.kind, rule.scope, scope_value):
        row.state = "ok"  # a different measure: its crossings start afresh
        row.last_value = None
    _apply(row, rule, name, scope_value, emails, parsed)
    row.updated_at = at
    session.flush()
    return rule_view(row)


def set_rule_paused(
    session: Session, *, account_id: str, rule_id: int, paused: bool, actor: Actor, at: datetime
) -> RuleView:
    """Pause (no evaluation, no messages) or resume a rule."""
    require_permission(session, actor, account_id=account_id, permission=ALERTS_EDIT)
    row = _rule(session, account_id, rule_id, lock=True)
    row.paused = paused
    row.updated_at = at
    session.flush()
    return rule_view(row)


def delete_rule(session: Session, *, account_id: str, rule_id: int, actor: Actor, at: datetime) -> None:
    """Delete a rule; its firing history stays readable."""
    require_permission(session, actor, account_id=account_id, permission=ALERTS_EDIT)
    row = _rule(session, account_id, rule_id, lock=True)
    row.deleted_at = at
    row.updated_at = at
    session.flush()


def list_rules(session: Session, account_id: str) -> list[RuleView]:
    rows = session.scalars(
        select(AlertRule)
        .where(AlertRule.account_id == account_id, AlertRule.deleted_at.is_(None))
        .order_by(AlertRule.id)
    ).all()
    return [rule_view(r) for r in rows]


def get_rule(session: Session, account_id: str, rule_id: int) -> RuleView:
    return rule_view(_rule(session, account_id, rule_id))


# --- Webhook endpoints ----------------------------------------------------------------------------


def _webhook(session: Session, account_id: str, webhook_id: int) -> AlertWebhook:
    hook = session.scalar(
        select(AlertWebhook).where(
            AlertWebhook.id == webhook_id,
            AlertWebhook.account_id == account_id,
            AlertWebhook.deleted_at.is_(None),
        )
    )
    if hook is None:
        raise NotFound(f"webhook {webhook_id} does not exist", field="webhook_id")
    return hook


def _webhook_view(hook: AlertWebhook) -> WebhookView:
    return WebhookView(hook.id, hook.url, hook.secret_hint, hook.created_by, hook.created_at)


def validate_webhook_url(url: str) -> str:
    text = single_line_text(url.strip(), field="url")
    if not text:
        raise ValidationError("give the URL to post alerts to", code="required", field="url")
    if len(text) > 2000 or any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise ValidationError("the URL is too long or has spaces", code="invalid_url", field="url")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            "the URL must start with https:// (or http://)", code="invalid_url", field="url"
        )
    if parts.username or parts.password:
        raise ValidationError("put no credentials in the URL", code="invalid_url", field="url")
    return text


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_webhook(session: Session, *, account_id: str, url: str, actor: Actor, at: datetime) -> NewWebhook:
    """Add an endpoint; the answer holds its signing secret, which is never shown again."""
    require_permission(session, actor, account_id=account_id, permission=WEBHOOKS_EDIT)
    clean = validate_webhook_url(url)
    count = len(
        session.scalars(
            select(AlertWebhook.id).where(
                AlertWebhook.account_id == account_id, AlertWebhook.deleted_at.is_(None)
            )
        ).all()
    )
    if count >= MAX_WEBHOOKS_PER_ACCOUNT:
        raise ValidationError(
            f"at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks per account", code="too_many", field="url"
        )
    secret = new_secret()
    hook = AlertWebhook(
        account_id=account_id,
        url=clean,
        secret=secret,
        secret_hint=secret[-4:],
        created_by=actor.author,
        created_at=at,
    )
    session.add(hook)
    session.flush()
    return NewWebhook(_webhook_view(hook), secret)


def roll_webhook_secret(session: Session, *, account_id: str, webhook_id: int, actor: Actor) -> NewWebhook:
    """A new signing secret for an endpoint (the old one stops working at once)."""
    require_permission(session, actor, account_id=account_id, permission=WEBHOOKS_EDIT)
    hook = _webhook(session, account_id, webhook_id)
    hook.secret = new_secret()
    hook.secret_hint = hook.secret[-4:]
    session.flush()
    return NewWebhook(_webhook_view(hook), hook.secret)


def delete_webhook(session: Session, *, account_id: str, webhook_id: int, actor: Actor, at: datetime) -> None:
    """Remove an endpoint; rules that posted to it keep their other channels."""
    require_permission(session, actor, account_id=account_id, permission=WEBHOOKS_EDIT)
    hook = _webhook(session, account_id, webhook_id)
    hook.deleted_at = at
    for rule in session.scalars(select(AlertRule).where(AlertRule.webhook_id == webhook_id)):
        rule.webhook_id = None
    session.flush()


def list_webhooks(session: Session, account_id: str) -> list[WebhookView]:
    rows = session.scalars(
        select(AlertWebhook)
        .where(AlertWebhook.account_id == account_id, AlertWebhook.deleted_at.is_(None))
        .order_by(AlertWebhook.id)
    ).all()
    return [_webhook_view(h) for h in rows]


# --- History --------------------------------------------------------------------------------------


def firing_history(session: Session, account_id: str, *, limit: int = 200) -> list[FiringView]:
    """Firings and resolutions of the account's rules and caps, newest first."""
    rows = session.scalars(
        select(AlertFiring)
        .where(AlertFiring.account_id == account_id)
        .order_by(AlertFiring.id.desc())
        .limit(limit)
    ).all()
    return [
        FiringView(
            f.id, f.rule_id, f.cap_id, f.subject, f.event, f.value, f.threshold, f.unit, f.message, f.at
        )
        for f in rows
    ]


def delivery_log(session: Session, account_id: str, *, limit: int = 200) -> list[DeliveryView]:
    """Every message sent or being retried for the account's firings, newest first."""
    rows = session.scalars(
        select(AlertDelivery)
        .where(AlertDelivery.account_id == account_id)
        .order_by(AlertDelivery.id.desc())
        .limit(limit)
    ).all()
    return [
        DeliveryView(
            d.id,
            d.firing_id,
            d.channel,
            d.target,
            d.status,
            d.attempts,
            d.next_attempt_at,
            d.last_error,
            d.delivered_at,
            d.created_at,
        )
        for d in rows
    ]
