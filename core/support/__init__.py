"""The support console's core: find any account, see it whole, act on it with an audit trail.

Imports no Streamlit. Every action takes the acting ``Agent`` and checks its level here.
"""

from core.support.account360 import (
    Account360,
    RefundChoice,
    TimelineItem,
    account_360,
    refund_choices,
    timeline,
)
from core.support.actions import (
    ApprovalView,
    GrantOutcome,
    ReceiptResent,
    RefundDone,
    approve_grant,
    grant_credits_as_agent,
    lift_cap_as_agent,
    pending_approvals,
    reactivate_account,
    reconcile_account,
    record_customer_view,
    refund_top_up,
    reject_grant,
    resend_receipt,
    set_cap_as_agent,
    suspend_account,
    void_grant_as_agent,
)
from core.support.agents import (
    SUPPORT,
    SUPPORT_ADMIN,
    Agent,
    SupportLimits,
    agent_level,
    require_agent,
    support_limits,
)
from core.support.audit import (
    AuditEntry,
    AuditImmutable,
    audit_actions,
    audit_actors,
    audit_csv,
    audit_entries,
)
from core.support.once import new_submission_id
from core.support.search import AccountHit, search_accounts

__all__ = [
    "SUPPORT",
    "SUPPORT_ADMIN",
    "Account360",
    "AccountHit",
    "Agent",
    "ApprovalView",
    "AuditEntry",
    "AuditImmutable",
    "GrantOutcome",
    "ReceiptResent",
    "RefundChoice",
    "RefundDone",
    "SupportLimits",
    "TimelineItem",
    "account_360",
    "agent_level",
    "approve_grant",
    "audit_actions",
    "audit_actors",
    "audit_csv",
    "audit_entries",
    "grant_credits_as_agent",
    "lift_cap_as_agent",
    "new_submission_id",
    "pending_approvals",
    "reactivate_account",
    "reconcile_account",
    "record_customer_view",
    "refund_choices",
    "refund_top_up",
    "reject_grant",
    "require_agent",
    "resend_receipt",
    "search_accounts",
    "set_cap_as_agent",
    "support_limits",
    "suspend_account",
    "timeline",
    "void_grant_as_agent",
]
