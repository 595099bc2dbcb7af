"""The audit trail of support actions: written in the action's own transaction, never edited.

Each entry: actor, action (``support.<verb>``), account, reason, time, and in ``details``
the target and what it was ``before`` and ``after``. The table is append-only
(``core.db.append_only``): the ORM refuses to update or delete an entry, one by one or in bulk,
and database triggers refuse raw ``UPDATE`` and ``DELETE``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.append_only import AppendOnlyViolation
from core.db.models import AuditLog
from core.display import format_credits, format_dollars_cents
from core.errors import ValidationError
from core.support.agents import Agent
from core.text import clean_text

ACTION_PREFIX = "support."
MAX_REASON = 2_000
AUDIT_PAGE_LIMIT = 1_000


# Raised when code tries to change or delete an audit entry (a bug, never user input).
AuditImmutable = AppendOnlyViolation


def required_reason(reason: str) -> str:
    """The reason, stripped; a ValidationError when there is none."""
    text = clean_text((reason or "").strip(), field="reason")
    if not text:
        raise ValidationError("say why: a reason is required for every support action", field="reason")
    if len(text) > MAX_REASON:
        raise ValidationError(f"keep the reason under {MAX_REASON:,} characters", field="reason")
    return text


def record(
    session: Session,
    *,
    agent: Agent,
    action: str,
    account_id: str | None,
    target: str,
    reason: str,
    at: datetime,
    before: Any = None,
    after: Any = None,
    **extra: Any,
) -> AuditLog:
    """Add an audit entry to the caller's transaction (it commits or rolls back with the action)."""
    entry = AuditLog(
        actor=agent.email,
        action=(ACTION_PREFIX + action)[:64],
        account_id=account_id,
        reason=reason,
        details={"target": target, "level": agent.level, "before": before, "after": after, **extra},
        created_at=at,
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class AuditEntry:
    entry_id: int
    at: datetime
    actor: str
    action: str
    account_id: str | None
    target: str
    reason: str
    before: Any
    after: Any


def _entry(row: AuditLog) -> AuditEntry:
    details = row.details or {}
    return AuditEntry(
        entry_id=row.id,
        at=row.created_at,
        actor=row.actor,
        action=row.action,
        account_id=row.account_id,
        target=str(details.get("target", "")),
        reason=row.reason,
        before=details.get("before"),
        after=details.get("after"),
    )


def audit_entries(
    session: Session,
    *,
    agent: str | None = None,
    account_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = AUDIT_PAGE_LIMIT,
) -> list[AuditEntry]:
    """Audit entries, newest first, filtered by actor, account, action and time ``[since, until)``."""
    stmt = select(AuditLog)
    if agent:
        stmt = stmt.where(AuditLog.actor == agent.strip().lower())
    if account_id:
        stmt = stmt.where(AuditLog.account_id == account_id.strip())
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if since is not None:
        stmt = stmt.where(AuditLog.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditLog.created_at < until)
    rows = session.scalars(stmt.order_by(AuditLog.id.desc()).limit(max(1, min(limit, AUDIT_PAGE_LIMIT))))
    return [_entry(row) for row in rows]


def audit_actions(session: Session) -> list[str]:
    """Every action name in the log, for the filter."""
    return sorted(session.scalars(select(AuditLog.action).distinct()))


def audit_actors(session: Session) -> list[str]:
    return sorted(session.scalars(select(AuditLog.actor).distinct()))


AUDIT_CSV_HEADER = ("id", "time_utc", "actor", "action", "account_id", "target", "reason", "before", "after")


def readable_change(value: Any) -> str:
    """A before or after value as an agent reads it: amounts by the money rule ("amount: 250.00
    credits", "monthly_max: $2,500.00"), other fields as they are. The CSV keeps the exact JSON."""
    if value is None:
        return ""
    if not isinstance(value, dict):
        return str(value)
    parts = []
    for key, item in value.items():
        amount = isinstance(item, int) and not isinstance(item, bool)
        if amount and key.endswith("_nanos"):
            parts.append(f"{key.removesuffix('_nanos')}: {format_credits(item)}")
        elif amount and key.endswith("_cents"):
            parts.append(f"{key.removesuffix('_cents')}: {format_dollars_cents(item)}")
        elif isinstance(item, dict):
            parts.append(f"{key}: ({readable_change(item)})")
        else:
            parts.append(f"{key}: {item}")
    return "; ".join(parts)


def audit_csv(entries: list[AuditEntry]) -> bytes:
    """The entries as CSV, every text cell safe to open in a spreadsheet (no formula runs)."""
    from core.usage.exports import csv_bytes, utc_seconds

    rows = [
        (
            entry.entry_id,
            utc_seconds(entry.at),
            entry.actor,
            entry.action,
            entry.account_id or "",
            entry.target,
            entry.reason,
            "" if entry.before is None else json.dumps(entry.before, sort_keys=True),
            "" if entry.after is None else json.dumps(entry.after, sort_keys=True),
        )
        for entry in entries
    ]
    return csv_bytes(AUDIT_CSV_HEADER, rows, numeric_columns={"id"})
