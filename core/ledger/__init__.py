"""The credit ledger: grants, burn-down, expiry, views and the invariant check."""

from core.ledger.check import LedgerCheckReport, check_ledger
from core.ledger.service import (
    GrantView,
    expire_due_grants,
    grant_credits,
    lock_accounts,
    post_usage,
    post_usage_batch,
    void_grant,
)
from core.ledger.views import BalanceView, LedgerLine, all_grants, balance_view, ledger_view

__all__ = [
    "BalanceView",
    "GrantView",
    "LedgerCheckReport",
    "LedgerLine",
    "all_grants",
    "balance_view",
    "check_ledger",
    "expire_due_grants",
    "grant_credits",
    "ledger_view",
    "lock_accounts",
    "post_usage",
    "post_usage_batch",
    "void_grant",
]
