"""One console submission, one effect.

A console form gets a submission id when it is drawn (``new_submission_id``); the page keeps
it until the action succeeds and passes it to the core command. The command claims the id in
its own transaction (``claim``): the first claim inserts a ``support_submissions`` row with a
hash of the submitted fields; a retry or a double click of the same submission finds the row,
waits for the first one's transaction on PostgreSQL (the row is locked), and gets the first
one's stored result (``replayed``) instead of acting again. The same id with other fields, or
from another agent, is a ``Conflict`` naming ``submission_id``. When the action fails, its
transaction rolls the claim back with everything else, so the agent can fix the form and send
the same submission again.

The Members page's commands (``core.accounts.members``, ``core.accounts.invitations``) claim
their submissions here too, with the acting member in place of the agent.

Actions that call a payment provider between two transactions (refunds, receipts) claim first,
keep what they saw in ``before``, and use the submission id in the provider's idempotency key,
so a retry after a lost answer asks the provider with the same key and finishes the same row.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.models import SupportSubmission
from core.errors import Conflict, ValidationError

STARTED = "started"
DONE = "done"
_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{8,64}")


class Submitter(Protocol):
    """Who sends a form: a support ``Agent`` or a customer ``Actor`` (only the email is kept)."""

    @property
    def email(self) -> str: ...


def new_submission_id() -> str:
    """A fresh submission id for a form being drawn (random, 32 hex digits)."""
    return uuid.uuid4().hex


def checked_submission_id(submission_id: str) -> str:
    """The id when it is shaped like one (8-64 letters, digits, ``-`` or ``_``); else a ValidationError."""
    if not isinstance(submission_id, str) or not _ID_SHAPE.fullmatch(submission_id):
        raise ValidationError(
            "the form's submission id is missing or malformed: reload the page", field="submission_id"
        )
    return submission_id


def fields_hash(fields: Mapping[str, Any]) -> str:
    """A stable digest of the submitted fields (keys sorted; dates and Decimals as text)."""
    text = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def claim(
    session: Session,
    *,
    submission_id: str,
    agent: Submitter,
    action: str,
    account_id: str | None,
    fields: Mapping[str, Any],
    at: datetime,
    target: str = "",
) -> SupportSubmission:
    """The submission's row, inserted now or found (locked on PostgreSQL); Conflict when it differs."""
    submission_id = checked_submission_id(submission_id)
    wanted = fields_hash(fields)
    values = {
        "id": submission_id,
        "agent": agent.email,
        "action": action,
        "account_id": account_id,
        "target": target,
        "fields_hash": wanted,
        "fields": json.loads(json.dumps(dict(fields), default=str)),
        "state": STARTED,
        "created_at": at,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # On PostgreSQL a second insert of the same id waits here until the first transaction ends.
    session.execute(insert(SupportSubmission).values(**values).on_conflict_do_nothing(index_elements=["id"]))
    stmt = select(SupportSubmission).where(SupportSubmission.id == submission_id)
    if dialect == "postgresql":
        stmt = stmt.with_for_update()
    row = session.scalars(stmt.execution_options(populate_existing=True)).one()
    same_agent = row.agent.strip().lower() == agent.email.strip().lower()
    if not same_agent or row.action != action or row.fields_hash != wanted:
        raise Conflict(
            f"submission {submission_id} was already sent"
            + (" by someone else" if not same_agent else f" as {row.action} with other values")
            + ": reload the form to start a new one",
            code="submission_reused",
            field="submission_id",
        )
    return row


def replayed(row: SupportSubmission) -> dict[str, Any] | None:
    """The first submission's stored result when it finished; None when this one must act."""
    return dict(row.result or {}) if row.state == DONE else None


def finish(session: Session, row: SupportSubmission, result: Mapping[str, Any], at: datetime) -> None:
    """Store the action's result with its submission, in the action's transaction."""
    row.state = DONE
    row.result = json.loads(json.dumps(dict(result), default=str))
    row.finished_at = at
    session.flush()
