"""Invitations: a role in an account offered to an email, as a signed, single-use link that expires.

The link is ``<portal>/accept-invitation?token=<token>``. The token is the server's HMAC-SHA256
signature (``core.sessions.session_secret``) of the invite form's submission id, so nobody
without the secret can make one, and the same submission always yields the same link: a double
click or a retry of the invite form creates one invitation, sends one email, and can show the
link again. Only the token's SHA-256 is stored (``invitations.token_hash``): the table alone
cannot be turned back into a working link.

    pending ──accept (the invited email, signed in, before expires_at)──▶ accepted
       │  └──revoke (members.edit; owners.edit for an owner's invitation)──▶ revoked
       └── past expires_at: expired (a pending row whose time is up; nothing is written)

Inviting needs ``members.edit`` (``owners.edit`` to invite an owner), an email that is neither a
member nor invited already (a pending invitation must be revoked, or have expired, first), and
writes ``members.invited``. With ``SMTP_URL`` the link is emailed once the invitation commits
(``core.payments.notify``); without it the page shows it to copy.

Accepting is decided by the invitation, not by a role: the signed-in email must be the invited
one, the invitation pending and not expired. One conditional update moves it to ``accepted``,
so two tabs accepting at once make one membership; the person becomes a user if they were not
one (their first sign-in) and a member with the offered role (someone who is a member already
keeps their role). ``members.invitation_accepted`` records it.

Lifetime: ``METERLINE_INVITATION_TTL_DAYS`` (1 to 90, default 7).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from core.accounts.members import (
    OWNER,
    checked_role,
    lock_account,
    normalized_email,
    record_member_change,
)
from core.accounts.permissions import MEMBERS_EDIT, OWNERS_EDIT, Actor, member_role, require_permission
from core.accounts.service import ensure_user
from core.db.models import Account, Invitation, Membership
from core.display import format_datetime
from core.errors import BillingError, Conflict, NotFound, PermissionDenied, ValidationError
from core.payments.notify import Mail, email_after_commit
from core.spend.alerts import is_email_address
from core.support.once import checked_submission_id, claim, finish, replayed
from core.text import single_line_text

TTL_ENV = "METERLINE_INVITATION_TTL_DAYS"
DEFAULT_TTL_DAYS = 7
MAX_TTL_DAYS = 90
ACCEPT_PATH = "/accept-invitation"
TOKEN_PARAM = "token"
MAX_EMAIL = 320
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, URL-safe base64 without padding

PENDING, ACCEPTED, REVOKED, EXPIRED = "pending", "accepted", "revoked", "expired"


def invitation_ttl(environ: Mapping[str, str] | None = None) -> timedelta:
    """How long a new invitation's link works: ``METERLINE_INVITATION_TTL_DAYS`` days (1-90, default 7)."""
    raw = (os.environ if environ is None else environ).get(TTL_ENV, "").strip()
    if not raw:
        return timedelta(days=DEFAULT_TTL_DAYS)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TTL_DAYS:
        raise ValidationError(
            f"{TTL_ENV} must be a whole number of days from 1 to {MAX_TTL_DAYS}", field=TTL_ENV
        )
    return timedelta(days=int(raw))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def invitation_token(secret: bytes, submission_id: str) -> str:
    """The link's token for the invite form's submission: the server's signature of it."""
    message = b"meterline-invitation:" + checked_submission_id(submission_id).encode("ascii")
    return _b64(hmac.new(secret, message, hashlib.sha256).digest())


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def invitation_link(base_url: str, token: str) -> str:
    """The address that accepts the invitation (``base_url`` is the portal's, without a slash at the end)."""
    return f"{base_url.rstrip('/')}{ACCEPT_PATH}?{urlencode({TOKEN_PARAM: token})}"


@dataclass(frozen=True)
class InvitationView:
    invitation_id: int
    account_id: str
    account_name: str
    email: str
    role: str
    state: str  # pending | accepted | revoked (see ``status`` for expired)
    invited_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    def status(self, at: datetime) -> str:
        """pending, accepted, revoked, or expired (pending, but its time is up at ``at``)."""
        return EXPIRED if self.state == PENDING and at >= self.expires_at else self.state


def _view(row: Invitation, account_name: str) -> InvitationView:
    return InvitationView(
        invitation_id=row.id,
        account_id=row.account_id,
        account_name=account_name,
        email=row.email,
        role=row.role,
        state=row.state,
        invited_by=row.invited_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        accepted_at=row.accepted_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


def _account_name(session: Session, account_id: str) -> str:
    return session.scalar(select(Account.name).where(Account.id == account_id)) or account_id


@dataclass(frozen=True)
class Invited:
    """A new invitation (or, for a repeated submission, the first one) and its link."""

    invitation: InvitationView
    link: str
    emailed: bool  # the link goes out by email (SMTP_URL set); else the page shows it
    replayed: bool = False  # this submission had already been sent: nothing new was made or sent


def open_invitations(session: Session, account_id: str) -> list[InvitationView]:
    """The account's pending invitations (expired ones included: ``status`` tells), newest first."""
    name = _account_name(session, account_id)
    rows = session.scalars(
        select(Invitation)
        .where(Invitation.account_id == account_id, Invitation.state == PENDING)
        .order_by(Invitation.id.desc())
    )
    return [_view(row, name) for row in rows]


def _checked_email(email: str) -> str:
    email = normalized_email(email)
    if not email:
        raise ValidationError("type the email address to invite", field="email")
    single_line_text(email, field="email")
    if len(email) > MAX_EMAIL or not is_email_address(email):
        raise ValidationError(f"{email} is not an email address (name@example.com)", field="email")
    return email


def _invitation_mail(view: InvitationView, link: str, inviter: str) -> Mail:
    body = (
        f"{inviter} invited you to join {view.account_name} on Meterline as {view.role}.\n\n"
        f"Accept the invitation: {link}\n\n"
        f"Sign in as {view.email} to accept it. The link works once, until "
        f"{format_datetime(view.expires_at, 'UTC')}. If you did not expect this, ignore this email."
    )
    return Mail((view.email,), f"Invitation to {view.account_name} on Meterline", body)


def invite_member(
    session: Session,
    actor: Actor,
    *,
    account_id: str,
    email: str,
    role: str,
    submission_id: str,
    secret: bytes,
    link_base: str,
    at: datetime,
    ttl: timedelta | None = None,
) -> Invited:
    """Invite ``email`` to the account with ``role``; emailed with ``SMTP_URL``, else ``link`` to copy."""
    email, role = _checked_email(email), checked_role(role)
    require_permission(session, actor, account_id=account_id, permission=MEMBERS_EDIT)
    if role == OWNER:
        require_permission(session, actor, account_id=account_id, permission=OWNERS_EDIT)
    sent = claim(
        session,
        submission_id=submission_id,
        agent=actor,
        action="members.invite",
        account_id=account_id,
        fields={"email": email, "role": role},
        at=at,
    )
    token = invitation_token(secret, submission_id)
    link = invitation_link(link_base, token)
    if (first := replayed(sent)) is not None:
        row = session.get(Invitation, int(first["invitation_id"]))
        assert row is not None, "an invitation a finished submission made is never deleted"
        view = _view(row, _account_name(session, account_id))
        return Invited(view, link, bool(first["emailed"]), replayed=True)
    account = lock_account(session, account_id)
    if (current := member_role(session, email, account_id)) is not None:
        raise ValidationError(
            f"there is a member with the email {email} already ({current}): change their role instead",
            field="email",
        )
    waiting = session.scalar(
        select(Invitation).where(
            Invitation.account_id == account_id,
            Invitation.email == email,
            Invitation.state == PENDING,
            Invitation.expires_at > at,
        )
    )
    if waiting is not None:
        raise Conflict(
            f"there is a pending invitation for {email} already (until "
            f"{format_datetime(waiting.expires_at, 'UTC')}): revoke it to send a new one",
            code="already_invited",
            field="email",
        )
    row = Invitation(
        account_id=account_id,
        email=email,
        role=role,
        token_hash=token_hash(token),
        state=PENDING,
        invited_by=actor.author,
        created_at=at,
        expires_at=at + (ttl if ttl is not None else invitation_ttl()),
    )
    session.add(row)
    session.flush()
    view = _view(row, account.name)
    record_member_change(
        session,
        actor,
        action="invited",
        account_id=account_id,
        target=f"invitation:{row.id}",
        reason=f"invited {email} as {role}",
        at=at,
        after={"email": email, "role": role, "expires_at": row.expires_at.isoformat()},
    )
    emailed = email_after_commit(session, _invitation_mail(view, link, actor.email))
    finish(session, sent, {"invitation_id": row.id, "emailed": emailed}, at)
    return Invited(view, link, emailed)


def revoke_invitation(
    session: Session,
    actor: Actor,
    *,
    account_id: str,
    invitation_id: int,
    submission_id: str,
    at: datetime,
) -> InvitationView:
    """Withdraw a pending invitation (an expired one too): its link stops working."""
    require_permission(session, actor, account_id=account_id, permission=MEMBERS_EDIT)
    sent = claim(
        session,
        submission_id=submission_id,
        agent=actor,
        action="members.revoke_invitation",
        account_id=account_id,
        fields={"invitation_id": invitation_id},
        at=at,
    )
    account = lock_account(session, account_id)
    row = session.get(Invitation, invitation_id, populate_existing=True)
    if row is None or row.account_id != account_id:
        raise NotFound(f"invitation {invitation_id} does not exist in this account", field="invitation_id")
    if replayed(sent) is not None:
        return _view(row, account.name)
    if row.role == OWNER:
        require_permission(session, actor, account_id=account_id, permission=OWNERS_EDIT)
    if row.state != PENDING:
        raise Conflict(
            f"the invitation to {row.email} was already {row.state}: there is nothing to revoke",
            code=f"invitation_{row.state}",
            field="invitation_id",
        )
    row.state = REVOKED
    row.revoked_at = at
    row.revoked_by = actor.author
    record_member_change(
        session,
        actor,
        action="invitation_revoked",
        account_id=account_id,
        target=f"invitation:{row.id}",
        reason=f"revoked the invitation of {row.email} as {row.role}",
        at=at,
        before={"state": PENDING},
        after={"state": REVOKED},
    )
    finish(session, sent, {"invitation_id": row.id}, at)
    return _view(row, account.name)


def find_invitation(session: Session, token: object) -> InvitationView | None:
    """The invitation a link's token opens, whatever its state; None for a token that opens none."""
    if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
        return None
    row = session.scalar(
        select(Invitation)
        .where(Invitation.token_hash == token_hash(token))
        .execution_options(populate_existing=True)
    )
    return None if row is None else _view(row, _account_name(session, row.account_id))


NOT_AN_INVITATION = (
    "this link does not open an invitation: check that you copied all of it, "
    "or ask an owner or admin of the account for a new one"
)


def refusal(view: InvitationView | None, email: str, at: datetime) -> BillingError | None:
    """Why ``email`` cannot accept this invitation at ``at`` (each with what to do next), or None."""
    if view is None:
        return NotFound(NOT_AN_INVITATION, code="invitation_not_found", field="token")
    ask = f"ask an owner or admin of {view.account_name} to invite you again"
    status = view.status(at)
    if status == ACCEPTED:
        when = f" on {format_datetime(view.accepted_at, 'UTC')}" if view.accepted_at else ""
        return Conflict(
            f"this invitation was already used{when}: a link works once. If that was you, "
            f"{view.account_name} is among your accounts; otherwise {ask}",
            code="invitation_used",
            field="token",
        )
    if status == REVOKED:
        return Conflict(
            f"this invitation to {view.account_name} was withdrawn; {ask}",
            code="invitation_revoked",
            field="token",
        )
    if status == EXPIRED:
        return Conflict(
            f"this invitation expired on {format_datetime(view.expires_at, 'UTC')}; {ask}",
            code="invitation_expired",
            field="token",
        )
    if normalized_email(email) != view.email:
        return PermissionDenied(
            f"this invitation is for {view.email}, and you are signed in as {normalized_email(email)}: "
            f"sign out and sign in as {view.email} to accept it, or ask an owner or admin of "
            f"{view.account_name} to invite {normalized_email(email)}",
            code="invitation_for_another_email",
            field="email",
        )
    return None


@dataclass(frozen=True)
class Accepted:
    account_id: str
    account_name: str
    role: str  # the role the person has in the account now
    already_member: bool  # they were a member before (and keep the role they had)


def accept_invitation(session: Session, actor: Actor, *, token: str, at: datetime) -> Accepted:
    """Make the signed-in person (``actor``, a member actor) a member with the invitation's role, once."""
    if not isinstance(actor, Actor) or actor.kind != "member":
        raise PermissionDenied(
            "an invitation is accepted by the invited person, signed in as themselves", field="actor"
        )
    view = find_invitation(session, token)
    if (problem := refusal(view, actor.email, at)) is not None:
        raise problem
    assert view is not None, "refusal answers a missing invitation"
    result: Any = session.execute(
        update(Invitation)
        .where(Invitation.id == view.invitation_id, Invitation.state == PENDING, Invitation.expires_at > at)
        .values(state=ACCEPTED, accepted_at=at)
        .execution_options(synchronize_session=False)
    )
    if not isinstance(result, CursorResult) or result.rowcount != 1:
        # Another tab accepted it (or an owner revoked it) between our read and our update.
        problem = refusal(find_invitation(session, token), actor.email, at)
        raise problem or Conflict("this invitation was already used", code="invitation_used", field="token")
    user = ensure_user(session, email=actor.email, at=at)
    membership = session.get(Membership, (user.id, view.account_id))
    already = membership is not None
    if membership is None:
        membership = Membership(user_id=user.id, account_id=view.account_id, role=view.role, created_at=at)
        session.add(membership)
        session.flush()
    record_member_change(
        session,
        actor,
        action="invitation_accepted",
        account_id=view.account_id,
        target=f"invitation:{view.invitation_id}",
        reason=f"{view.email} accepted the invitation as {view.role}"
        + (f" (already a member: keeps {membership.role})" if already else ""),
        at=at,
        before={"state": PENDING},
        after={"state": ACCEPTED, "role": membership.role},
    )
    return Accepted(view.account_id, view.account_name, membership.role, already)
