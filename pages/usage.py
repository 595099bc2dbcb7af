"""Usage: live usage and spend for a range, by day or hour, stacked by meter, model, project or API key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from app.page import PageContext, page_context, read, show_error
from core.accounts import AccountSummary
from core.clock import system_clock
from core.errors import BillingError
from core.money import NANOS_PER_CREDIT, format_credits, format_usd
from core.usage import (
    GROUP_BY,
    RANGE_PRESETS,
    DateRange,
    LateChange,
    SpendSummary,
    describe_dates,
    late_changes,
    preset_range,
    spend_summary,
    usage_csv,
    usage_frame,
    usage_totals,
)
from core.usage.exports import format_quantity, usage_table
from core.usage.ranges import zone_abbreviation

REFRESH_SECONDS = 5
LATE_NOTE_DAYS = 7  # late arrivals of the last week are worth a note
RANGE_KEY = "usage.range"
CUSTOM_KEY = "usage.custom"
GRANULARITY_KEY = "usage.granularity"
GROUP_KEY = "usage.group_by"
GRANULARITIES = {"day": "By day", "hour": "By hour"}
EMPTY_STATE = (
    "No usage in this range yet — send events to `POST /api/v1/events` with your server token "
    "(see the README) and they show up here within seconds, or pick a longer range."
)


@dataclass(frozen=True)
class UsageData:
    account: AccountSummary
    range: DateRange
    frame: pd.DataFrame
    summary: SpendSummary
    late: LateChange | None


def load(
    session: Session,
    account: AccountSummary,
    *,
    at: datetime,
    preset: str,
    custom: tuple[date, date] | None,
    granularity: str,
    group_by: str,
) -> UsageData:
    dates = preset_range(preset, timezone=account.timezone, at=at, custom=custom)
    frame = usage_frame(
        session,
        account.account_id,
        start=dates.start,
        end=dates.end,
        granularity=granularity,  # type: ignore[arg-type]
        group_by=group_by,  # type: ignore[arg-type]
    )
    summary = spend_summary(session, account.account_id, at=at)
    late = late_changes(
        session,
        account.account_id,
        start=dates.start,
        end=dates.end,
        since=summary.today - timedelta(days=LATE_NOTE_DAYS - 1),
    )
    return UsageData(account, dates, frame, summary, late)


def late_note(late: LateChange) -> str:
    """Say plainly that past numbers changed, which days, by how much, and why."""
    events = f"{late.events:,} late event{'s' if late.events != 1 else ''}"
    days = describe_dates(late.first_day, late.last_day)
    if late.days_changed > 1:
        days = f"{late.days_changed} days between {days}"
    ended = "that day" if late.days_changed == 1 else "those days"
    received = describe_dates(late.last_received, late.last_received)
    return (
        f"Past numbers changed: {events} for {days} ({format_usd(late.amount_nanos)}) arrived after "
        f"{ended} ended, most recently on {received}. Each is counted on the day it happened, "
        "priced at the rate in force then."
    )


def chart(frame: pd.DataFrame, dates: DateRange, granularity: str, group_by: str) -> alt.Chart:
    """Stacked bars of spend per bucket and group; tooltips carry exact, formatted values."""
    # One pass over plain tuples (a pandas groupby-apply per bar took seconds at 90 days by hour).
    bars: dict[tuple[pd.Timestamp, str], list] = {}
    for bucket, group, unit, quantity, amount_nanos, events in frame[
        ["bucket", "group", "unit", "quantity", "amount_nanos", "events"]
    ].itertuples(index=False, name=None):
        bar = bars.get((bucket, group))
        if bar is None:
            bar = bars[(bucket, group)] = [0, 0, []]
        bar[0] += int(amount_nanos)
        bar[1] += int(events)
        if quantity:
            bar[2].append(format_quantity(int(quantity), unit))
    when_format = "%a %b %d, %Y" if granularity == "day" else "%a %b %d, %H:00"
    rows = [
        {
            "bucket": bucket,
            "group": group,
            # Float only as bar height (chart geometry); every number a person reads is exact text.
            "height_usd": amount_nanos / NANOS_PER_CREDIT,
            "when": bucket.strftime(when_format),
            "spend": f"{format_usd(amount_nanos)} ({format_credits(amount_nanos)})",
            "quantity": ", ".join(quantities),
            "events": f"{events:,}",
        }
        for (bucket, group), (amount_nanos, events, quantities) in sorted(bars.items())
    ]
    data = pd.DataFrame(rows)
    time_unit = "yearmonthdate" if granularity == "day" else "yearmonthdatehours"
    label = GROUP_BY[group_by]
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(
                f"{time_unit}(bucket):T",
                title=f"{'Day' if granularity == 'day' else 'Hour'} ({dates.timezone})",
                # The whole chosen range, so quiet days read as zero rather than vanish.
                scale=alt.Scale(
                    domain=[dates.start.isoformat(), (dates.end + timedelta(days=1)).isoformat()]
                ),
            ),
            y=alt.Y("height_usd:Q", stack="zero", title="Spend (USD)"),
            color=alt.Color("group:N", title=label),
            tooltip=[
                alt.Tooltip("when:N", title="When"),
                alt.Tooltip("group:N", title=label),
                alt.Tooltip("spend:N", title="Spend"),
                alt.Tooltip("quantity:N", title="Usage"),
                alt.Tooltip("events:N", title="Events"),
            ],
        )
        .properties(height=340)
    )


def metrics(data: UsageData) -> None:
    totals = usage_totals(data.frame)
    summary = data.summary
    tz = data.account.timezone
    zone = zone_abbreviation(tz, summary.as_of)
    first, second, third = st.columns(3)
    first.metric(
        f"Spent {data.range.describe(with_year=False, zone_label=zone)}",
        format_usd(totals.amount_nanos),
        help=f"{format_credits(totals.amount_nanos)}; 1 credit = $1.00",
    )
    second.metric(
        f"Spent this period, {summary.period.describe(with_year=False, zone_label=zone)}",
        format_usd(summary.period_amount_nanos),
        help=f"{format_credits(summary.period_amount_nanos)}; the period is the calendar month in {tz}",
    )
    third.metric(
        f"Spent today, {describe_dates(summary.today, summary.today).rsplit(',', 1)[0]} ({zone})",
        format_usd(summary.today_amount_nanos),
        help=format_credits(summary.today_amount_nanos),
    )
    used = "".join(f" · {m.meter}: {format_quantity(m.quantity, m.unit)}" for m in totals.meters)
    st.caption(f"{data.range.describe()}: {totals.events:,} events{used}. Days are {tz} calendar days.")


@st.fragment(run_every=timedelta(seconds=REFRESH_SECONDS))
def live_usage(
    ctx: PageContext, preset: str, custom: tuple[date, date] | None, granularity: str, group_by: str
) -> None:
    at = system_clock()
    try:
        data = read(
            ctx,
            lambda session, account: load(
                session,
                account,
                at=at,
                preset=preset,
                custom=custom,
                granularity=granularity,
                group_by=group_by,
            ),
        )
    except BillingError as error:
        show_error(error)
        return
    st.caption(
        f"{data.account.name} · as of {at.astimezone(UTC):%H:%M:%S} UTC · refreshes every {REFRESH_SECONDS} s"
    )
    metrics(data)
    if data.late is not None:
        st.info(late_note(data.late), icon=":material/update:")
    if data.frame.empty:
        st.info(EMPTY_STATE)
        return
    st.altair_chart(chart(data.frame, data.range, granularity, group_by), width="stretch")
    group_label = GROUP_BY[group_by]
    st.subheader(f"{GRANULARITIES[granularity]}, by {group_label.lower()} — {data.range.describe()}")
    st.dataframe(
        usage_table(data.frame, granularity=granularity, group_label=group_label),
        hide_index=True,
        width="stretch",
    )
    st.download_button(
        "Download CSV (exact values)",
        usage_csv(data.frame, granularity=granularity, group_by=group_by, timezone=data.account.timezone),
        file_name=f"usage_{data.account.account_id}_{data.range.start}_{data.range.end}_{granularity}.csv",
        mime="text/csv",
        key="usage.download",
    )


st.title("Usage")
context = page_context()
if context is None:
    st.stop()

range_col, custom_col, granularity_col, group_col = st.columns([2, 3, 2, 2])
preset_choice = range_col.selectbox(
    "Range", list(RANGE_PRESETS), index=2, format_func=RANGE_PRESETS.__getitem__, key=RANGE_KEY
)
custom_dates: tuple[date, date] | None = None
if preset_choice == "custom":
    today_utc = system_clock().date()
    picked = custom_col.date_input(
        "From – to (inclusive)", value=(today_utc - timedelta(days=29), today_utc), key=CUSTOM_KEY
    )
    if isinstance(picked, tuple) and len(picked) == 2:
        custom_dates = (picked[0], picked[1])
    else:
        custom_col.caption("Pick an end date too.")
granularity_choice = granularity_col.radio(
    "Buckets",
    list(GRANULARITIES),
    format_func=GRANULARITIES.__getitem__,
    horizontal=True,
    key=GRANULARITY_KEY,
)
group_choice = group_col.selectbox(
    "Stack by", list(GROUP_BY), format_func=GROUP_BY.__getitem__, key=GROUP_KEY
)

if preset_choice == "custom" and custom_dates is None:
    st.info("Pick a start and an end date to see usage for a custom range.")
else:
    live_usage(context, preset_choice, custom_dates, granularity_choice, group_choice)
