"""An account's members: who they are, changing a role, removing someone; each change audited, once.

Rules, checked in the transaction that writes, with the account's row locked (``lock_account``:
two owners demoting each other at once cannot leave the account without one):

- every change needs ``members.edit`` (owner, admin); one that concerns an owner (making one,
  changing or removing one) needs ``owners.edit`` as well (owner only): see
  ``core.accounts.permissions``;
- the account's last owner can be neither demoted nor removed, whoever asks.

Each change is one ``audit_log`` entry (``members.role_changed``, ``members.removed``; the
invitations add theirs) with the actor, the member, the role before and after and a sentence,
which the support console's account timeline shows. A page form's submission id is claimed
first (``core.support.once``): a double click or a retry acts once and gets the first answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.permissions import MEMBERS_EDIT, OWNERS_EDIT, Actor, require_permission
from core.accounts.service import ROLE_RANK, ensure_user
from core.db.models import ROLES, Account, AuditLog, Membership, User
from core.errors import Conflict, NotFound, ValidationError
from core.support.once import claim, finish, replayed

ACTION_PREFIX = "members."
OWNER = "owner"


@dataclass(frozen=True)
class MemberRow:
    """One member as the Members page lists them."""

    email: str
    name: str
    role: str
    joined_at: datetime
    last_signed_in_at: datetime | None


@dataclass(frozen=True)
class MemberChange:
    """What a role change or a removal did: ``role_after`` is None once removed; ``changed`` is False
    when the member already had that role."""

    email: str
    role_before: str
    role_after: str | None
    changed: bool

    def as_result(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "before": self.role_before,
            "after": self.role_after,
            "changed": self.changed,
        }

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> MemberChange:
        return cls(str(result["email"]), str(result["before"]), result.get("after"), bool(result["changed"]))


def normalized_email(email: str) -> str:
    return (email or "").strip().lower()


def checked_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}", field="role")
    return role


def list_members(session: Session, account_id: str) -> list[MemberRow]:
    """The account's members, owners first (then by role), then by email."""
    rows = session.execute(
        select(User.email, User.display_name, Membership.role, Membership.created_at, User.last_signed_in_at)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id)
    ).all()
    members = [
        MemberRow(email, name or email, role, joined, last) for email, name, role, joined, last in rows
    ]
    return sorted(members, key=lambda m: (-ROLE_RANK[m.role], m.email))


def lock_account(session: Session, account_id: str) -> Account:
    """The account row, locked for this transaction (PostgreSQL ``FOR UPDATE``; SQLite's write
    transaction already holds the database lock): member changes of one account go one at a time."""
    stmt = select(Account).where(Account.id == account_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    account = session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    return account


def record_member_change(
    session: Session,
    by: Actor,
    *,
    action: str,
    account_id: str,
    target: str,
    reason: str,
    at: datetime,
    before: Any = None,
    after: Any = None,
) -> None:
    """The change's audit entry, in the change's own transaction (the account timeline shows it);
    ``by`` is the actor of the change that was already allowed."""
    session.add(
        AuditLog(
            actor=by.author,
            action=(ACTION_PREFIX + action)[:64],
            account_id=account_id,
            reason=reason,
            details={"target": target, "before": before, "after": after},
            created_at=at,
        )
    )
    session.flush()


def _membership(session: Session, account_id: str, email: str) -> Membership:
    membership = session.scalar(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email, Membership.account_id == account_id)
        .execution_options(populate_existing=True)
    )
    if membership is None:
        raise NotFound(f"no member of this account has the email {email}", field="email")
    return membership


def _owner_count(session: Session, account_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.account_id == account_id, Membership.role == OWNER)
        )
        or 0
    )


def _keep_an_owner(session: Session, account_id: str, email: str, *, field: str, doing: str) -> None:
    if _owner_count(session, account_id) <= 1:
        raise Conflict(
            f"the account's last owner ({email}) cannot be {doing}: make another member an owner first",
            code="last_owner",
            field=field,
        )


def change_role(
    session: Session,
    actor: Actor,
    *,
    account_id: str,
    email: str,
    role: str,
    submission_id: str,
    at: datetime,
) -> MemberChange:
    """Give member ``email`` the role ``role``; the last owner keeps theirs (Conflict ``last_owner``)."""
    email, role = normalized_email(email), checked_role(role)
    require_permission(session, actor, account_id=account_id, permission=MEMBERS_EDIT)
    sent = claim(
        session,
        submission_id=submission_id,
        agent=actor,
        action="members.change_role",
        account_id=account_id,
        fields={"email": email, "role": role},
        at=at,
    )
    if (first := replayed(sent)) is not None:
        return MemberChange.from_result(first)
    lock_account(session, account_id)
    membership = _membership(session, account_id, email)
    before = membership.role
    if OWNER in (before, role):
        require_permission(session, actor, account_id=account_id, permission=OWNERS_EDIT)
    change = MemberChange(email, before, role, changed=before != role)
    if change.changed:
        if before == OWNER:
            _keep_an_owner(session, account_id, email, field="role", doing="given another role")
        membership.role = role
        record_member_change(
            session,
            actor,
            action="role_changed",
            account_id=account_id,
            target=f"member:{email}",
            reason=f"changed {email} from {before} to {role}",
            at=at,
            before={"role": before},
            after={"role": role},
        )
    finish(session, sent, change.as_result(), at)
    return change


def remove_member(
    session: Session,
    actor: Actor,
    *,
    account_id: str,
    email: str,
    submission_id: str,
    at: datetime,
) -> MemberChange:
    """Take member ``email`` out of the account (their user stays); never its last owner."""
    email = normalized_email(email)
    require_permission(session, actor, account_id=account_id, permission=MEMBERS_EDIT)
    sent = claim(
        session,
        submission_id=submission_id,
        agent=actor,
        action="members.remove",
        account_id=account_id,
        fields={"email": email},
        at=at,
    )
    if (first := replayed(sent)) is not None:
        return MemberChange.from_result(first)
    lock_account(session, account_id)
    membership = _membership(session, account_id, email)
    before = membership.role
    if before == OWNER:
        require_permission(session, actor, account_id=account_id, permission=OWNERS_EDIT)
        _keep_an_owner(session, account_id, email, field="email", doing="removed")
    session.delete(membership)
    record_member_change(
        session,
        actor,
        action="removed",
        account_id=account_id,
        target=f"member:{email}",
        reason=f"removed {email} ({before})",
        at=at,
        before={"role": before},
        after=None,
    )
    change = MemberChange(email, before, None, changed=True)
    finish(session, sent, change.as_result(), at)
    return change


def record_sign_in(session: Session, *, email: str, at: datetime, display_name: str = "") -> User:
    """The user signing in (created on their first sign-in), with ``last_signed_in_at`` set to ``at``."""
    user = ensure_user(session, email=email, at=at, display_name=display_name)
    user.last_signed_in_at = at
    session.flush()
    return user
