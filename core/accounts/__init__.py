"""Accounts, users, memberships and access decisions."""

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
    "ROLE_RANK",
    "AccountSummary",
    "accounts_for_user",
    "add_member",
    "all_accounts",
    "create_account",
    "ensure_user",
    "require_access",
]
