"""The in-app notification centre: an account's notifications and how far each person has read them.

Marking read is the person's own write: any member may, a customer view (an agent viewing as the
customer) may not (``core.accounts.permissions``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.permissions import NOTIFICATIONS_READ, Actor, require_permission
from core.db.models import Notification, NotificationRead

MAX_SHOWN = 100


@dataclass(frozen=True)
class NotificationView:
    notification_id: int
    title: str
    body: str
    created_at: datetime
    unread: bool


def _last_read(session: Session, email: str, account_id: str) -> int:
    value = session.scalar(
        select(NotificationRead.last_read_id).where(
            NotificationRead.email == email.strip().lower(), NotificationRead.account_id == account_id
        )
    )
    return int(value or 0)


def unread_count(session: Session, *, email: str, account_id: str) -> int:
    """Notifications of the account this person has not read yet (one indexed count)."""
    last = _last_read(session, email, account_id)
    count = session.scalar(
        select(func.count()).where(Notification.account_id == account_id, Notification.id > last)
    )
    return int(count or 0)


def notifications(
    session: Session, *, email: str, account_id: str, limit: int = MAX_SHOWN
) -> list[NotificationView]:
    """The account's latest notifications, newest first, each marked unread or not for this person."""
    last = _last_read(session, email, account_id)
    rows = session.scalars(
        select(Notification)
        .where(Notification.account_id == account_id)
        .order_by(Notification.id.desc())
        .limit(limit)
    ).all()
    return [NotificationView(n.id, n.title, n.body, n.created_at, n.id > last) for n in rows]


def mark_read(session: Session, *, actor: Actor, account_id: str, up_to_id: int, at: datetime) -> None:
    """Everything up to ``up_to_id`` is read for this person (never moves backwards)."""
    require_permission(session, actor, account_id=account_id, permission=NOTIFICATIONS_READ)
    key = actor.email.strip().lower()
    row = session.get(NotificationRead, (key, account_id))
    if row is None:
        session.add(NotificationRead(email=key, account_id=account_id, last_read_id=up_to_id, updated_at=at))
    elif up_to_id > row.last_read_id:
        row.last_read_id = up_to_id
        row.updated_at = at
    session.flush()
