"""Overview: balance and runway, this period's spend and its projection, expiring credits, a negative
balance and what to do, alerts and caps: where a customer lands."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app.credits_table import credits_values, money_column, styled
from app.live import as_of, data_stamp, live_caption, watch_for_changes
from app.page import PageContext, page_context, read, show_error
from app.user_text import literal
from core.accounts import AccountSummary
from core.accounts.permissions import ALERTS_EDIT, CAPS_EDIT, CREDITS_BUY
from core.clock import system_clock
from core.display import (
    CREDIT_WORTH,
    credits_help,
    credits_number,
    format_credits,
    format_date,
    format_datetime,
    format_day_short,
)
from core.errors import BillingError
from core.money import NANOS_PER_CREDIT
from core.spend.caps import PERIOD_LABELS
from core.spend.overview import EXPIRING_WITHIN_DAYS, ChartDay, Overview, ScopeProjection, overview
from core.spend.runway import Runway
from core.usage.ranges import describe_dates, zone_abbreviation

EMPTY_STATE = (
    "No usage in the last weeks, so there is nothing to project yet. Send usage events to "
    "`POST /api/v1/events` with your server token (see the README): the projection appears once "
    "there is a day of spend, and learns your weekly pattern within a few weeks."
)
DORMANT_AFTER_DAYS = 14  # this long without usage: the Overview says so first
PAGES = Path(__file__).resolve().parent
BUY_CREDITS_PAGE = str(PAGES / "buy_credits.py")
USAGE_PAGE = str(PAGES / "usage.py")


def period_words(data: Overview, zone: str) -> tuple[str, str]:
    """("Nov 1–25, 2026 (PST)", "Nov 30, 2026"): the period so far, and its last day."""
    projection = data.projection
    so_far = f"{describe_dates(projection.period_start, projection.today)} ({zone})"
    return so_far, format_date(projection.period_end)


def negative_balance(data: Overview, may_buy: bool) -> None:
    """A negative balance in plain words: what is owed, that usage goes on, and what to do."""
    owed = data.owed_nanos
    if owed <= 0:
        return
    what_to_do = (
        "Buying credits pays this off first; what is left of the purchase becomes your balance."
        if may_buy
        else "An owner, admin or billing member of the account can buy credits: a purchase pays this "
        "off first, and what is left of it becomes the balance."
    )
    st.error(
        f"**You owe {format_credits(owed)}**: usage your credits did not cover. Your usage is still "
        f"recorded and charged to the account. {what_to_do}",
        icon=":material/error:",
    )
    if may_buy:
        st.page_link(BUY_CREDITS_PAGE, label="Buy credits to pay it off", icon=":material/add_card:")


def quiet_days(data: Overview) -> int | None:
    """Days since the last usage (None: never any)."""
    return None if data.last_usage_day is None else (data.today - data.last_usage_day).days


def is_dormant(data: Overview) -> bool:
    days = quiet_days(data)
    return days is not None and days >= DORMANT_AFTER_DAYS


def dormant_note(data: Overview) -> None:
    """An account with no usage for weeks: say it first, as the Usage page does, with the way there."""
    days = quiet_days(data)
    if days is None or not is_dormant(data) or data.last_usage_day is None:
        return
    balance = (
        f"your balance of {format_credits(data.balance_nanos)} stays as it is"
        if data.balance_nanos > 0
        else "your balance stays as it is"
    )
    expiring = " (except credits that expire: see below)" if data.expiring else ""
    st.info(
        f"**No usage for {days} days.** The last usage was on {format_date(data.last_usage_day)}. "
        f"Nothing is being spent, so {balance}{expiring}. New usage shows here within seconds of "
        "your next API call.",
        icon=":material/bedtime:",
    )
    st.page_link(USAGE_PAGE, label="See your past usage", icon=":material/bar_chart:")


def runway_value(runway: Runway) -> str:
    if runway.already_out:
        return "Ran out"
    if runway.runs_out_on is None:
        return f"More than {runway.horizon_days} days"
    return format_date(runway.runs_out_on)


def runway_sentence(data: Overview) -> str:
    """The runway in plain words: "At your current pace, your credits last until Jan 12, 2027 (36 days)." """
    runway = data.runway
    if runway.already_out:
        return "**Your credits have run out**: new usage makes the balance more negative."
    if data.projection.projected_nanos == data.projection.spent_nanos and is_dormant(data):
        return "**Nothing is being spent**, so your credits last as long as they do not expire."
    if runway.runs_out_on is None or runway.days is None:
        return f"At your current pace, **your credits last more than {runway.horizon_days} days**."
    if runway.days == 0:
        return "At your current pace, **your credits run out today**."
    days = f"{runway.days} day{'s' if runway.days != 1 else ''} from today"
    return f"At your current pace, **your credits last until {format_date(runway.runs_out_on)}** ({days})."


def projection_sentence(data: Overview) -> str:
    """The period's projection with its band, in words a glance takes in."""
    projection = data.projection
    rough = "" if projection.forecast.calibrated else " Little history yet: take the range as a rough guide."
    return (
        f"This month you will likely spend **{format_credits(projection.projected_nanos)}** by "
        f"{format_date(projection.period_end)}: {projection.band_percent}% likely between "
        f"**{format_credits(projection.low_nanos)}** and **{format_credits(projection.high_nanos)}**.{rough}"
    )


def headline(data: Overview, zone: str) -> None:
    projection = data.projection
    so_far, last_day = period_words(data, zone)
    balance_col, runway_col = st.columns(2)
    spent_col, projected_col = st.columns(2)
    balance_col.metric(
        f"Balance (as of {format_datetime(data.as_of, data.timezone)})",
        format_credits(data.balance_nanos),
        help=credits_help(data.balance_nanos) or CREDIT_WORTH,
    )
    runway = data.runway
    runway_col.metric(
        "At your current pace, credits last until",
        runway_value(runway),
        help=(
            f"The balance {runway.describe()}. Projected from your recent daily spend with its weekly "
            "pattern, burning grants in their order; credits that expire unused are not counted. "
            "Auto-recharge and future top-ups are not included."
        ),
    )
    spent_col.metric(
        f"Spent this period, {so_far}",
        format_credits(projection.spent_nanos),
        help=credits_help(projection.spent_nanos) or f"The period is the calendar month in {data.timezone}.",
    )
    projected_col.metric(
        f"Projected spend by {last_day} ({zone})",
        format_credits(projection.projected_nanos),
        help=(
            f"{projection.band_percent}% likely between {format_credits(projection.low_nanos)} and "
            f"{format_credits(projection.high_nanos)}. The last 7 days' average alone would say "
            f"{format_credits(projection.run_rate_nanos)}."
        ),
    )


def at_a_glance(data: Overview) -> None:
    """Runway, the projection's band and expiring credits, in normal-size text, one line each."""
    with st.container(border=True):
        st.markdown(f":material/hourglass_bottom: {runway_sentence(data)}")
        if data.has_usage and not is_dormant(data):
            st.markdown(f":material/trending_up: {projection_sentence(data)}")
        if not data.expiring:
            st.markdown(
                f":material/event_available: **No credits expire** in the next {EXPIRING_WITHIN_DAYS} days."
            )
    for credits in data.expiring:
        st.warning(credits.sentence(data.as_of, data.timezone), icon=":material/schedule:")


def chart(data: Overview, zone: str) -> alt.LayerChart:
    """Cumulative spend this period, the projection with its band, and where the balance runs out."""
    projection = data.projection
    days: tuple[ChartDay, ...] = data.chart
    order = [format_day_short(day.day) for day in days]

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
    y_title = "Cumulative spend (credits)"
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
            x=x, y=alt.Y("low:Q", title=y_title, axis=alt.Axis(format=",.2~f")), y2="high:Q", tooltip=tooltip
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
    """Per project or meter: the projection and its band first (a phone shows the first columns),
    the name pinned; the unit in the headers, numbers in the cells."""
    so_far, last_day = period_words(data, zone)
    band = data.projection.band_percent
    projected = "Projected (credits)"  # short: with the band beside it, both fit a phone
    band_label = f"{band}% band (credits)"
    spent = "Spent so far (credits)"
    frame = pd.DataFrame(
        {
            label: [row.name for row in rows],
            projected: credits_values(row.projected_nanos for row in rows),
            band_label: [
                f"{credits_number(row.low_nanos)} – {credits_number(row.high_nanos)}" for row in rows
            ],
            spent: credits_values(row.spent_nanos for row in rows),
        }
    )
    st.dataframe(
        styled(frame, credits=(projected, spent)),
        hide_index=True,
        width="stretch",
        column_config={
            label: st.column_config.TextColumn(label, pinned=True),
            projected: money_column(
                projected, help=f"Projected spend by {last_day} ({zone}), rounded to 2 decimals"
            ),
            band_label: st.column_config.TextColumn(
                band_label, help=f"{band}% likely between these two amounts by {last_day}"
            ),
            spent: money_column(spent, help=f"Spent {so_far}, rounded to 2 decimals"),
        },
    )


def limits_section(data: Overview, zone: str, *, may_edit: bool) -> None:
    st.subheader("Alerts and caps")
    limits = data.limits
    if not limits.alerts and not limits.caps:
        if may_edit:
            st.info(
                "No alert rules or spend caps yet. Set alerts (balance low, spend or projected spend above a "
                "budget, runway, spikes) on the **Alerts** page and caps on the **Limits** page."
            )
        else:
            st.info("No alert rules or spend caps yet. The account's owners and admins set them.")
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
        limit, spent = "Monthly limit (credits)", "Spent so far (credits)"
        frame = pd.DataFrame(
            {
                "Cap on": [
                    cap.scope if cap.period == "month" else f"{cap.scope} ({PERIOD_LABELS[cap.period]})"
                    for cap in limits.caps
                ],
                "State": ["Reached" if cap.reached else "Under the cap" for cap in limits.caps],
                spent: credits_values(cap.spent_nanos for cap in limits.caps),
                limit: credits_values(cap.limit_nanos for cap in limits.caps),
                "Kind": [
                    "Hard (requests refused)" if cap.mode == "hard" else "Soft (alerts)"
                    for cap in limits.caps
                ],
            }
        )
        st.dataframe(
            styled(frame, credits=(limit, spent)),
            hide_index=True,
            width="stretch",
            column_config={
                "Cap on": st.column_config.TextColumn("Cap on", pinned=True),
                spent: money_column(spent, help=f"Spent {so_far}, rounded to 2 decimals"),
                limit: money_column(limit),
            },
        )


def spend_section(view: Overview, zone: str) -> None:
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


def live_overview(ctx: PageContext) -> None:
    at = system_clock()
    try:
        data = read(ctx, lambda session, account: (account, overview(session, account.account_id, at=at)))
    except BillingError as error:
        show_error(error)
        return
    account, view = data
    draw(ctx, account, view)


def draw(ctx: PageContext, account: AccountSummary, view: Overview) -> None:
    zone = zone_abbreviation(view.timezone, view.as_of)
    when = as_of(view.as_of, view.timezone)
    st.caption(live_caption(f"{literal(account.name)} · {when} · days and the period in {view.timezone}"))
    negative_balance(view, ctx.may(account, CREDITS_BUY))
    dormant_note(view)
    headline(view, zone)
    at_a_glance(view)
    if not view.has_usage and not is_dormant(view):
        st.info(EMPTY_STATE)
    elif not is_dormant(view):
        spend_section(view, zone)
    limits_section(view, zone, may_edit=ctx.may(account, ALERTS_EDIT) or ctx.may(account, CAPS_EDIT))


st.title("Overview")
context = page_context()
if context is None:
    st.stop()
stamp = data_stamp(context)  # before reading: a change meanwhile shows at the next check
live_overview(context)
watch_for_changes(context, stamp)
