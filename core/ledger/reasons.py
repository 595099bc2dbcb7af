"""Reason codes of ledger entries, with the words a customer reads for each."""

from __future__ import annotations

GRANT_ISSUED = "grant_issued"
USAGE = "usage"
GRANT_EXPIRED = "grant_expired"
DEFICIT_REPAID = "deficit_repaid"
GRANT_VOIDED = "grant_voided"
ADJUSTMENT = "adjustment"
GRANT_REFUNDED = "grant_refunded"  # a refund of the payment took back unspent purchased credits
GRANT_FROZEN = "grant_frozen"  # a dispute holds the grant's credits back
GRANT_UNFROZEN = "grant_unfrozen"  # the dispute was won: the held credits come back
DISPUTE_LOST = "dispute_lost"  # a lost dispute took the payment back: its unspent credits go too
DISPUTE_APPEAL_WON = "dispute_appeal_won"  # a lost dispute won on appeal: the credits come back
DEBT_RESTORED = "debt_restored"  # a refunded purchase had paid off usage: that usage is owed again

REASON_LABELS: dict[str, str] = {
    GRANT_ISSUED: "Credits added",
    USAGE: "Usage",
    GRANT_EXPIRED: "Credits expired",
    DEFICIT_REPAID: "Negative balance paid off",
    GRANT_VOIDED: "Credits reversed",
    ADJUSTMENT: "Adjustment",
    GRANT_REFUNDED: "Credits reversed (payment refunded)",
    GRANT_FROZEN: "Credits on hold (payment disputed)",
    GRANT_UNFROZEN: "Credits released (dispute closed)",
    DISPUTE_LOST: "Credits removed (dispute lost)",
    DISPUTE_APPEAL_WON: "Credits restored (dispute won on appeal)",
    DEBT_RESTORED: "Negative balance restored (its payment was refunded or disputed)",
}

SOURCE_LABELS: dict[str, str] = {
    "purchased": "Purchased",
    "promotional": "Promotional",
    "goodwill": "Goodwill",
}

# Lower burns first: free credits that expire go before credits the customer paid for.
DEFAULT_PRIORITY: dict[str, int] = {"promotional": 10, "goodwill": 20, "purchased": 50}
