"""Shared set-up of the spend-control tests: an account with credits, usage through real ingestion."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from core.accounts import Actor
from core.db import unit_of_work
from core.metering import ingest_events
from core.money import NANOS_PER_CREDIT
from core.spend.alerts import RuleInput, create_rule, create_webhook

CREDIT = NANOS_PER_CREDIT
REQUEST_NANOS = NANOS_PER_CREDIT // 100  # the catalogue prices a request at $0.01


def requests_event(
    event_id: str, count: int, when: datetime, *, account_id: str = "acc_a", **dimensions: str
) -> dict[str, Any]:
    """``count`` requests (count / 100 credits) at ``when``."""
    raw: dict[str, Any] = {
        "event_id": event_id,
        "account_id": account_id,
        "meter": "requests",
        "quantity": count,
        "timestamp": when.isoformat(),
    }
    if dimensions:
        raw["dimensions"] = dimensions
    return raw


def spend(
    engine: Engine,
    event_id: str,
    credits: int,
    when: datetime,
    *,
    at: datetime | None = None,
    account_id: str = "acc_a",
    **dimensions: str,
) -> None:
    """Ingest usage worth ``credits`` credits at ``when`` (committed)."""
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(
            session,
            [requests_event(event_id, credits * 100, when, account_id=account_id, **dimensions)],
            at=at or when + timedelta(minutes=1),
        )
    assert result.accepted == 1, result.to_dict()


def low_balance_webhook(engine: Engine, now: datetime, url: str) -> None:
    """acc_a gets an endpoint at ``url`` and a rule "balance below 90" posting to it, set up by the
    system actor (the tests using it are about delivery, not about who may set it up)."""
    setup = Actor.system("tests")
    with unit_of_work(engine, write=True) as session:
        hook = create_webhook(session, account_id="acc_a", url=url, actor=setup, at=now)
        rule = RuleInput(
            name="Low balance",
            kind="balance_below",
            threshold="90",
            webhook_id=hook.webhook.webhook_id,
            notify_in_app=False,
        )
        create_rule(session, account_id="acc_a", rule=rule, actor=setup, at=now)
