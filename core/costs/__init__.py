"""Internal costs: cost cards (what serving usage costs us) and the margin report. Never customer-facing."""

from core.costs.cards import CostLoadReport, load_cost_card, load_cost_card_file
from core.costs.margin import MarginLine, MarginReport, margin_for_agent, margin_for_month, month_bounds

__all__ = [
    "CostLoadReport",
    "MarginLine",
    "MarginReport",
    "load_cost_card",
    "load_cost_card_file",
    "margin_for_agent",
    "margin_for_month",
    "month_bounds",
]
