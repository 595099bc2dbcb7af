"""Finance reports over the ledger: the credit roll-forward (deferred revenue, recognition, breakage)."""

from core.finance.report import rollforward_csv, rollforward_dict, rollforward_json, rollforward_text
from core.finance.rollforward import (
    GrantMonth,
    GrantTerms,
    Rollforward,
    RollforwardLine,
    build_rollforward,
    credit_rollforward,
    deferred_now_usd_nanos,
    grant_line,
)

__all__ = [
    "GrantMonth",
    "GrantTerms",
    "Rollforward",
    "RollforwardLine",
    "build_rollforward",
    "credit_rollforward",
    "deferred_now_usd_nanos",
    "grant_line",
    "rollforward_csv",
    "rollforward_dict",
    "rollforward_json",
    "rollforward_text",
]
