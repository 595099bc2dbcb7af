"""Usage: live usage and spend for a range, by day or hour, stacked by meter, model, project or
API key, filtered by model, project and API key; spend or one meter's quantity.

The view lives in the address (``app/usage_view.py``), so it can be shared and bookmarked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from app.browser import typed_dates_apply_on_enter
from app.charts import SPEND as SPEND_METRIC
from app.charts import Metric, quantity_label, usage_chart
from app.history import arrived_by_history
from app.live import data_stamp, live_caption, watch_for_changes
from app.page import PageContext, page_context, read, show_error
from app.state import current_viewer
from app.usage_view import (
    GRANULARITIES,
    GROUP_WIDTH,
    PARAMS,
    PERIOD_WIDTH,
    SPEND,
    SPEND_WIDTH,
    UsageView,
    has_usage_params,
)
from app.user_text import literal
from core.accounts import AccountSummary
from core.clock import system_clock
from core.errors import BillingError
from core.money import format_credits, format_usd
from core.usage import (
    GROUP_BY,
    RANGE_PRESETS,
    DateRange,
    LateChange,
    SpendSummary,
    account_today,
    describe_dates,
    late_changes,
    preset_range,
    spend_summary,
    usage_csv,
    usage_frame,
    usage_totals,
)
from core.usage.exports import format_quantity, money_decimals, nanos_decimal, usage_table
from core.usage.ranges import MAX_RANGE_DAYS, zone_abbreviation
from core.usage.views import (
    FILTER_DIMENSIONS,
    MeterInUse,
    dimension_values,
    fold_into_other,
    last_usage_day,
    meters_used,
    rank_groups,
)

LATE_NOTE_DAYS = 7  # late arrivals of the last week are worth a note
TOP_GROUPS = 8  # groups drawn and totalled one by one; the rest are "Other"
VIEW_KEY = "usage.view"  # the last view shown (kept while other pages are open)
RANGE_KEY = "usage.range"
CUSTOM_KEY = "usage.custom"
GRANULARITY_KEY = "usage.granularity"
GROUP_KEY = "usage.group_by"
METRIC_KEY = "usage.metric"
FILTER_KEYS = {dimension: f"usage.filter.{dimension}" for dimension in FILTER_DIMENSIONS}
FILTER_LABELS = {"model": "Models", "project": "Projects", "api_key": "API keys"}
WIDGET_KEYS = (RANGE_KEY, CUSTOM_KEY, GRANULARITY_KEY, GROUP_KEY, METRIC_KEY, *FILTER_KEYS.values())


# --- the view: address ⇄ widgets -------------------------------------------------------------


def _params() -> dict[str, list[str]]:
    return {key: st.query_params.get_all(key) for key in st.query_params}


def _seed_widgets(view: UsageView, today: date) -> None:
    """Put ``view`` into the widgets' state (before they are drawn)."""
    st.session_state[RANGE_KEY] = view.preset
    st.session_state[CUSTOM_KEY] = view.custom or (today - timedelta(days=29), today)
    st.session_state[GRANULARITY_KEY] = view.buckets
    st.session_state[GROUP_KEY] = view.stack
    st.session_state[METRIC_KEY] = view.metric
    for dimension, key in FILTER_KEYS.items():
        st.session_state[key] = list(view.filters.get(dimension, ()))


def starting_view(today: date) -> None:
    """The view of this run: the address's on a first load (a shared link) and on Back or
    Forward, the last one shown when coming back from another page, else the defaults; widgets
    start from it."""
    params = _params()
    # Back or Forward to an address without a view shows the default view, not the last one.
    from_link = UsageView.from_params(params) if has_usage_params(params) or arrived_by_history() else None
    shown = st.session_state.get(VIEW_KEY)
    if from_link is not None and from_link != shown:
        _seed_widgets(from_link, today)
    elif any(key not in st.session_state for key in WIDGET_KEYS):
        _seed_widgets(shown if isinstance(shown, UsageView) else UsageView(), today)


def remember_view(view: UsageView) -> None:
    """Keep ``view`` for this session and write it into the address (no rerun)."""
    st.session_state[VIEW_KEY] = view
    wanted = view.to_params()
    current = _params()
    for key in PARAMS:
        value = wanted.get(key)
        listed = [value] if isinstance(value, str) else (value or [])
        if current.get(key, []) == listed:
            continue
        if listed:
            st.query_params[key] = listed if len(listed) > 1 or key in FILTER_DIMENSIONS else listed[0]
        else:
            del st.query_params[key]


def apply_view(view: UsageView) -> None:
    """Switch to ``view``: the callback of a button in the live part (the page then reruns whole)."""
    _seed_widgets(view, view.custom[1] if view.custom else system_clock().date())
    remember_view(view)


# --- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choices:
    """What the controls offer for the chosen range."""

    dates: DateRange
    meters: list[MeterInUse]
    values: dict[str, list[str]]


def choices(session: Session, account: AccountSummary, *, at: datetime, view: UsageView) -> Choices:
    dates = preset_range(view.preset, timezone=account.timezone, at=at, custom=view.custom)
    return Choices(
        dates,
        meters_used(session, account.account_id, start=dates.start, end=dates.end),
        dimension_values(session, account.account_id, start=dates.start, end=dates.end),
    )


@dataclass(frozen=True)
class UsageData:
    account: AccountSummary
    range: DateRange
    frame: pd.DataFrame
    summary: SpendSummary
    late: LateChange | None
    last_day: date | None  # the latest day with any usage (asked only when the range has none)


def load(session: Session, account: AccountSummary, *, at: datetime, view: UsageView) -> UsageData:
    dates = preset_range(view.preset, timezone=account.timezone, at=at, custom=view.custom)
    frame = usage_frame(
        session,
        account.account_id,
        start=dates.start,
        end=dates.end,
        granularity=view.buckets,  # type: ignore[arg-type]
        group_by=view.stack,  # type: ignore[arg-type]
        filters=view.active_filters(),
    )
    summary = spend_summary(session, account.account_id, at=at)
    late = late_changes(
        session,
        account.account_id,
        start=dates.start,
        end=dates.end,
        since=summary.today - timedelta(days=LATE_NOTE_DAYS - 1),
    )
    last_day = last_usage_day(session, account.account_id) if frame.empty else None
    return UsageData(account, dates, frame, summary, late, last_day)


# --- drawing ---------------------------------------------------------------------------------


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


def metrics(data: UsageData, *, filtered: bool) -> None:
    totals = usage_totals(data.frame)
    summary = data.summary
    tz = data.account.timezone
    zone = zone_abbreviation(tz, summary.as_of)
    first, second, third = st.columns(3)
    first.metric(
        f"Spent {data.range.describe(with_year=False, zone_label=zone)}" + (", filtered" if filtered else ""),
        format_usd(totals.amount_nanos),
        help=f"{format_credits(totals.amount_nanos)}; 1 credit = $1.00"
        + ("; only usage that matches the filters" if filtered else ""),
    )
    second.metric(
        f"Spent this period, {summary.period.describe(with_year=False, zone_label=zone)}",
        format_usd(summary.period_amount_nanos),
        help=f"{format_credits(summary.period_amount_nanos)}; all usage; the period is the month in {tz}",
    )
    third.metric(
        f"Spent today, {describe_dates(summary.today, summary.today).rsplit(',', 1)[0]} ({zone})",
        format_usd(summary.today_amount_nanos),
        help=f"{format_credits(summary.today_amount_nanos)}; all usage",
    )
    used = "".join(f" · {m.meter}: {format_quantity(m.quantity, m.unit)}" for m in totals.meters)
    st.caption(f"{data.range.describe()}: {totals.events:,} events{used}. Days are {tz} calendar days.")


def empty_state(data: UsageData, view: UsageView, metric: Metric) -> None:
    """No usage to show: say why in the customer's words, with the one click that shows some."""
    span = data.range.describe()
    if view.active_filters():
        st.info(f"No usage matches these filters in {span}.", icon=":material/filter_alt_off:")
        if st.button(
            "Clear the filters",
            key="usage.clear_filters",
            on_click=apply_view,
            args=(view.without_filters(),),
        ):
            st.rerun()
        return
    if not metric.is_spend:
        # The meter may be any name from a link (?metric=...): shown as text.
        what = literal(metric.label.split(" (")[0].lower())
        st.info(f"No {what} in {span}.", icon=":material/bar_chart_off:")
        if st.button(
            "Show spend on every meter",
            key="usage.show_spend",
            on_click=apply_view,
            args=(replace(view, metric=SPEND),),
        ):
            st.rerun()
        return
    if data.last_day is None:
        st.info(
            f"No usage yet for {literal(data.account.name)}. Usage shows here within seconds of your "
            "first API call, priced at your rates (see Prices).",
            icon=":material/hourglass_empty:",
        )
        return
    today = account_today(data.account.timezone, data.summary.as_of)
    ago = (today - data.last_day).days
    when = describe_dates(data.last_day, data.last_day)
    start = max(data.last_day - timedelta(days=29), today - timedelta(days=MAX_RANGE_DAYS - 1))
    if data.last_day < data.range.start:
        st.info(
            f"No usage in {span}. The last usage was on {when}, {ago} day{'s' if ago != 1 else ''} ago.",
            icon=":material/history:",
        )
        label = f"Show {describe_dates(start, data.last_day)}"
        last_days = replace(view, preset="custom", custom=(start, data.last_day))
        if st.button(label, key="usage.show_last", type="primary", on_click=apply_view, args=(last_days,)):
            st.rerun()
    else:
        st.info(f"No usage in {span}. The latest usage is on {when}.", icon=":material/history:")
        recent = replace(view, preset="30d", custom=None)
        if st.button(
            "Show the last 30 days",
            key="usage.show_recent",
            type="primary",
            on_click=apply_view,
            args=(recent,),
        ):
            st.rerun()


def money_column(
    label: str, amounts_nanos: pd.Series, help_text: str, *, width: int | None = None
) -> st.column_config.NumberColumn:
    decimals = money_decimals(amounts_nanos)
    return st.column_config.NumberColumn(label, format=f"$%,.{decimals}f", help=help_text, width=width)


def in_sentence(label: str) -> str:
    """ "Model" → "model", but "API key" stays "API key"."""
    return label if label[:2].isupper() else label.lower()


def totals_table(frame: pd.DataFrame, *, group_label: str, metric: Metric, range_text: str) -> None:
    """One row per group (the top ones, then "Other"), largest first."""
    st.subheader(f"Totals by {in_sentence(group_label)} — {range_text}")
    by = "amount_nanos" if metric.is_spend else "quantity"
    groups = rank_groups(frame, by=by)
    rows = []
    total_amount = int(frame["amount_nanos"].sum())
    for group in groups:
        part = frame[frame["group"] == group]
        amount = int(part["amount_nanos"].sum())
        per_meter = part.groupby(["meter", "unit"], sort=True)["quantity"].sum()
        rows.append(
            {
                group_label: group,
                "Spend": nanos_decimal(amount),
                # A percentage for a bar, not money: a float is fine here.
                "Share of spend": 100 * amount / total_amount if total_amount else 0.0,
                "Usage": " · ".join(
                    format_quantity(int(q), unit) if group_label == "Meter" else f"{meter}: {int(q):,}"
                    for (meter, unit), q in per_meter.items()
                ),
                "Events": int(part["events"].sum()),
            }
        )
    table = pd.DataFrame(rows)
    table["Events"] = table["Events"].astype("int64")
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "Spend": money_column(
                "Spend", frame.groupby("group")["amount_nanos"].sum(), "Exact values in the CSV"
            ),
            "Share of spend": st.column_config.ProgressColumn(
                "Share of spend", format="%.1f%%", min_value=0.0, max_value=100.0
            ),
            "Events": st.column_config.NumberColumn("Events", format="%,d"),
        },
        key="usage.totals",
    )


def detail_table(data: UsageData, *, view: UsageView, group_label: str) -> None:
    st.subheader(f"{GRANULARITIES[view.buckets]}, by {in_sentence(group_label)} — {data.range.describe()}")
    table = usage_table(data.frame, granularity=view.buckets, group_label=group_label)
    period = "Day" if view.buckets == "day" else "Hour"
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            period: st.column_config.TextColumn(
                period, help=f"In {data.account.timezone}", width=PERIOD_WIDTH[period]
            ),
            group_label: st.column_config.TextColumn(group_label, width=GROUP_WIDTH),
            "Quantity": st.column_config.NumberColumn("Quantity", format="%,d"),
            "Events": st.column_config.NumberColumn("Events", format="%,d"),
            "Spend": money_column(
                "Spend", data.frame["amount_nanos"], "Exact values in the CSV", width=SPEND_WIDTH
            ),
        },
        key="usage.detail",
    )
    st.download_button(
        "Download CSV (exact values)",
        usage_csv(data.frame, granularity=view.buckets, group_by=view.stack, timezone=data.account.timezone),
        file_name=f"usage_{data.account.account_id}_{data.range.start}_{data.range.end}_{view.buckets}.csv",
        mime="text/csv",
        key="usage.download",
    )


def live_usage(ctx: PageContext, view: UsageView, metric: Metric) -> None:
    at = system_clock()
    try:
        data = read(ctx, lambda session, account: load(session, account, at=at, view=view))
    except BillingError as error:
        show_error(error)
        return
    st.caption(live_caption(f"{literal(data.account.name)} · as of {at.astimezone(UTC):%H:%M:%S} UTC"))
    metrics(data, filtered=bool(view.active_filters()))
    if data.late is not None:
        st.info(late_note(data.late), icon=":material/update:")
    frame = data.frame if metric.is_spend else data.frame[data.frame["meter_key"] == metric.key]
    if frame.empty:
        empty_state(data, view, metric)
        return
    group_label = GROUP_BY[view.stack]
    ranked = rank_groups(frame, by="amount_nanos" if metric.is_spend else "quantity")
    shown = frame
    if len(ranked) > TOP_GROUPS + 1:  # "Other" stands for two groups at least
        rest = len(ranked) - TOP_GROUPS
        shown = fold_into_other(frame, ranked[:TOP_GROUPS], label=f"Other ({rest} more)")
    st.altair_chart(
        usage_chart(
            shown,
            dates=data.range,
            granularity=view.buckets,
            group_kind=view.stack,
            group_label=group_label,
            metric=metric,
        ),
        width="stretch",
    )
    totals_table(shown, group_label=group_label, metric=metric, range_text=data.range.describe())
    detail_table(replace(data, frame=frame), view=view, group_label=group_label)


# --- the page --------------------------------------------------------------------------------

st.title("Usage")
context = page_context()
if context is None:
    st.stop()
now = system_clock()
viewer = current_viewer()
shown_account = viewer.account(context.account_id) if viewer else None
today = account_today(shown_account.timezone if shown_account else "UTC", now)
starting_view(today)

custom = st.session_state.get(RANGE_KEY) == "custom"
row = st.columns([2, 3, 2, 2] if custom else [2, 2, 2])
row[0].selectbox("Range", list(RANGE_PRESETS), format_func=RANGE_PRESETS.__getitem__, key=RANGE_KEY)
custom_dates: tuple[date, date] | None = None
if custom:
    chosen = st.session_state.get(CUSTOM_KEY)
    earliest = today - timedelta(days=MAX_RANGE_DAYS - 1)
    if isinstance(chosen, tuple) and chosen:
        earliest = min(earliest, chosen[0])
    picked = row[1].date_input(
        "From – to (inclusive)",
        min_value=earliest,
        max_value=today + timedelta(days=1),
        key=CUSTOM_KEY,
        help=f"Type the dates and press Enter, or pick them; at most {MAX_RANGE_DAYS} days.",
    )
    if isinstance(picked, tuple) and len(picked) == 2:
        custom_dates = (picked[0], picked[1])
    with row[1]:
        typed_dates_apply_on_enter()
if custom and custom_dates is None:
    # Half picked (a start, no end yet): keep showing the last complete range meanwhile.
    row[1].caption("Pick an end date too.")
    shown_before = st.session_state.get(VIEW_KEY)
    previous = shown_before.custom if isinstance(shown_before, UsageView) else None
    custom_dates = previous or (today - timedelta(days=29), today)
if custom_dates is not None and (custom_dates[1] - custom_dates[0]).days + 1 > MAX_RANGE_DAYS:
    st.warning(
        f"Pick at most {MAX_RANGE_DAYS} days: the range was cut to the last {MAX_RANGE_DAYS} days of it."
    )
    custom_dates = (custom_dates[1] - timedelta(days=MAX_RANGE_DAYS - 1), custom_dates[1])

draft = UsageView(
    preset=st.session_state[RANGE_KEY],
    custom=custom_dates,
    buckets=st.session_state.get(GRANULARITY_KEY, "day"),
    stack=st.session_state.get(GROUP_KEY, "meter"),
    metric=st.session_state.get(METRIC_KEY, SPEND),
)
try:
    offered = read(context, lambda session, account: choices(session, account, at=now, view=draft))
except BillingError as error:
    show_error(error)
    st.stop()

row[-2].radio(
    "Buckets",
    list(GRANULARITIES),
    format_func=GRANULARITIES.__getitem__,
    horizontal=True,
    key=GRANULARITY_KEY,
)
metric_options = {SPEND: SPEND_METRIC}
for meter in offered.meters:
    metric_options[meter.name] = Metric(meter.name, quantity_label(meter.display, meter.unit), meter.unit)
if st.session_state.get(METRIC_KEY) not in metric_options:
    # A meter from a link with no usage in this range: keep it offered, the page says there is none.
    name = str(st.session_state.get(METRIC_KEY))
    metric_options[name] = Metric(name, quantity_label(name.replace("_", " ").capitalize(), "unit"), "unit")
row[-1].selectbox(
    "Show",
    list(metric_options),
    format_func=lambda key: metric_options[key].label,
    key=METRIC_KEY,
    help="Spend on every meter, or the quantity of one meter in its own unit.",
)

stack_col, *filter_cols = st.columns([2, 2, 2, 2])
stack_col.selectbox("Stack by", list(GROUP_BY), format_func=GROUP_BY.__getitem__, key=GROUP_KEY)
filters: dict[str, tuple[str, ...]] = {}
for column, (dimension, key) in zip(filter_cols, FILTER_KEYS.items(), strict=True):
    selected = [str(value) for value in st.session_state.get(key) or []]
    options = list(dict.fromkeys([*offered.values.get(dimension, []), *selected]))
    if not options:
        st.session_state[key] = []  # nothing of this kind in the range: no filter to offer
        continue
    column.multiselect(
        FILTER_LABELS[dimension],
        options,
        key=key,
        placeholder="All",
        help=f"Only usage of these {FILTER_LABELS[dimension].lower()} (none picked: all).",
    )
    filters[dimension] = tuple(st.session_state.get(key) or ())

view = UsageView(
    preset=draft.preset,
    custom=custom_dates,
    buckets=st.session_state[GRANULARITY_KEY],
    stack=st.session_state[GROUP_KEY],
    metric=st.session_state[METRIC_KEY],
    filters={dimension: values for dimension, values in filters.items() if values},
)
remember_view(view)
stamp = data_stamp(context)  # before reading: a change meanwhile shows at the next check
live_usage(context, view, metric_options[view.metric])
watch_for_changes(context, stamp)
