"""The credit ledger: grants, burn-down, expiry, views and the invariant check."""

from core.ledger.check import LedgerCheckReport, check_ledger, run_ledger_check
from core.ledger.service import (
    GrantMove,
    GrantView,
    UsageGrants,
    deficit_of,
    expire_due_grants,
    grant_credits,
    grant_entry_sums,
    load_usage_grants,
    lock_accounts,
    move_grant_credits,
    post_usage,
    post_usage_batch,
    void_grant,
)
from core.ledger.views import BalanceView, LedgerLine, all_grants, balance_view, ledger_view

__all__ = [
    "BalanceView",
    "GrantMove",
    "GrantView",
    "LedgerCheckReport",
    "LedgerLine",
    "UsageGrants",
    "all_grants",
    "balance_view",
    "check_ledger",
    "deficit_of",
    "expire_due_grants",
    "grant_credits",
    "grant_entry_sums",
    "ledger_view",
    "load_usage_grants",
    "lock_accounts",
    "move_grant_credits",
    "post_usage",
    "post_usage_batch",
    "run_ledger_check",
    "void_grant",
]
