"""The audit entries of spend-control changes made through the HTTP API, and the idempotency
keys of its creates.

Each change (``spend.caps.create`` / ``.update`` / ``.delete``, ``spend.alert_rules.…``) adds
one ``audit_log`` row in the change's own transaction: ``actor`` is the acting ``Actor.author``
(``api`` for the server token, ``api_key:<id>:<prefix>`` for a customer key), and ``details``
hold the ``target``, ``before`` and ``after`` (the API's JSON shapes, ``core.spend.api_shapes``),
``via`` (the server token, or the key's id, prefix and name) and, for a create sent with an
``Idempotency-Key``, the key and the SHA-256 of the request it came with.

A create with an ``Idempotency-Key`` seen for the same account and action in the last 24 hours
is answered from its entry (``earlier_create``) instead of creating again; the same key with
another request is a ``Conflict``. No table of its own: the audit entry is the record that the
create happened, written in the same transaction, so the two cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.permissions import Actor
from core.db.models import Account, AuditLog
from core.errors import Conflict

ACTION_PREFIX = "spend."
IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_ENTRIES_SCANNED = 5_000  # a limit on everything: the creates of one account a key is looked for in


@dataclass(frozen=True)
class Change:
    """Who makes an API change and when: the actor decides permissions, ``via`` is what the audit
    entry says about the credential (``{"server_token": true}`` or the key's id, prefix, name)."""

    actor: Actor
    at: datetime
    via: dict[str, Any]
    idempotency_key: str | None = None


def request_digest(request: dict[str, Any]) -> str:
    """The SHA-256 of a parsed request, independent of key order and spacing."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def lock_account(session: Session, account_id: str) -> None:
    """Serialise this account's API creates (PostgreSQL; SQLite has one writer anyway), so two
    retries of one request, or two creates of one cap, cannot both pass their checks."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Account.id).where(Account.id == account_id).with_for_update())


def record_change(
    session: Session,
    change: Change,
    *,
    action: str,
    account_id: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str,
    request_sha256: str | None = None,
) -> None:
    details: dict[str, Any] = {"target": target, "before": before, "after": after, "via": change.via}
    if change.idempotency_key is not None and request_sha256 is not None:
        details["idempotency_key"] = change.idempotency_key
        details["request_sha256"] = request_sha256
    session.add(
        AuditLog(
            actor=change.actor.author[:320],
            action=(ACTION_PREFIX + action)[:64],
            account_id=account_id,
            reason=reason,
            details=details,
            created_at=change.at,
        )
    )
    session.flush()


def earlier_create(
    session: Session, change: Change, *, action: str, account_id: str, request_sha256: str
) -> dict[str, Any] | None:
    """What an earlier create with this change's ``Idempotency-Key`` answered (its ``after``),
    or None; the same key with another request is a ``Conflict`` naming the header."""
    if change.idempotency_key is None:
        return None
    rows = session.execute(
        select(AuditLog.details)
        .where(
            AuditLog.account_id == account_id,
            AuditLog.action == ACTION_PREFIX + action,
            AuditLog.created_at >= change.at - IDEMPOTENCY_WINDOW,
        )
        .order_by(AuditLog.id.desc())
        .limit(MAX_ENTRIES_SCANNED)
    ).scalars()
    for details in rows:
        if isinstance(details, dict) and details.get("idempotency_key") == change.idempotency_key:
            if details.get("request_sha256") != request_sha256:
                raise Conflict(
                    "this Idempotency-Key was already used with another request; use a new key for "
                    "a new request",
                    code="idempotency_key_reused",
                    field="Idempotency-Key",
                )
            after = details.get("after")
            return after if isinstance(after, dict) else None
    return None
