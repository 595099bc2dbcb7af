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
}

SOURCE_LABELS: dict[str, str] = {
    "purchased": "Purchased",
    "promotional": "Promotional",
    "goodwill": "Goodwill",
}

# Lower burns first: free credits that expire go before credits the customer paid for.
DEFAULT_PRIORITY: dict[str, int] = {"promotional": 10, "goodwill": 20, "purchased": 50}
