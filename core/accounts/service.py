"""Accounts, users and memberships: create them, and decide who may see what.

Access rule (DESIGN invariant 7): a customer reads and writes only the accounts they
are a member of, within their role; a support agent (role from the sign-in, never
from the database alone) may read every account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import ROLES, Account, Membership, RateCard, User
from core.errors import NotFound, PermissionDenied, ValidationError
from core.text import is_clean_text, one_line, single_line_text

# What each role may do, from most to least powerful.
ROLE_RANK = {"owner": 4, "admin": 3, "billing": 2, "viewer": 1}


@dataclass(frozen=True)
class AccountSummary:
    account_id: str
    name: str
    status: str
    timezone: str
    role: str  # the viewer's role in it ("support" for an agent)


MAX_ACCOUNT_ID = 64  # the accounts table's id column


def find_account(session: Session, account_id: object) -> Account | None:
    """The account with this id, or None, also for an id no account can have (empty, longer
    than the column, a NUL or a lone surrogate): those never reach the database, which could
    not even be asked about the last two (an address's ``?account=`` can hold anything)."""
    if not isinstance(account_id, str) or not 0 < len(account_id) <= MAX_ACCOUNT_ID:
        return None
    if not is_clean_text(account_id):
        return None
    return session.get(Account, account_id)


def shown_id(account_id: str) -> str:
    """An account id as an error message may quote it: at most the column's length."""
    return repr(account_id if len(account_id) <= MAX_ACCOUNT_ID else account_id[:MAX_ACCOUNT_ID] + "…")


def create_account(
    session: Session,
    *,
    account_id: str,
    name: str,
    at: datetime,
    timezone: str = "UTC",
    rate_card_key: str | None = None,
    status: str = "active",
    default_alerts: bool = True,
) -> Account:
    """Create an account (ids are the company's own, e.g. ``acc_acme``); the id and the name are one
    line each (``core.text.single_line_text``). It starts with the default alert rules ("credits
    expire within 30 days", "… 7 days"; ``core.spend.expiring``) unless ``default_alerts`` is False."""
    if not account_id or len(account_id) > 64:
        raise ValidationError("account id must be 1 to 64 characters", field="account_id")
    single_line_text(account_id, field="account_id")
    single_line_text(name, field="name")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown timezone {timezone!r}", field="timezone") from None
    if session.get(Account, account_id) is not None:
        raise ValidationError(f"account {account_id!r} already exists", field="account_id")
    rate_card_id = None
    if rate_card_key is not None:
        card = session.scalar(select(RateCard).where(RateCard.key == rate_card_key))
        if card is None:
            raise NotFound(f"rate card {rate_card_key!r} does not exist", field="rate_card")
        rate_card_id = card.id
    account = Account(
        id=account_id,
        name=name,
        status=status,
        timezone=timezone,
        rate_card_id=rate_card_id,
        balance_nanos=0,
        created_at=at,
    )
    session.add(account)
    session.flush()
    if default_alerts:
        from core.spend.expiring import add_default_expiry_rules

        add_default_expiry_rules(session, account_id, at=at)  # "credits expire within 30 / 7 days"
    return account


def ensure_user(session: Session, *, email: str, at: datetime, display_name: str = "") -> User:
    """The user with this email (lower-cased), created on first sign-in.

    The display name comes from the sign-in provider, where the person cannot retype it for us:
    it is kept as one line (``core.text.one_line``) rather than refused."""
    normalized = single_line_text(email.strip().lower(), field="email")
    if "@" not in normalized:
        raise ValidationError("a user is identified by an email address", field="email")
    user = session.scalar(select(User).where(User.email == normalized))
    if user is None:
        user = User(email=normalized, display_name=one_line(display_name).strip()[:200], created_at=at)
        session.add(user)
        session.flush()
    return user


def add_member(session: Session, *, account_id: str, email: str, role: str, at: datetime) -> Membership:
    """Give a user a role in an account (replacing any role they had there)."""
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}", field="role")
    if session.get(Account, account_id) is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    user = ensure_user(session, email=email, at=at)
    membership = session.get(Membership, (user.id, account_id))
    if membership is None:
        membership = Membership(user_id=user.id, account_id=account_id, role=role, created_at=at)
        session.add(membership)
    else:
        membership.role = role
    session.flush()
    if role == "owner":
        from core.spend.expiring import email_new_owner

        email_new_owner(session, account_id, user.email)  # the default expiry rules email the owners
    return membership


def accounts_for_user(session: Session, email: str) -> list[AccountSummary]:
    """The accounts a user is a member of, with their role in each, by name."""
    rows = session.execute(
        select(Account, Membership.role)
        .join(Membership, Membership.account_id == Account.id)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email.strip().lower())
        .order_by(Account.name)
    ).all()
    return [AccountSummary(a.id, a.name, a.status, a.timezone, role) for a, role in rows]


def all_accounts(session: Session) -> list[AccountSummary]:
    """Every account (support agents and the server API only)."""
    return [
        AccountSummary(a.id, a.name, a.status, a.timezone, "support")
        for a in session.scalars(select(Account).order_by(Account.name))
    ]


def require_access(
    session: Session,
    *,
    email: str,
    account_id: str,
    min_role: str = "viewer",
    is_support: bool = False,
    portal_session_id: str | None = None,
    at: datetime | None = None,
) -> AccountSummary:
    """The account if this person may act on it with at least ``min_role``; else PermissionDenied.

    Support agents may read any account; their writes are checked by the support
    console's own commands, which audit them. With ``portal_session_id`` the reader is that
    portal session (``core.portal_sessions``): open (at ``at``), for this account, its role.
    """
    if portal_session_id is not None:
        from core.portal_sessions import portal_access  # that module imports this package

        _, role = portal_access(session, portal_session_id=portal_session_id, account_id=account_id, at=at)
        found = find_account(session, account_id)
        if found is None:
            raise PermissionDenied("you are not a member of this account", field="account_id")
        if ROLE_RANK[role] < ROLE_RANK[min_role]:
            raise PermissionDenied(f"this needs the {min_role} role or higher; you are {role}", field="role")
        return AccountSummary(found.id, found.name, found.status, found.timezone, role)
    account = find_account(session, account_id)
    if is_support and min_role == "viewer":
        if account is None:
            raise NotFound(f"account {shown_id(account_id)} does not exist", field="account_id")
        return AccountSummary(account.id, account.name, account.status, account.timezone, "support")
    # The same answer whether the account exists or not: other customers' ids are not revealed.
    not_a_member = PermissionDenied("you are not a member of this account", field="account_id")
    if account is None:
        raise not_a_member
    row = session.execute(
        select(Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email.strip().lower(), Membership.account_id == account_id)
    ).first()
    if row is None:
        raise not_a_member
    if ROLE_RANK[row.role] < ROLE_RANK[min_role]:
        raise PermissionDenied(f"this needs the {min_role} role or higher; you are {row.role}", field="role")
    return AccountSummary(account.id, account.name, account.status, account.timezone, row.role)
