"""The Finance page's margin section: revenue, cost and margin per meter and model for a month.

Support admins only: ``margin_for_agent`` checks the level again in the core. Figures are
dollars (the cost card is in dollars; revenue is credits at 1 credit = $1.00), two decimals for
people; the CLI's ``--json`` keeps every digit. A line with usage no cost covers says "no cost
card" instead of a margin. The chart draws revenue and cost side by side per line; its bar
lengths are floats (geometry only), every figure a person reads in its tooltip is exact text.
"""

from __future__ import annotations

from datetime import date

import altair as alt
import pandas as pd
import streamlit as st

from app.resources import get_engine
from core.costs import MarginLine, MarginReport, margin_for_agent
from core.db import unit_of_work
from core.display import CREDIT_WORTH, format_dollars, format_quantity
from core.errors import BillingError
from core.money import NANOS_PER_CREDIT
from core.support.agents import Agent
from core.usage.exports import plural

NO_COST = "no cost card"
MONTHS_OFFERED = 12
MONTH_KEY = "finance.margin.month"
REVENUE, COST = "Revenue", "Cost"
SERIES_COLORS = {REVENUE: "#4e79a7", COST: "#f28e2b"}


def recent_months(today: date, count: int = MONTHS_OFFERED) -> list[str]:
    """``YYYY-MM`` of this month and the ones before it, newest first."""
    year, month = today.year, today.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months


def month_label(month: str) -> str:
    """ "2026-11" -> "Nov 2026"."""
    return date(int(month[:4]), int(month[5:]), 1).strftime("%b %Y")


def line_label(line: MarginLine) -> str:
    return f"{line.meter_display} · {line.model or '(no model)'}"


def dollars_number(nanos: int) -> str:
    """A dollar amount for a cell under a "($)" header: "1,284.10", "-3.20", "< 0.01"."""
    return format_dollars(nanos).replace("$", "")


def _percent(value: object) -> str:
    return "—" if value is None else f"{value} %"


def margin_table(report: MarginReport) -> pd.DataFrame:
    """One row per meter and model and a Total row; text cells, formatted by the money rule."""
    rows = []
    for line in report.lines:
        rows.append(
            {
                "Meter": line.meter_display,
                "Model": line.model or "(no model)",
                "Quantity": format_quantity(line.quantity, plural(line.unit, line.quantity)),
                "Revenue ($)": dollars_number(line.revenue_nanos),
                "Cost ($)": dollars_number(line.cost_nanos or 0) if line.has_cost else NO_COST,
                "Margin ($)": dollars_number(line.margin_nanos or 0) if line.has_cost else "—",
                "Margin %": _percent(line.margin_percent) if line.has_cost else "—",
            }
        )
    rows.append(
        {
            "Meter": "Total",
            "Model": "",
            "Quantity": "",
            "Revenue ($)": dollars_number(report.revenue_nanos),
            "Cost ($)": dollars_number(report.cost_nanos),
            "Margin ($)": dollars_number(report.margin_nanos),
            "Margin %": _percent(report.margin_percent),
        }
    )
    return pd.DataFrame(rows)


def margin_chart(report: MarginReport) -> alt.Chart:
    """Revenue and cost per line, side by side (a line without a cost card shows revenue only)."""
    rows = []
    for line in report.lines:
        label = line_label(line)
        margin = "no cost card" if not line.has_cost else f"{format_dollars(line.margin_nanos or 0)}"
        for series, nanos in ((REVENUE, line.revenue_nanos), (COST, line.cost_nanos)):
            if nanos is None:
                continue
            rows.append(
                {
                    "line": label,
                    "series": series,
                    "length": nanos / NANOS_PER_CREDIT,  # geometry only
                    "amount": format_dollars(nanos),
                    "margin": margin,
                    "percent": _percent(line.margin_percent),
                }
            )
    frame = pd.DataFrame(rows, columns=["line", "series", "length", "amount", "margin", "percent"])
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("line:N", title=None, sort=None),
            yOffset=alt.YOffset("series:N", sort=[REVENUE, COST]),
            x=alt.X("length:Q", title="US dollars", axis=alt.Axis(format="$,.0f")),
            color=alt.Color(
                "series:N",
                title=None,
                scale=alt.Scale(domain=list(SERIES_COLORS), range=list(SERIES_COLORS.values())),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("line:N", title="Meter · model"),
                alt.Tooltip("series:N", title="Figure"),
                alt.Tooltip("amount:N", title="Amount"),
                alt.Tooltip("margin:N", title="Margin"),
                alt.Tooltip("percent:N", title="Margin %"),
            ],
        )
    )


def show_margin(report: MarginReport) -> None:
    """Draw one month's report: headline figures, the table, the chart and what is left out."""
    card = f"cost card `{report.cost_card_key}`" if report.cost_card_key else "no cost card loaded"
    st.caption(
        f"{month_label(report.month)} (UTC), usage of every account, {card}. Dollars; revenue is rated "
        f"usage in credits at {CREDIT_WORTH}. Costs apply from the hour they take effect."
    )
    if not report.lines:
        st.info("No usage in this month.")
        return
    revenue, cost, margin = st.columns(3)
    revenue.metric("Revenue", format_dollars(report.revenue_nanos))
    cost.metric("Cost", format_dollars(report.cost_nanos))
    margin.metric(
        "Margin",
        format_dollars(report.margin_nanos),
        help=f"Margin % of costed revenue: {_percent(report.margin_percent)}",
    )
    if report.uncosted_lines:
        names = ", ".join(line_label(line) for line in report.uncosted_lines)
        st.warning(
            f"No cost card covers {names}: {format_dollars(report.uncosted_revenue_nanos)} of revenue is "
            "left out of the total cost and margin. Add their costs with `meterline costs load FILE`."
        )
    st.dataframe(
        margin_table(report),
        hide_index=True,
        width="stretch",
        column_config={"Meter": st.column_config.TextColumn("Meter", pinned=True)},
    )
    st.altair_chart(margin_chart(report), width="stretch")


def margin_section(agent: Agent, month: str) -> None:
    """The margin section of the Finance page: the report of the month picked at the page's top."""
    st.subheader("Margin per model")
    try:
        with unit_of_work(get_engine()) as session:
            report = margin_for_agent(session, agent, month)
    except BillingError as error:
        st.error(error.message)
        return
    show_margin(report)
