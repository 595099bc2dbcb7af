"""Authorize refusals: tallied in memory on the request path, added to ``authorize_refusals`` in bulk.

``POST /api/v1/authorize`` must not touch the database, so a refusal only bumps a counter in
the process (``RefusalTally``); the authorizer's background thread takes the whole tally every
half second and adds it to the table with one upsert statement, a row per key
(``add_refusals``). A process that dies loses at most the tallies since its last flush. A flush
that fails puts its tally back (``RefusalTally.put_back``), kept to ``MAX_REFUSAL_KEYS`` keys:
the oldest minutes go first. Rows are kept ``RETENTION_DAYS`` (``delete_old_refusals``, run by
the periodic jobs); the support console reads an account's recent ones (``recent_refusals``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.models import AuthorizeRefusal

log = logging.getLogger(__name__)

MAX_REFUSAL_KEYS = 10_000  # tallied keys kept in memory while the database cannot take them
RETENTION_DAYS = 30
RECENT_DAYS = 7
RECENT_LIMIT = 50
DELETE_BATCH = 10_000  # rows deleted per retention run; the next run (a minute later) takes the rest

REASON_LABELS = {
    "hard_cap_reached": "hard cap reached",
    "insufficient_credits": "insufficient credits",
    "account_suspended": "account suspended",
}


class RefusalKey(NamedTuple):
    account_id: str
    minute: datetime  # the refusal's time truncated to the minute (UTC)
    reason: str
    project: str  # '' when the request named none
    meter: str  # '' when the request named none


@dataclass(slots=True)
class RefusalCount:
    count: int
    last_at: datetime
    last_cost_nanos: int
    last_remaining_nanos: int

    def merged_with(self, newer: RefusalCount) -> RefusalCount:
        """Both counts added; the last figures of whichever refusal came later."""
        last = newer if newer.last_at >= self.last_at else self
        return RefusalCount(
            self.count + newer.count, last.last_at, last.last_cost_nanos, last.last_remaining_nanos
        )


class RefusalTally:
    """Refusals counted in memory, thread-safe: ``note`` on the request path, ``take`` to flush them."""

    def __init__(self, max_keys: int = MAX_REFUSAL_KEYS):
        self.max_keys = max_keys
        self.lock = threading.Lock()  # the authorizer holds it too, to start its thread race-free
        self._counts: dict[RefusalKey, RefusalCount] = {}
        self._dropped = 0  # refusals not counted since the last take (the tally was full)

    def note(self, key: RefusalKey, at: datetime, cost_nanos: int, remaining_nanos: int) -> None:
        """Count one refusal (the caller holds ``lock``): a dict lookup, no I/O."""
        counted = self._counts.get(key)
        if counted is not None:
            counted.count += 1
            counted.last_at = at
            counted.last_cost_nanos = cost_nanos
            counted.last_remaining_nanos = remaining_nanos
        elif len(self._counts) < self.max_keys:
            self._counts[key] = RefusalCount(1, at, cost_nanos, remaining_nanos)
        else:
            self._dropped += 1

    def take(self) -> tuple[dict[RefusalKey, RefusalCount], int]:
        """Everything counted so far (the tally starts again empty), and how many were dropped."""
        with self.lock:
            taken, self._counts = self._counts, {}
            dropped, self._dropped = self._dropped, 0
        return taken, dropped

    def put_back(self, taken: Mapping[RefusalKey, RefusalCount]) -> int:
        """Merge a tally that could not be written back in; past ``max_keys`` the oldest minutes
        are dropped. Returns how many keys were dropped."""
        with self.lock:
            merged = dict(taken)
            for key, counted in self._counts.items():
                merged[key] = merged[key].merged_with(counted) if key in merged else counted
            dropped = 0
            if len(merged) > self.max_keys:
                newest = sorted(merged, key=lambda key: key.minute, reverse=True)[: self.max_keys]
                dropped = len(merged) - len(newest)
                merged = {key: merged[key] for key in newest}
            self._counts = merged
        return dropped

    def __len__(self) -> int:
        return len(self._counts)

    def snapshot(self) -> dict[RefusalKey, RefusalCount]:
        """A copy of what is waiting to be written (tests, diagnostics)."""
        with self.lock:
            return {
                key: RefusalCount(c.count, c.last_at, c.last_cost_nanos, c.last_remaining_nanos)
                for key, c in self._counts.items()
            }


def _upsert(dialect_insert: Any) -> Any:
    table = AuthorizeRefusal.__table__
    stmt = dialect_insert(table)
    later = stmt.excluded.last_at >= table.c.last_at
    return stmt.on_conflict_do_update(
        index_elements=["account_id", "minute", "reason", "project", "meter"],
        set_={
            "count": table.c.count + stmt.excluded.count,
            "last_at": case((later, stmt.excluded.last_at), else_=table.c.last_at),
            "last_cost_nanos": case((later, stmt.excluded.last_cost_nanos), else_=table.c.last_cost_nanos),
            "last_remaining_nanos": case(
                (later, stmt.excluded.last_remaining_nanos), else_=table.c.last_remaining_nanos
            ),
        },
    )


# Built once: compiled once (SQLAlchemy caches it), so a flush costs the authorize thread ~0.1 ms of
# CPU, not the ~0.5 ms of building a multi-row VALUES statement each time (the GIL is shared
# with the request path).
_UPSERTS = {"postgresql": _upsert(pg_insert), "sqlite": _upsert(sqlite_insert)}


def add_refusals(session: Session, tally: Mapping[RefusalKey, RefusalCount]) -> None:
    """Add a tally to ``authorize_refusals`` (one upsert statement, a row per key): counts add up;
    the last figures are those of the latest refusal, whichever process wrote it first."""
    if not tally:
        return
    stmt = _UPSERTS[session.get_bind().dialect.name]
    # Sorted keys: two processes flushing the same keys lock their rows in the same order.
    rows = [
        {
            "account_id": key.account_id,
            "minute": key.minute,
            "reason": key.reason,
            "project": key.project,
            "meter": key.meter,
            "count": counted.count,
            "last_at": counted.last_at,
            "last_cost_nanos": counted.last_cost_nanos,
            "last_remaining_nanos": counted.last_remaining_nanos,
        }
        for key, counted in sorted(tally.items(), key=lambda item: item[0])
    ]
    session.execute(stmt, rows)


def delete_old_refusals(session: Session, *, at: datetime, limit: int = DELETE_BATCH) -> int:
    """Delete up to ``limit`` rows of minutes more than ``RETENTION_DAYS`` before ``at``; returns how many."""
    cutoff = at - timedelta(days=RETENTION_DAYS)
    old = select(AuthorizeRefusal.id).where(AuthorizeRefusal.minute < cutoff).limit(limit)
    ids = list(session.scalars(old))
    if not ids:
        return 0
    session.execute(delete(AuthorizeRefusal).where(AuthorizeRefusal.id.in_(ids)))
    return len(ids)


@dataclass(frozen=True)
class RefusalView:
    minute: datetime  # UTC
    reason: str
    reason_label: str  # the reason in words: "hard cap reached"
    project: str  # '' when the requests named none
    meter: str
    count: int
    last_at: datetime
    last_cost_nanos: int
    last_remaining_nanos: int


def recent_refusals(
    session: Session, account_id: str, *, at: datetime, days: int = RECENT_DAYS, limit: int = RECENT_LIMIT
) -> list[RefusalView]:
    """An account's refusals of the last ``days`` days, newest minute first, at most ``limit`` rows."""
    rows = session.scalars(
        select(AuthorizeRefusal)
        .where(
            AuthorizeRefusal.account_id == account_id, AuthorizeRefusal.minute >= at - timedelta(days=days)
        )
        .order_by(AuthorizeRefusal.minute.desc(), AuthorizeRefusal.last_at.desc(), AuthorizeRefusal.id.desc())
        .limit(limit)
    )
    return [
        RefusalView(
            row.minute,
            row.reason,
            REASON_LABELS.get(row.reason, row.reason.replace("_", " ")),
            row.project,
            row.meter,
            row.count,
            row.last_at,
            row.last_cost_nanos,
            row.last_remaining_nanos,
        )
        for row in rows
    ]
