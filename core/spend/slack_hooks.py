"""An account's Slack incoming webhooks: add (the URL shown once), list (label and hint), remove.

Like the signed webhooks in ``core.spend.alerts``: owners and admins change them
(``WEBHOOKS_EDIT``), an id of another account's hook is refused as a missing one (``NotFound``),
and removing one takes it off the rules that posted to it (they keep their other channels).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.permissions import WEBHOOKS_EDIT, Actor, require_permission
from core.db.models import AlertRule, AlertSlackWebhook
from core.errors import NotFound, ValidationError
from core.spend.slack import url_hint, validate_label, validate_slack_url

MAX_SLACK_WEBHOOKS_PER_ACCOUNT = 10


@dataclass(frozen=True)
class SlackWebhookView:
    slack_webhook_id: int
    label: str
    url_hint: str  # the URL's last characters: the whole URL is shown once, at creation
    created_by: str
    created_at: datetime

    @property
    def shown(self) -> str:
        """How the portal names it: "#ops-alerts (Slack …a1B2)"."""
        return f"{self.label} (Slack …{self.url_hint})"


@dataclass(frozen=True)
class NewSlackWebhook:
    slack_webhook: SlackWebhookView
    url: str  # show it once; it is never shown again


def _view(hook: AlertSlackWebhook) -> SlackWebhookView:
    return SlackWebhookView(hook.id, hook.label, hook.url_hint, hook.created_by, hook.created_at)


def live_slack_webhook(session: Session, account_id: str, slack_webhook_id: int) -> AlertSlackWebhook:
    """The account's live Slack webhook with this id, else ``NotFound`` (another account's too)."""
    hook = session.scalar(
        select(AlertSlackWebhook).where(
            AlertSlackWebhook.id == slack_webhook_id,
            AlertSlackWebhook.account_id == account_id,
            AlertSlackWebhook.deleted_at.is_(None),
        )
    )
    if hook is None:
        raise NotFound(f"Slack webhook {slack_webhook_id} does not exist", field="slack_webhook_id")
    return hook


def create_slack_webhook(
    session: Session, *, account_id: str, label: str, url: str, actor: Actor, at: datetime
) -> NewSlackWebhook:
    """Add a Slack incoming webhook; the answer holds its URL, which is never shown again.

    Adding the same URL with the same name again answers the one already there (a repeated
    click adds one channel); with another name it is refused (``already_added``)."""
    require_permission(session, actor, account_id=account_id, permission=WEBHOOKS_EDIT)
    clean_label = validate_label(label)
    clean_url = validate_slack_url(url)
    live = session.scalars(
        select(AlertSlackWebhook).where(
            AlertSlackWebhook.account_id == account_id, AlertSlackWebhook.deleted_at.is_(None)
        )
    ).all()
    same = next((hook for hook in live if hook.url == clean_url), None)
    if same is not None:  # a second click of the same form, or the same URL again: one channel
        if same.label != clean_label:
            raise ValidationError(
                f"this URL is already added, as {same.label}", code="already_added", field="url"
            )
        return NewSlackWebhook(_view(same), clean_url)
    if len(live) >= MAX_SLACK_WEBHOOKS_PER_ACCOUNT:
        raise ValidationError(
            f"at most {MAX_SLACK_WEBHOOKS_PER_ACCOUNT} Slack webhooks per account",
            code="too_many",
            field="url",
        )
    hook = AlertSlackWebhook(
        account_id=account_id,
        label=clean_label,
        url=clean_url,
        url_hint=url_hint(clean_url),
        created_by=actor.author,
        created_at=at,
    )
    session.add(hook)
    session.flush()
    return NewSlackWebhook(_view(hook), clean_url)


def delete_slack_webhook(
    session: Session, *, account_id: str, slack_webhook_id: int, actor: Actor, at: datetime
) -> None:
    """Remove a Slack webhook; rules that posted to it keep their other channels."""
    require_permission(session, actor, account_id=account_id, permission=WEBHOOKS_EDIT)
    hook = live_slack_webhook(session, account_id, slack_webhook_id)
    hook.deleted_at = at
    for rule in session.scalars(select(AlertRule).where(AlertRule.slack_webhook_id == slack_webhook_id)):
        rule.slack_webhook_id = None
    session.flush()


def list_slack_webhooks(session: Session, account_id: str) -> list[SlackWebhookView]:
    rows = session.scalars(
        select(AlertSlackWebhook)
        .where(AlertSlackWebhook.account_id == account_id, AlertSlackWebhook.deleted_at.is_(None))
        .order_by(AlertSlackWebhook.id)
    ).all()
    return [_view(h) for h in rows]
