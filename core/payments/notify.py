"""Telling people what happened to a payment: customers in-app and by email, support by audit log.

In-app messages are rows of the portal's ``notifications`` table (shared with spend alerts).
Emails go out only once the transaction that decided them commits (a rolled-back decision
sends nothing), on a background thread, when ``SMTP_URL`` is set; a failed send is logged,
never raised into the payment. Support learns of disputes and refunds of spent credits
from an ``audit_log`` entry (``meterline payments alerts`` lists them) and, with
``SMTP_URL``, an email to ``METERLINE_SUPPORT_EMAILS``.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, event, select
from sqlalchemy.orm import Session

from core.accounts.permissions import CREDITS_BUY
from core.db.models import AuditLog, Membership, Notification, User
from core.spend.channels import send_email, smtp_settings

log = logging.getLogger("meterline.payments")

ALERT_PREFIX = "payments.alert."
PAYING_ROLES = CREDITS_BUY.roles  # those who may buy credits get the payment emails
_OUTBOX = "payments.outbox"


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    body: str


def _smtp_url() -> str:
    return os.environ.get("SMTP_URL", "").strip()


def _send_all(smtp_url: str, mails: list[Mail]) -> None:
    """Send with the portal's one SMTP sender (``core.spend.channels``: STARTTLS, ``?from=``)."""
    try:
        settings = smtp_settings(smtp_url)
    except ValueError:
        log.exception("SMTP_URL cannot be read; payment emails not sent")
        return
    for mail in mails:
        try:
            send_email(settings, ", ".join(mail.to), mail.subject, mail.body)
        except Exception:  # an email is a courtesy: the payment is already decided and stored
            log.exception("could not email %s about %r", ", ".join(mail.to), mail.subject)


def _after_commit(session: Session) -> None:
    mails = session.info.pop(_OUTBOX, [])
    url = _smtp_url()
    if mails and url:
        threading.Thread(target=_send_all, args=(url, mails), name="meterline-mail", daemon=True).start()


def _after_rollback(session: Session) -> None:
    session.info.pop(_OUTBOX, None)


def _queue(session: Session, mail: Mail) -> None:
    if not mail.to or not _smtp_url():
        return
    if _OUTBOX not in session.info:
        session.info[_OUTBOX] = []
        if not event.contains(session, "after_commit", _after_commit):
            event.listen(session, "after_commit", _after_commit)
            event.listen(session, "after_rollback", _after_rollback)
    session.info[_OUTBOX].append(mail)


def email_after_commit(session: Session, mail: Mail) -> bool:
    """Send ``mail`` once the session's transaction commits; False when it will not be sent
    (no ``SMTP_URL``, or nobody to send it to)."""
    if not mail.to or not _smtp_url():
        return False
    _queue(session, mail)
    return True


def billing_emails(session: Session, account_id: str) -> tuple[str, ...]:
    """The people who may pay for the account (owners, admins, billing members)."""
    rows = session.scalars(
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id, Membership.role.in_(PAYING_ROLES))
        .order_by(User.email)
    )
    return tuple(rows)


def billing_contact(session: Session, account_id: str) -> str:
    """The address the account's customer is created with at the payment provider: its first
    owner (earliest to join, then the lowest user id), else its first admin or billing member;
    "" when it has none. Read from stored memberships, never from who clicked, so a retried
    creation sends the same request whoever retries it."""
    owners_first = case((Membership.role == "owner", 0), else_=1)
    email = session.scalar(
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id, Membership.role.in_(PAYING_ROLES))
        .order_by(owners_first, Membership.created_at, User.id)
        .limit(1)
    )
    return email or ""


def notify_customer(session: Session, *, account_id: str, title: str, body: str, at: datetime) -> None:
    """An in-app notification for the account, and an email to its paying members (with SMTP_URL)."""
    session.add(
        Notification(
            account_id=account_id, firing_id=None, title=title[:300], body=body[:1000], created_at=at
        )
    )
    _queue(session, Mail(billing_emails(session, account_id), f"Meterline: {title}", body))


def support_emails() -> tuple[str, ...]:
    raw = os.environ.get("METERLINE_SUPPORT_EMAILS", "")
    return tuple(sorted({part.strip().lower() for part in raw.split(",") if part.strip()}))


def alert_support(
    session: Session,
    *,
    account_id: str,
    alert: str,
    reason: str,
    at: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Something a person must look at (a dispute, a refund of spent credits): audited and emailed."""
    session.add(
        AuditLog(
            actor="payments",
            action=f"{ALERT_PREFIX}{alert}"[:64],
            account_id=account_id,
            reason=reason,
            details=details or {},
            created_at=at,
        )
    )
    log.warning("payments alert for %s: %s", account_id, reason)
    _queue(session, Mail(support_emails(), f"Meterline support: {alert} on {account_id}", reason))


def audit(
    session: Session, *, actor: str, action: str, account_id: str, reason: str, at: datetime, **details: Any
) -> None:
    """A plain audit entry (who changed a payment setting, what a refund did)."""
    session.add(
        AuditLog(
            actor=actor,
            action=action[:64],
            account_id=account_id,
            reason=reason,
            details=details,
            created_at=at,
        )
    )
