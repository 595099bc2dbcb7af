"""Usage read views for the portal: frames from the rollup tables, spend summaries, date ranges."""

from core.usage.exports import balance_history_frame, ledger_csv, usage_csv
from core.usage.late import LateChange, late_changes
from core.usage.ranges import (
    RANGE_PRESETS,
    DateRange,
    account_today,
    billing_period,
    describe_dates,
    preset_range,
)
from core.usage.views import (
    GROUP_BY,
    SpendSummary,
    UsageTotals,
    spend_summary,
    usage_frame,
    usage_totals,
)

__all__ = [
    "GROUP_BY",
    "RANGE_PRESETS",
    "DateRange",
    "LateChange",
    "SpendSummary",
    "UsageTotals",
    "account_today",
    "balance_history_frame",
    "billing_period",
    "describe_dates",
    "late_changes",
    "ledger_csv",
    "preset_range",
    "spend_summary",
    "usage_csv",
    "usage_frame",
    "usage_totals",
]
