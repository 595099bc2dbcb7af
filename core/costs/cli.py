"""``meterline costs load`` and ``meterline finance margin``: internal costs from the command line.

    meterline costs load FILE.toml [--allow-backdated] [--actor NAME]
    meterline finance margin --month YYYY-MM [--cost-card KEY] [--json]

Loads are audited as ``cli:<--actor or $USER>``. The margin's text is for people (dollars with two
decimals, times in UTC, named); ``--json`` keeps every digit as decimal strings (``*_usd``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.clock import system_clock
from core.costs.cards import load_cost_card_file
from core.costs.margin import MarginLine, MarginReport, margin_for_month
from core.db import make_engine, unit_of_work
from core.display import CREDIT_WORTH, format_datetime, format_dollars, format_quantity
from core.money import CENT, nanos_to_credits
from core.rating.history import operator_actor, print_load_report
from core.usage.exports import plural

NO_COST = "no cost card"


def _costs_load(args: argparse.Namespace) -> int:
    actor = operator_actor(args.actor)
    engine = make_engine()
    try:
        with unit_of_work(engine, write=True) as session:
            report = load_cost_card_file(
                session, Path(args.file), at=system_clock(), actor=actor, allow_backdated=args.allow_backdated
            )
    finally:
        engine.dispose()
    print(f"cost card {report.card_key!r} from {args.file} (audited as {actor}):")
    print_load_report(report.versions_added, report.versions_unchanged)
    return 0


def exact_usd(nanos: int | None) -> str | None:
    """Every digit of a dollar amount, for machines: "12.500000001", "3.00"."""
    if nanos is None:
        return None
    value = nanos_to_credits(nanos).normalize()
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        value = value.quantize(CENT)
    return f"{value:f}"


def percent_text(value: object) -> str:
    return "—" if value is None else f"{value} %"


def model_text(model: str) -> str:
    return model or "(no model)"


def line_json(line: MarginLine) -> dict[str, Any]:
    return {
        "meter": line.meter,
        "model": line.model,
        "unit": line.unit,
        "quantity": line.quantity,
        "revenue_usd": exact_usd(line.revenue_nanos),
        "cost_usd": exact_usd(line.cost_nanos),
        "margin_usd": exact_usd(line.margin_nanos),
        "margin_percent": None if line.margin_percent is None else str(line.margin_percent),
        "cost_status": "costed" if line.has_cost else "no_cost_card",
        "uncosted_quantity": line.uncosted_quantity,
    }


def report_json(report: MarginReport) -> str:
    return json.dumps(
        {
            "month": report.month,
            "start": report.start.isoformat().replace("+00:00", "Z"),
            "end": report.end.isoformat().replace("+00:00", "Z"),
            "currency": "USD",
            "credit_value_usd": "1.00",
            "cost_card": report.cost_card_key,
            "lines": [line_json(line) for line in report.lines],
            "totals": {
                "revenue_usd": exact_usd(report.revenue_nanos),
                "costed_revenue_usd": exact_usd(report.costed_revenue_nanos),
                "uncosted_revenue_usd": exact_usd(report.uncosted_revenue_nanos),
                "cost_usd": exact_usd(report.cost_nanos),
                "margin_usd": exact_usd(report.margin_nanos),
                "margin_percent": None if report.margin_percent is None else str(report.margin_percent),
                "lines_without_cost": len(report.uncosted_lines),
            },
        },
        indent=2,
    )


def report_text(report: MarginReport) -> str:
    card = f"cost card {report.cost_card_key!r}" if report.cost_card_key else "no cost card loaded"
    out = [
        f"Margin for {report.month} ({format_datetime(report.start, 'UTC')} to "
        f"{format_datetime(report.end, 'UTC')}), {card}; dollars, {CREDIT_WORTH}",
    ]
    if not report.lines:
        out.append("  no usage in this month")
        return "\n".join(out)
    header = (
        f"  {'Meter':<18} {'Model':<18} {'Quantity':>22} {'Revenue':>14} {'Cost':>14} "
        f"{'Margin':>14} {'Margin %':>9}"
    )
    out.append(header)
    for line in report.lines:
        quantity = format_quantity(line.quantity, plural(line.unit, line.quantity))
        if line.has_cost:
            cost, margin = format_dollars(line.cost_nanos or 0), format_dollars(line.margin_nanos or 0)
            pct = percent_text(line.margin_percent)
        else:
            cost, margin, pct = NO_COST, "—", "—"
        out.append(
            f"  {line.meter:<18} {model_text(line.model):<18} {quantity:>22} "
            f"{format_dollars(line.revenue_nanos):>14} {cost:>14} {margin:>14} {pct:>9}"
        )
    out.append(
        f"  {'Total':<18} {'':<18} {'':>22} {format_dollars(report.revenue_nanos):>14} "
        f"{format_dollars(report.cost_nanos):>14} {format_dollars(report.margin_nanos):>14} "
        f"{percent_text(report.margin_percent):>9}"
    )
    if report.uncosted_lines:
        names = ", ".join(f"{line.meter} {model_text(line.model)}" for line in report.uncosted_lines)
        out.append(
            f"  {len(report.uncosted_lines)} line(s) have no cost card ({names}): their revenue, "
            f"{format_dollars(report.uncosted_revenue_nanos)}, is left out of the total cost and margin"
        )
    return "\n".join(out)


def _finance_margin(args: argparse.Namespace) -> int:
    engine = make_engine()
    try:
        with unit_of_work(engine) as session:
            report = margin_for_month(session, args.month, cost_card=args.cost_card)
    finally:
        engine.dispose()
    print(report_json(report) if args.json else report_text(report))
    return 0


def add_cost_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser], *, finance: Any) -> None:
    """Register ``meterline costs load``, and ``margin`` among ``finance``'s sub-commands."""
    costs = commands.add_parser("costs", help="internal cost cards (never shown to customers)")
    actions = costs.add_subparsers(dest="action", required=True)
    load = actions.add_parser("load", help="load a TOML/YAML cost card file (new versions only)")
    load.add_argument("file")
    load.add_argument("--allow-backdated", action="store_true", help="accept versions that start in the past")
    load.add_argument("--actor", help="who loads it, for the audit log (default: $USER)")
    load.set_defaults(run=_costs_load)

    margin = finance.add_parser("margin", help="revenue, cost and margin per meter and model for a UTC month")
    margin.add_argument("--month", required=True, metavar="YYYY-MM", help="the month (UTC)")
    margin.add_argument("--cost-card", help="the cost card's key (default: the only one loaded)")
    margin.add_argument("--json", action="store_true", help="one JSON object, exact decimal strings")
    margin.set_defaults(run=_finance_margin)
