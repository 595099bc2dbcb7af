"""Accounts, users, memberships and access decisions (reads: ``require_access``; customer writes:
``require_permission`` with an ``Actor``, on the table in ``core.accounts.permissions``).

Managing members is in the submodules ``core.accounts.members`` (roster, role changes, removals,
last sign-in) and ``core.accounts.invitations`` (invite, revoke, accept); import them from there:
they build on ``core.support.once`` and ``core.payments.notify``, which import this package."""

from core.accounts.permissions import (
    PERMISSIONS,
    Actor,
    Permission,
    allowed,
    require_permission,
)
from core.accounts.service import (
    ROLE_RANK,
    AccountSummary,
    accounts_for_user,
    add_member,
    all_accounts,
    create_account,
    ensure_user,
    require_access,
)

__all__ = [
    "PERMISSIONS",
    "ROLE_RANK",
    "AccountSummary",
    "Actor",
    "Permission",
    "accounts_for_user",
    "add_member",
    "all_accounts",
    "allowed",
    "create_account",
    "ensure_user",
    "require_access",
    "require_permission",
]
