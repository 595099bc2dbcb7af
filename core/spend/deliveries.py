"""The delivery outbox: send pending email, webhook and Slack messages, retry with exponential backoff.

A firing writes its deliveries as ``pending`` rows in the evaluating transaction. Here each
due row is first **claimed** in a short write transaction (attempt counted, next attempt pushed
a lease ahead, so a second sender skips it), then sent with no transaction open, then its
outcome is recorded. A failure is retried after 30 s, 1, 2, 4 … minutes (capped at 6 hours) up
to ``MAX_ATTEMPTS``; then the row is ``failed`` with the last error. Delivery is at least once:
webhooks carry the delivery id so a receiver can drop a repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from core.clock import Clock, system_clock
from core.db import unit_of_work
from core.db.models import AlertDelivery, AlertSlackWebhook, AlertWebhook
from core.display import format_datetime
from core.spend import channels, slack

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
LEASE = timedelta(minutes=2)  # longer than one send can take (timeouts of 10 s)
BATCH = 100
UNEXPECTED_FAILURE = "an unexpected error on our side stopped this attempt"


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: 30 s, 60 s, 2 min, 4 min, … at most 6 hours."""
    return min(BACKOFF_BASE * (2 ** max(0, attempts - 1)), BACKOFF_CAP)


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    channel: str
    target: str
    payload: dict[str, Any]
    secret: str | None
    attempts: int


@dataclass(frozen=True)
class DeliveryRun:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _claim(engine: Engine, now: datetime, ids: Sequence[int] | None, limit: int) -> list[_Claimed]:
    with unit_of_work(engine, write=True) as session:
        stmt = (
            select(AlertDelivery)
            .where(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now)
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
            .limit(limit)
        )
        if ids is not None:
            stmt = stmt.where(AlertDelivery.id.in_(list(ids)))
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        claimed = []
        for row in session.scalars(stmt):
            row.attempts += 1
            row.next_attempt_at = now + LEASE
            secret = None
            if row.channel == "webhook" and row.webhook_id is not None:
                hook = session.get(AlertWebhook, row.webhook_id)
                secret = None if hook is None or hook.deleted_at is not None else hook.secret
            elif row.channel == "slack" and row.slack_webhook_id is not None:
                slack_hook = session.get(AlertSlackWebhook, row.slack_webhook_id)
                # The Slack URL is the credential: carried like a secret, never in ``target``.
                secret = None if slack_hook is None or slack_hook.deleted_at is not None else slack_hook.url
            claimed.append(_Claimed(row.id, row.channel, row.target, dict(row.payload), secret, row.attempts))
        return claimed


def _when(payload: dict[str, Any]) -> str:
    """The firing's time as people read it, in the account's zone ("Nov 20, 2026, 04:00 PST");
    the payload's own text when it cannot be read (an older payload has no zone: UTC)."""
    raw = str(payload.get("at", ""))
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return format_datetime(moment, str(payload.get("timezone") or "UTC"))
    except (ValueError, KeyError):  # KeyError: ZoneInfoNotFoundError, an unknown zone
        return raw


def _send(item: _Claimed, now: datetime, smtp: channels.SMTPSettings | None) -> None:
    payload = item.payload
    if item.channel == "email":
        verb = "resolved" if payload.get("type", "").endswith("resolved") else "fired"
        channels.send_email(
            smtp,
            item.target,
            f"[Meterline] {payload.get('subject', 'Alert')} {verb}",
            f"{payload.get('message', '')}\n\nCondition: {payload.get('condition', '')}\n"
            f"Account: {payload.get('account_id', '')}\nAt: {_when(payload)}\n\n"
            "Manage your alerts on the Alerts page of the portal.\n",
        )
    elif item.channel == "webhook":
        if item.secret is None:
            raise channels.DeliveryFailed("the webhook endpoint was deleted", retry=False)
        channels.post_webhook(
            item.target, item.secret, payload, delivery_id=item.delivery_id, now=int(now.timestamp())
        )
    elif item.channel == "slack":
        if item.secret is None:
            raise channels.DeliveryFailed("the Slack webhook was removed", retry=False)
        message = slack.slack_message(payload, when=_when(payload), base_url=slack.public_url())
        slack.post_slack(item.secret, message, delivery_id=item.delivery_id)
    else:
        raise channels.DeliveryFailed(f"unknown channel {item.channel!r}", retry=False)


def _record(engine: Engine, outcomes: list[tuple[_Claimed, str | None, bool]], now: datetime) -> DeliveryRun:
    delivered = retrying = failed = 0
    with unit_of_work(engine, write=True) as session:
        for item, error, retry in outcomes:
            row = session.get(AlertDelivery, item.delivery_id)
            if row is None:
                continue
            if error is None:
                row.status, row.delivered_at, row.next_attempt_at, row.last_error = "delivered", now, None, ""
                delivered += 1
            elif retry and row.attempts < MAX_ATTEMPTS:
                row.next_attempt_at = now + backoff(row.attempts)
                row.last_error = error[:500]
                retrying += 1
            else:
                row.status, row.next_attempt_at, row.last_error = "failed", None, error[:500]
                failed += 1
    return DeliveryRun(delivered, retrying, failed)


def deliver_due(
    engine: Engine,
    *,
    clock: Clock = system_clock,
    ids: Sequence[int] | None = None,
    limit: int = BATCH,
    smtp_url: str | None = None,
) -> DeliveryRun:
    """Send the deliveries that are due (only ``ids`` if given); record each outcome.

    ``smtp_url`` overrides ``SMTP_URL`` (tests)."""
    now = clock()
    claimed = _claim(engine, now, ids, limit)
    if not claimed:
        return DeliveryRun()
    try:
        settings = channels.smtp_settings(smtp_url)
    except ValueError as error:
        settings = None
        log.error("SMTP_URL is not usable: %s", error)
    outcomes: list[tuple[_Claimed, str | None, bool]] = []
    for item in claimed:
        try:
            _send(item, now, settings)
            outcomes.append((item, None, False))
        except channels.DeliveryFailed as error:
            outcomes.append((item, str(error), error.retry))
        except Exception:  # a bug must not stop the other deliveries: recorded and retried
            log.exception("delivery %s failed unexpectedly", item.delivery_id)
            outcomes.append((item, UNEXPECTED_FAILURE, True))  # the details stay in the server's log
    return _record(engine, outcomes, clock())
