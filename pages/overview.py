"""Overview: balance and runway, this period's spend and its projection, expiring credits, a negative
balance and what to do, alerts and caps: where a customer lands."""

from __future__ import annotations

from datetime import UTC

import altair as alt
import pandas as pd
import streamlit as st

from app.live import data_stamp, live_caption, watch_for_changes
from app.page import PageContext, page_context, read, show_error
from app.user_text import literal
from core.clock import system_clock
from core.display import format_credits
from core.errors import BillingError
from core.money import NANOS_PER_CREDIT
from core.spend.overview import ChartDay, Overview, ScopeProjection, overview
from core.usage.ranges import describe_dates, zone_abbreviation

EMPTY_STATE = (
    "No usage in the last weeks, so there is nothing to project yet. Send usage events to "
    "`POST /api/v1/events` with your server token (see the README): the projection appears once "
    "there is a day of spend, and learns your weekly pattern within a few weeks."
)


def money(nanos: int) -> str:
    """Dollars, with the credits beside them: "$1,284.10 (1,284.10 credits)"."""
    return format_credits(nanos)


def period_words(data: Overview, zone: str) -> tuple[str, str]:
    """("Nov 1–25, 2026 (PST)", "Nov 30, 2026"): the period so far, and its last day."""
    projection = data.projection
    so_far = f"{describe_dates(projection.period_start, projection.today)} ({zone})"
    return so_far, describe_dates(projection.period_end, projection.period_end)


def negative_balance(data: Overview) -> None:
    owed = data.owed_nanos
    if owed <= 0:
        return
    st.error(
        f"Your balance is negative: {money(owed)} of usage was not covered by credits. Usage keeps "
        "being recorded and billed against your account. To cover it, buy credits on the **Buy credits** "
        "page (or ask your account manager for a grant): the next top-up pays this off first, and what "
        "is left of it becomes your balance.",
        icon=":material/error:",
    )


def headline(data: Overview, zone: str) -> None:
    projection = data.projection
    so_far, last_day = period_words(data, zone)
    local = pd.Timestamp(data.as_of).tz_convert(data.timezone)
    balance_col, runway_col = st.columns(2)
    spent_col, projected_col = st.columns(2)
    balance_col.metric(
        f"Balance (as of {local:%b} {local.day}, {local:%H:%M} {zone})",
        format_credits(data.balance_nanos),
        help=f"Worth {format_credits(data.balance_nanos)}; 1 credit = $1.00",
    )
    runway = data.runway
    if runway.already_out:
        runway_value = "Ran out"
    elif runway.runs_out_on is None:
        runway_value = f"More than {runway.horizon_days} days"
    else:
        runway_value = describe_dates(runway.runs_out_on, runway.runs_out_on)
    runway_col.metric(
        f"Credits run out ({data.timezone} days, at your pace)",
        runway_value,
        help=(
            f"The balance {runway.describe()}. Projected from your recent daily spend with its weekly "
            "pattern, burning grants in their order; credits that expire unused are not counted. "
            "Auto-recharge and future top-ups are not included."
        ),
    )
    spent_col.metric(
        f"Spent this period, {so_far}",
        format_credits(projection.spent_nanos),
        help=f"{format_credits(projection.spent_nanos)}; the period is the calendar month in {data.timezone}",
    )
    projected_col.metric(
        f"Projected spend by {last_day} ({zone})",
        format_credits(projection.projected_nanos),
        help=(
            f"{format_credits(projection.projected_nanos)}. {projection.band_percent}% band: "
            f"{format_credits(projection.low_nanos)} – {format_credits(projection.high_nanos)}. "
            f"The last 7 days' average alone would say {format_credits(projection.run_rate_nanos)}."
        ),
    )
    calibration = "" if projection.forecast.calibrated else " (little history yet: the band is a rough guide)"
    st.caption(
        f"Projection for {describe_dates(projection.period_start, projection.period_end)} ({data.timezone}): "
        f"{format_credits(projection.projected_nanos)}, {projection.band_percent}% likely between "
        f"{format_credits(projection.low_nanos)} and {format_credits(projection.high_nanos)}{calibration}. "
        f"Balance runway: {runway.describe()}."
    )


def expiring_section(data: Overview) -> None:
    for credits in data.expiring:
        st.warning(credits.sentence(data.as_of, data.timezone), icon=":material/schedule:")


def chart(data: Overview, zone: str) -> alt.LayerChart:
    """Cumulative spend this period, the projection with its band, and where the balance runs out."""
    projection = data.projection
    days: tuple[ChartDay, ...] = data.chart
    order = [f"{day.day:%b} {day.day.day}" for day in days]

    def height(nanos: int | None) -> float | None:
        # Float only as line height (chart geometry); tooltips carry the exact values as text.
        return None if nanos is None else nanos / NANOS_PER_CREDIT

    frame = pd.DataFrame(
        {
            "day": order,
            "actual": [height(d.actual_nanos) for d in days],
            "projected": [height(d.projected_nanos) for d in days],
            "low": [height(d.low_nanos) for d in days],
            "high": [height(d.high_nanos) for d in days],
            "actual_text": ["" if d.actual_nanos is None else format_credits(d.actual_nanos) for d in days],
            "projected_text": [
                "" if d.projected_nanos is None else format_credits(d.projected_nanos) for d in days
            ],
            "band_text": [
                ""
                if d.low_nanos is None or d.high_nanos is None
                else f"{format_credits(d.low_nanos)} – {format_credits(d.high_nanos)}"
                for d in days
            ],
        }
    )
    x = alt.X("day:O", sort=order, title=f"Day ({data.timezone})", axis=alt.Axis(labelAngle=0))
    y_title = "Cumulative spend (USD)"
    tooltip = [
        alt.Tooltip("day:N", title="Day"),
        alt.Tooltip("actual_text:N", title="Spent so far"),
        alt.Tooltip("projected_text:N", title="Projected"),
        alt.Tooltip("band_text:N", title=f"{projection.band_percent}% band"),
    ]
    band = (
        alt.Chart(frame)
        .mark_area(opacity=0.25, color="#4e79a7")
        .encode(
            x=x, y=alt.Y("low:Q", title=y_title, axis=alt.Axis(format="$,.2~f")), y2="high:Q", tooltip=tooltip
        )
    )
    actual = (
        alt.Chart(frame).mark_line(point=True, color="#2f4b7c").encode(x=x, y="actual:Q", tooltip=tooltip)
    )
    projected = (
        alt.Chart(frame)
        .mark_line(strokeDash=[6, 4], color="#4e79a7")
        .encode(x=x, y="projected:Q", tooltip=tooltip)
    )
    layers: list[alt.Chart] = [band, actual, projected]
    rules = []
    top = max(projection.high_nanos, projection.spent_nanos, 1)
    if data.balance_nanos > 0 and projection.spent_nanos + data.balance_nanos <= top * 3 // 2:
        # Spending past this line uses up today's balance: where the projection crosses it, credits run out.
        # Drawn only when it is near enough not to flatten the spend lines (the runway metric says it anyway).
        rules.append(
            (
                "Balance used up",
                projection.spent_nanos + data.balance_nanos,
                "#59a14f",
            )
        )
    cap = data.limits.account_cap
    if cap is not None and cap.limit_nanos <= top * 3:
        rules.append((f"Monthly cap ({cap.mode})", cap.limit_nanos, "#d62728"))
    if rules:
        rule_frame = pd.DataFrame(
            {
                "what": [what for what, _, _ in rules],
                "level": [nanos / NANOS_PER_CREDIT for _, nanos, _ in rules],
                "value": [format_credits(nanos) for _, nanos, _ in rules],
            }
        )
        layers.append(
            alt.Chart(rule_frame)
            .mark_rule(strokeDash=[2, 2], size=2)
            .encode(
                y="level:Q",
                color=alt.Color(
                    "what:N",
                    title="Lines",
                    scale=alt.Scale(
                        domain=[what for what, _, _ in rules], range=[color for _, _, color in rules]
                    ),
                    legend=alt.Legend(orient="bottom"),
                ),
                tooltip=[alt.Tooltip("what:N", title="Line"), alt.Tooltip("value:N", title="At")],
            )
        )
    return alt.layer(*layers).properties(height=320)


def scope_table(rows: tuple[ScopeProjection, ...], label: str, data: Overview, zone: str) -> None:
    so_far, last_day = period_words(data, zone)
    band = data.projection.band_percent
    st.dataframe(
        pd.DataFrame(
            {
                label: [row.name for row in rows],
                f"Spent {so_far}": [format_credits(row.spent_nanos) for row in rows],
                f"Projected by {last_day}": [format_credits(row.projected_nanos) for row in rows],
                f"{band}% band": [
                    f"{format_credits(row.low_nanos)} – {format_credits(row.high_nanos)}" for row in rows
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )


def limits_section(data: Overview, zone: str) -> None:
    st.subheader("Alerts and caps")
    limits = data.limits
    if not limits.alerts and not limits.caps:
        st.info(
            "No alert rules or spend caps yet. Set alerts (balance low, spend or projected spend above a "
            "budget, runway, spikes) on the **Alerts** page and monthly caps on the **Limits** page."
        )
        return
    firing = limits.firing
    for alert in firing:
        st.warning(
            f"Alert firing: **{literal(alert.name)}** — {literal(alert.condition)}.",
            icon=":material/notifications_active:",
        )
    quiet = len(limits.alerts) - len(firing)
    if limits.alerts:
        st.caption(
            f"{len(firing)} alert rule{'s' if len(firing) != 1 else ''} firing, {quiet} quiet or paused "
            "(see the Alerts page)."
        )
    if limits.caps:
        so_far, _ = period_words(data, zone)
        st.dataframe(
            pd.DataFrame(
                {
                    "Cap on": [cap.scope for cap in limits.caps],
                    "Kind": [
                        "Hard (requests refused)" if cap.mode == "hard" else "Soft (alerts)"
                        for cap in limits.caps
                    ],
                    "Monthly limit": [format_credits(cap.limit_nanos) for cap in limits.caps],
                    f"Spent {so_far}": [format_credits(cap.spent_nanos) for cap in limits.caps],
                    "State": ["Reached" if cap.reached else "Under the cap" for cap in limits.caps],
                }
            ),
            hide_index=True,
            width="stretch",
        )


def live_overview(ctx: PageContext) -> None:
    at = system_clock()
    try:
        data = read(ctx, lambda session, account: (account, overview(session, account.account_id, at=at)))
    except BillingError as error:
        show_error(error)
        return
    account, view = data
    zone = zone_abbreviation(view.timezone, at)
    as_of = f"as of {at.astimezone(UTC):%H:%M:%S} UTC"
    st.caption(live_caption(f"{literal(account.name)} · {as_of} · days and the period in {view.timezone}"))
    negative_balance(view)
    headline(view, zone)
    expiring_section(view)
    if not view.has_usage:
        st.info(EMPTY_STATE)
    else:
        so_far, last_day = period_words(view, zone)
        st.subheader(f"Spend this period: actual and projected to {last_day}")
        st.altair_chart(chart(view, zone), width="stretch")
        st.caption(
            f"Solid: spent so far ({so_far}). Dashed: projected, with its {view.projection.band_percent}% "
            "band (shaded). The projection reads your recent daily spend and its weekly pattern. "
            "The green line, when shown, is where today's balance would be used up."
        )
        st.markdown("**By project**")
        scope_table(view.by_project, "Project", view, zone)
        st.markdown("**By meter**")
        scope_table(view.by_meter, "Meter", view, zone)
        st.caption("Each project and meter is projected from its own daily spend: they need not add up.")
    limits_section(view, zone)


st.title("Overview")
context = page_context()
if context is None:
    st.stop()
stamp = data_stamp(context)  # before reading: a change meanwhile shows at the next check
live_overview(context)
watch_for_changes(context, stamp)
