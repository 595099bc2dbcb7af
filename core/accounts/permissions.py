"""Who may change what in an account: the one table of customer permissions, enforced in the core.

Every customer write (``core.spend``: alert rules, webhooks, caps, the overdraft, marking
notifications read; ``core.payments``: buying credits, removing a saved card, auto-recharge;
``core.accounts.members`` and ``core.accounts.invitations``: members and invitations;
``core.customer_keys``: creating and revoking customer API keys) takes an ``Actor`` and calls
``require_permission`` in its own transaction before it changes anything. Pages hide what a
role cannot use, but the decision is made here, so a page that forgets, a script or a tampered
request gets the same answer.

    action              owner  admin  billing  viewer  support  what it covers
    alerts.edit         yes    yes    no       no      no       alert rules: create, edit, pause, delete
    webhooks.edit       yes    yes    no       no      no       alert webhooks: add, roll the secret, remove
    caps.edit           yes    yes    no       no      yes (*)  spend caps (day, week, month): set, remove
    overdraft.edit      yes    yes    no       no      no       the overdraft allowance
    credits.buy         yes    yes    yes      no      no       checkout, saved-card purchase, cancel
    cards.remove        yes    yes    yes      no      no       remove a saved card
    auto_recharge.edit  yes    yes    yes      no      no       auto-recharge on or off, its guardrails
    notifications.read  yes    yes    yes      yes     no       mark one's own notifications read
    members.edit        yes    yes    no       no      no       invite, revoke an invitation, change a role,
                                                                remove a member
    owners.edit         yes    no     no       no      no       the same when it concerns an owner: invite
                                                                or promote to owner, demote or remove an
                                                                owner, revoke an owner's invitation (**)
    api_keys.edit       yes    yes    yes      no      no       customer API keys: create, revoke

    (*) through core.support (set_cap_as_agent, lift_cap_as_agent), which requires the
        support_admin level and writes the audit entry.
    (**) checked on top of members.edit; whoever acts, the account's last owner can be
         neither demoted nor removed (core.accounts.members). Accepting an invitation is not
         in the table: the invitation decides it (the signed-in email must be the invited one).

Who acts (``Actor.kind``):

    member   a signed-in person acting on an account they chose. Their role is read from the
             membership table inside the write's transaction, never taken from the actor, so a
             role changed a moment ago counts on the next click; not a member: refused.
    view_as  a support agent viewing the account as its customer: read-only, every customer write
             is refused, even when the agent is also a member of the account.
    agent    core.support acting for an agent whose level it checked and whose action it audits:
             only the actions marked in the "support console" column.
    system   the company's own code (server token, CLI, jobs, demo seed, benchmarks): every action.
    customer_key  a customer API key (``Actor.customer_key``) on the HTTP API: only its own
             account, only the actions whose ``key_scope`` it holds (caps.edit and alerts.edit
             with ``spend:write``); another account is answered as one that does not exist.
    portal   a portal session the company's backend minted (``core.portal_sessions``): the session's
             role, capped by the person's membership role now, on the session's account only, while
             the session is open; each write it makes is also written to the audit log with the
             session id and email (``require_permission`` does it in the write's transaction).

A refusal is ``PermissionDenied`` (HTTP 403, code ``forbidden``) whose message names the
role: "changing alert rules needs the owner or admin role; you are viewer".

Pages ask ``allowed(role, action, kind=...)`` (pure, the same table) to decide what to draw:
a viewer is not offered "Buy credits", a customer view is offered no write at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.service import AccountSummary, find_account, shown_id
from core.db.models import ROLES, Membership, User
from core.errors import NotFound, PermissionDenied

ActorKind = Literal["member", "view_as", "agent", "system", "customer_key", "portal"]
ACTOR_KINDS: tuple[ActorKind, ...] = ("member", "view_as", "agent", "system", "customer_key", "portal")
SPEND_WRITE_SCOPE = "spend:write"  # core.customer_keys.SPEND_WRITE (that package imports this one)


@dataclass(frozen=True)
class Actor:
    """Who is writing: built once per request by the app (from the signed-in user and whether the
    session views an account as its customer), by core.support for an agent, or as ``system``."""

    email: str  # the person (or, for ``system``, a name such as "api" or "demo seed"); recorded as the author
    kind: ActorKind = "member"
    # A customer key only: its account and scopes (the key's id, prefix and name are in ``email``).
    key_account_id: str | None = None
    key_scopes: tuple[str, ...] = ()
    portal_session_id: str | None = None  # kind "portal": the session acting
    at: datetime | None = None  # kind "portal": when this request started (the session must be open then)

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"actor kind must be one of {', '.join(ACTOR_KINDS)}")
        if (self.kind == "customer_key") != (self.key_account_id is not None):
            raise ValueError("a customer-key actor, and only one, names the key's account")

    @classmethod
    def member(cls, email: str) -> Actor:
        return cls(email.strip().lower(), "member")

    @classmethod
    def viewing_as_customer(cls, email: str) -> Actor:
        return cls(email.strip().lower(), "view_as")

    @classmethod
    def agent(cls, email: str) -> Actor:
        return cls(email.strip().lower(), "agent")

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(name, "system")

    @classmethod
    def customer_key(cls, *, key_id: int, prefix: str, account_id: str, scopes: tuple[str, ...]) -> Actor:
        """A customer API key acting on the HTTP API; recorded as ``api_key:<id>:<prefix>``."""
        return cls(f"api_key:{key_id}:{prefix}", "customer_key", account_id, tuple(scopes))

    @classmethod
    def portal(cls, session_id: str, email: str | None, *, at: datetime) -> Actor:
        """A portal session's person; ``email`` records ``portal:<session id>:<email>``."""
        from core.portal_sessions import portal_author  # this package is imported by that module

        return cls(portal_author(session_id, email), "portal", portal_session_id=session_id, at=at)

    @property
    def author(self) -> str:
        """What ``created_by`` / ``updated_by`` record: the email (``support:<email>`` for an agent)."""
        return f"support:{self.email}" if self.kind == "agent" else self.email


@dataclass(frozen=True)
class Permission:
    """One row of the table: the action's words for a refusal and who may do it."""

    action: str
    doing: str  # "changing alert rules": the subject of a refusal
    roles: tuple[str, ...]  # member roles allowed, most powerful first
    support_console: bool = False  # core.support may do it for an agent (it checks the level and audits)
    key_scope: str | None = None  # a customer API key holding this scope may do it on its own account

    def allows(self, role: str) -> bool:
        return role in self.roles


_EDITORS = ("owner", "admin")
_PAYERS = ("owner", "admin", "billing")

ALERTS_EDIT = Permission("alerts.edit", "changing alert rules", _EDITORS, key_scope=SPEND_WRITE_SCOPE)
WEBHOOKS_EDIT = Permission("webhooks.edit", "changing alert webhooks", _EDITORS)
CAPS_EDIT = Permission(
    "caps.edit", "changing spend caps", _EDITORS, support_console=True, key_scope=SPEND_WRITE_SCOPE
)
OVERDRAFT_EDIT = Permission("overdraft.edit", "changing the overdraft allowance", _EDITORS)
CREDITS_BUY = Permission("credits.buy", "buying credits", _PAYERS)
CARDS_REMOVE = Permission("cards.remove", "removing a saved card", _PAYERS)
AUTO_RECHARGE_EDIT = Permission("auto_recharge.edit", "changing auto-recharge", _PAYERS)
NOTIFICATIONS_READ = Permission("notifications.read", "marking notifications read", ROLES)
MEMBERS_EDIT = Permission("members.edit", "changing the account's members", _EDITORS)
OWNERS_EDIT = Permission("owners.edit", "making, changing or removing owners", ("owner",))
API_KEYS_EDIT = Permission("api_keys.edit", "managing customer API keys", _PAYERS)

PERMISSIONS: dict[str, Permission] = {
    p.action: p
    for p in (
        ALERTS_EDIT,
        WEBHOOKS_EDIT,
        CAPS_EDIT,
        OVERDRAFT_EDIT,
        CREDITS_BUY,
        CARDS_REMOVE,
        AUTO_RECHARGE_EDIT,
        NOTIFICATIONS_READ,
        MEMBERS_EDIT,
        OWNERS_EDIT,
        API_KEYS_EDIT,
    )
}

READ_ONLY_VIEW = "a customer view is read-only"


def allowed(role: str | None, action: str | Permission, *, kind: ActorKind = "member") -> bool:
    """Whether the table lets ``role`` (None: not a member) acting as ``kind`` do ``action``.

    Pure, for drawing pages (offer only what the person may use); the write still decides with
    ``require_permission``, reading the role in its own transaction. A customer view
    (``view_as``) may do nothing, ``system`` everything, an ``agent`` what the support console
    column says. An unknown action is a programming error (KeyError), not a quiet "no".
    """
    permission = action if isinstance(action, Permission) else PERMISSIONS[action]
    if kind == "view_as":
        return False
    if kind == "system":
        return True
    if kind == "agent":
        return permission.support_console
    if kind == "customer_key":
        return permission.key_scope is not None
    return role is not None and permission.allows(role)


def _roles_text(roles: tuple[str, ...]) -> str:
    return roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} or {roles[-1]}"


def member_role(session: Session, email: str, account_id: str) -> str | None:
    """The person's role in the account as stored now, or None for a non-member."""
    return session.scalar(
        select(Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email.strip().lower(), Membership.account_id == account_id)
    )


def require_permission(
    session: Session, actor: Actor, *, account_id: str, permission: Permission
) -> AccountSummary:
    """The account if ``actor`` may do ``permission`` on it now; else PermissionDenied naming the role.

    Call it inside the transaction that writes, before writing: the role read here is the one
    the write is decided on.
    """
    if not isinstance(actor, Actor):
        raise PermissionDenied("a write needs the acting user", field="actor")
    if actor.kind == "view_as":  # decided before any lookup: whatever the agent's own memberships
        raise PermissionDenied(
            f"{READ_ONLY_VIEW}: you are a support agent viewing this account as its customer, so "
            f"{permission.doing} is refused here; act from the support console",
            field="role",
        )
    if actor.kind == "customer_key":
        return _key_permission(session, actor, account_id=account_id, permission=permission)
    if actor.kind == "portal":
        return _portal_permission(session, actor, account_id=account_id, permission=permission)
    account = find_account(session, account_id)
    if actor.kind in ("system", "agent"):
        if actor.kind == "agent" and not permission.support_console:
            raise PermissionDenied(
                f"{permission.doing} is for the account's members; a support agent cannot do it for them",
                field="role",
            )
        if account is None:
            raise NotFound(f"account {shown_id(account_id)} does not exist", field="account_id")
        return AccountSummary(account.id, account.name, account.status, account.timezone, actor.kind)
    # The same answer whether the account exists or not: other customers' ids are not revealed.
    role = member_role(session, actor.email, account_id) if account is not None else None
    if account is None or role is None:
        raise PermissionDenied(
            f"you are not a member of this account, so {permission.doing} is refused", field="account_id"
        )
    if not permission.allows(role):
        raise PermissionDenied(
            f"{permission.doing} needs the {_roles_text(permission.roles)} role; you are {role}", field="role"
        )
    return AccountSummary(account.id, account.name, account.status, account.timezone, role)


def _key_permission(
    session: Session, actor: Actor, *, account_id: str, permission: Permission
) -> AccountSummary:
    """A customer key: its own account only (another is answered as one that does not exist),
    and only an action its scopes allow."""
    account = find_account(session, account_id) if account_id == actor.key_account_id else None
    if account is None:
        raise NotFound(f"account {shown_id(account_id)} does not exist", field="account_id")
    if permission.key_scope is None:
        raise PermissionDenied(f"{permission.doing} is not open to customer API keys", field="authorization")
    if permission.key_scope not in actor.key_scopes:
        raise PermissionDenied(
            f"{permission.doing} needs a customer API key with the {permission.key_scope} scope",
            field="scope",
        )
    return AccountSummary(account.id, account.name, account.status, account.timezone, actor.kind)


def _portal_permission(
    session: Session, actor: Actor, *, account_id: str, permission: Permission
) -> AccountSummary:
    """A portal session's write: open, on its account, its role allows it; audited before the write."""
    from core.portal_sessions import audit_portal_write, portal_access

    if actor.portal_session_id is None or actor.at is None:
        raise PermissionDenied("a portal write needs its session and time", field="actor")
    view, role = portal_access(
        session, portal_session_id=actor.portal_session_id, account_id=account_id, at=actor.at
    )
    if not permission.allows(role):
        raise PermissionDenied(
            f"{permission.doing} needs the {_roles_text(permission.roles)} role; you are {role}", field="role"
        )
    account = find_account(session, account_id)
    if account is None:  # the session row's foreign key makes this a bug, not an input
        raise NotFound(f"account {shown_id(account_id)} does not exist", field="account_id")
    audit_portal_write(session, view, action=permission.action, role=role, at=actor.at)
    return AccountSummary(account.id, account.name, account.status, account.timezone, role)
