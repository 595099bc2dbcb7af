"""Usage: live usage and spend for a range, by day or hour, stacked by meter, model, project or
API key, filtered by model, project and API key; spend or one meter's quantity.

The view lives in the address (``app/usage_view.py``), so it can be shared and bookmarked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from app.browser import typed_dates_apply_on_enter
from app.charts import SPEND as SPEND_METRIC
from app.charts import Metric, quantity_label, usage_chart
from app.credits_table import money_column, styled
from app.focus_ui import focus_export
from app.history import arrived_by_history
from app.live import as_of, data_stamp, live_caption, watch_for_changes
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
    export_file_name,
    has_usage_params,
)
from app.user_text import literal
from core.accounts import AccountSummary
from core.clock import system_clock
from core.display import (
    CREDIT_WORTH,
    DATE_COLUMN_FORMAT,
    DATETIME_COLUMN_FORMAT_NO_ZONE,
    credits_help,
    format_credits,
)
from core.errors import BillingError
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
from core.usage.exports import format_quantity, nanos_decimal, usage_table
from core.usage.ranges import MAX_RANGE_DAYS, zone_abbreviation
from core.usage.views import (
    FILTER_DIMENSIONS,
    MeterInUse,
    dimension_values,
    fold_into_other,
    last_usage_day,
    meters_used,
    rank_groups,
    usage_export_frame,
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
    chart_frame: pd.DataFrame  # the chart's bars: ``frame``, or by hour for a one-day range
    chart_buckets: str


def chart_buckets(dates: DateRange, view: UsageView) -> str:
    """One day drawn by day is one fat bar: a one-day range is charted by hour (the tables keep
    the buckets picked)."""
    return "hour" if dates.days == 1 else view.buckets


def load(session: Session, account: AccountSummary, *, at: datetime, view: UsageView) -> UsageData:
    dates = preset_range(view.preset, timezone=account.timezone, at=at, custom=view.custom)

    def frame_by(buckets: str) -> pd.DataFrame:
        return usage_frame(
            session,
            account.account_id,
            start=dates.start,
            end=dates.end,
            granularity=buckets,  # type: ignore[arg-type]
            group_by=view.stack,  # type: ignore[arg-type]
            filters=view.active_filters(),
        )

    frame = frame_by(view.buckets)
    charted = chart_buckets(dates, view)
    chart_frame = frame if charted == view.buckets else frame_by(charted)
    summary = spend_summary(session, account.account_id, at=at)
    late = late_changes(
        session,
        account.account_id,
        start=dates.start,
        end=dates.end,
        since=summary.today - timedelta(days=LATE_NOTE_DAYS - 1),
    )
    last_day = last_usage_day(session, account.account_id) if frame.empty else None
    return UsageData(account, dates, frame, summary, late, last_day, chart_frame, charted)


def export_frame(ctx: PageContext, dates: DateRange, view: UsageView) -> pd.DataFrame:
    """The rows of the view's CSV: every dimension as a column, the view's filters and meter applied."""
    frame = read(
        ctx,
        lambda session, account: usage_export_frame(
            session,
            account.account_id,
            start=dates.start,
            end=dates.end,
            granularity=view.buckets,  # type: ignore[arg-type]
            filters=view.active_filters(),
        ),
    )
    return frame if view.metric == SPEND else frame[frame["meter_key"] == view.metric]


# --- drawing ---------------------------------------------------------------------------------


def late_note(late: LateChange, *, narrowed: bool = False) -> str:
    """Say plainly that past numbers changed, which days, by how much, and why; when the view is
    narrowed (filters, one meter) say that the note counts the whole account (late arrivals are
    kept per account and day, not per model, project or key)."""
    events = f"{late.events:,} late event{'s' if late.events != 1 else ''}"
    days = describe_dates(late.first_day, late.last_day)
    if late.days_changed > 1:
        days = f"{late.days_changed} days between {days}"
    ended = "that day" if late.days_changed == 1 else "those days"
    received = describe_dates(late.last_received, late.last_received)
    whole = " in the whole account, not only the usage shown" if narrowed else ""
    return (
        f"Past numbers changed{whole}: {events} for {days} ({format_credits(late.amount_nanos)}) arrived "
        f"after {ended} ended, most recently on {received}. Each is counted on the day it happened, "
        "priced at the rate in force then."
    )


def amount_help(nanos: int, what: str) -> str:
    """A metric's tooltip: what it counts, and every digit when two decimals hide some."""
    exact = credits_help(nanos)
    return f"{what.capitalize()}; {CREDIT_WORTH}" + (f". {exact}" if exact else "")


def metrics(data: UsageData, *, filtered: bool) -> None:
    totals = usage_totals(data.frame)
    summary = data.summary
    tz = data.account.timezone
    zone = zone_abbreviation(tz, summary.as_of)
    first, second, third = st.columns(3)
    first.metric(
        f"Spent {data.range.describe(with_year=False, zone_label=zone)}" + (", filtered" if filtered else ""),
        format_credits(totals.amount_nanos),
        help=amount_help(
            totals.amount_nanos, "only usage that matches the filters" if filtered else "all usage"
        ),
    )
    second.metric(
        f"Spent this period, {summary.period.describe(with_year=False, zone_label=zone)}",
        format_credits(summary.period_amount_nanos),
        help=amount_help(summary.period_amount_nanos, f"all usage; the period is the month in {tz}"),
    )
    third.metric(
        f"Spent today, {describe_dates(summary.today, summary.today).rsplit(',', 1)[0]} ({zone})",
        format_credits(summary.today_amount_nanos),
        help=amount_help(summary.today_amount_nanos, "all usage"),
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


SPEND_HEADER = "Spend (credits)"
# "Dec 7, 2026", "Dec 7, 2026, 14:00" (the zone in the column's help)
PERIOD_FORMAT = {"Day": DATE_COLUMN_FORMAT, "Hour": DATETIME_COLUMN_FORMAT_NO_ZONE}
SPEND_HELP = f"Two decimals; the CSV has every digit. {CREDIT_WORTH}."


def in_sentence(label: str) -> str:
    """ "Model" → "model", but "API key" stays "API key"."""
    return label if label[:2].isupper() else label.lower()


def usage_text(per_meter: pd.Series, *, shared_units: set[str], by_meter: bool) -> str:
    """A group's usage, short: "2,000,000 tokens · 300 requests"; a unit two meters share names the
    meter instead ("1,000 input tokens · 400 output tokens")."""
    parts = []
    for (meter, unit), quantity in per_meter.items():
        if by_meter or unit not in shared_units:
            parts.append(format_quantity(int(quantity), unit))
        else:
            parts.append(f"{int(quantity):,} {in_sentence(meter)}")
    return " · ".join(parts)


def totals_table(frame: pd.DataFrame, *, group_label: str, metric: Metric, range_text: str) -> None:
    """One row per group (the top ones, then "Other"), largest first."""
    st.subheader(f"Totals by {in_sentence(group_label)} — {range_text}")
    by = "amount_nanos" if metric.is_spend else "quantity"
    groups = rank_groups(frame, by=by)
    meters_per_unit = frame.groupby("unit")["meter"].nunique()
    shared_units = {str(unit) for unit, count in meters_per_unit.items() if count > 1}
    rows = []
    total_amount = int(frame["amount_nanos"].sum())
    for group in groups:
        part = frame[frame["group"] == group]
        amount = int(part["amount_nanos"].sum())
        per_meter = part.groupby(["meter", "unit"], sort=True)["quantity"].sum()
        rows.append(
            {
                group_label: group,
                SPEND_HEADER: nanos_decimal(amount),
                # A percentage for a bar, not money: a float is fine here.
                "Share of spend": 100 * amount / total_amount if total_amount else 0.0,
                "Events": int(part["events"].sum()),
                "Usage": usage_text(per_meter, shared_units=shared_units, by_meter=group_label == "Meter"),
            }
        )
    table = pd.DataFrame(rows)
    table["Events"] = table["Events"].astype("int64")
    st.dataframe(
        styled(table, credits=[SPEND_HEADER]),
        hide_index=True,
        width="stretch",
        column_config={
            group_label: st.column_config.TextColumn(group_label, width=GROUP_WIDTH, pinned=True),
            SPEND_HEADER: money_column(SPEND_HEADER, help=SPEND_HELP, width=SPEND_WIDTH),
            "Share of spend": st.column_config.ProgressColumn(
                "Share of spend", format="%.1f%%", min_value=0.0, max_value=100.0
            ),
            "Events": st.column_config.NumberColumn("Events", format="%,d"),
            "Usage": st.column_config.TextColumn("Usage", width="large", help="Quantity of each meter"),
        },
        key="usage.totals",
    )


def detail_table(ctx: PageContext, data: UsageData, *, view: UsageView, group_label: str) -> None:
    st.subheader(f"{GRANULARITIES[view.buckets]}, by {in_sentence(group_label)} — {data.range.describe()}")
    table = usage_table(data.frame, granularity=view.buckets, group_label=group_label)
    table = table.rename(columns={"Spend": SPEND_HEADER})
    period = "Day" if view.buckets == "day" else "Hour"
    # Dates as dates (they sort as dates), shown as docs/money.md writes them: "Dec 7, 2026".
    table[period] = pd.to_datetime(table[period])
    st.dataframe(
        styled(table, credits=[SPEND_HEADER]),
        hide_index=True,
        width="stretch",
        column_config={
            period: (st.column_config.DateColumn if period == "Day" else st.column_config.DatetimeColumn)(
                period,
                format=PERIOD_FORMAT[period],
                help=f"In {data.account.timezone}",
                width=PERIOD_WIDTH[period],
                pinned=True,
            ),
            group_label: st.column_config.TextColumn(group_label, width=GROUP_WIDTH, pinned=True),
            "Quantity": st.column_config.NumberColumn("Quantity", format="%,d"),
            "Events": st.column_config.NumberColumn("Events", format="%,d"),
            SPEND_HEADER: money_column(SPEND_HEADER, help=SPEND_HELP, width=SPEND_WIDTH),
        },
        key="usage.detail",
    )
    file_name = export_file_name(data.account.name, data.range, view)
    st.download_button(
        "Download CSV (exact values)",
        lambda: usage_csv(
            export_frame(ctx, data.range, view), granularity=view.buckets, timezone=data.account.timezone
        ),
        file_name=file_name,
        mime="text/csv",
        key="usage.download",
        help=f"Saves {file_name}: one row per {view.buckets}, meter, model, project and API key "
        "(the filters above applied), with every digit of each amount.",
    )


def live_usage(ctx: PageContext, view: UsageView, metric: Metric) -> None:
    at = system_clock()
    try:
        data = read(ctx, lambda session, account: load(session, account, at=at, view=view))
    except BillingError as error:
        show_error(error)
        return
    st.caption(live_caption(f"{literal(data.account.name)} · {as_of(at, data.account.timezone)}"))
    metrics(data, filtered=bool(view.active_filters()))
    if data.late is not None:
        narrowed = bool(view.active_filters()) or not metric.is_spend
        st.info(late_note(data.late, narrowed=narrowed), icon=":material/update:")

    def measured(frame: pd.DataFrame) -> pd.DataFrame:
        return frame if metric.is_spend else frame[frame["meter_key"] == metric.key]

    frame = measured(data.frame)
    if frame.empty:
        empty_state(data, view, metric)
        return
    group_label = GROUP_BY[view.stack]
    ranked = rank_groups(frame, by="amount_nanos" if metric.is_spend else "quantity")
    shown, charted = frame, measured(data.chart_frame)
    if len(ranked) > TOP_GROUPS + 1:  # "Other" stands for two groups at least
        label = f"Other ({len(ranked) - TOP_GROUPS} more)"
        shown = fold_into_other(frame, ranked[:TOP_GROUPS], label=label)
        charted = fold_into_other(charted, ranked[:TOP_GROUPS], label=label)
    st.altair_chart(
        usage_chart(
            charted,
            dates=data.range,
            granularity=data.chart_buckets,
            group_kind=view.stack,
            group_label=group_label,
            metric=metric,
        ),
        width="stretch",
    )
    if data.chart_buckets != view.buckets:
        st.caption("One day: the chart shows its hours; the tables below keep the day.")
    totals_table(shown, group_label=group_label, metric=metric, range_text=data.range.describe())
    detail_table(ctx, replace(data, frame=frame), view=view, group_label=group_label)


def view_summary(view: UsageView, metric: Metric) -> str:
    """The view button's words: what is shown without opening it ("By day · by meter · spend")."""
    what = "spend" if metric.is_spend else metric.label.split(" (")[0]
    return f"{GRANULARITIES[view.buckets]} · by {in_sentence(GROUP_BY[view.stack])} · {what}"


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
# Range first; the view's other choices and the filters fold into two buttons, so that on a phone
# (where columns stack) the numbers are on the first screen.
row = st.columns([2, 3, 2, 2] if custom else [2, 2, 2], vertical_alignment="bottom")
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

metric_options = {SPEND: SPEND_METRIC}
for meter in offered.meters:
    metric_options[meter.name] = Metric(meter.name, quantity_label(meter.display, meter.unit), meter.unit)
if st.session_state.get(METRIC_KEY) not in metric_options:
    # A meter from a link with no usage in this range: keep it offered, the page says there is none.
    name = str(st.session_state.get(METRIC_KEY))
    metric_options[name] = Metric(name, quantity_label(name.replace("_", " ").capitalize(), "unit"), "unit")

with row[-2].popover(
    view_summary(draft, metric_options[draft.metric]),
    icon=":material/tune:",
    width="stretch",
    key="usage.view_options",
    help="Buckets, what the bars measure and what they are stacked by.",
):
    st.radio(
        "Buckets",
        list(GRANULARITIES),
        format_func=GRANULARITIES.__getitem__,
        horizontal=True,
        key=GRANULARITY_KEY,
    )
    st.selectbox(
        "Show",
        list(metric_options),
        format_func=lambda key: metric_options[key].label,
        key=METRIC_KEY,
        help="Spend on every meter, or the quantity of one meter in its own unit.",
    )
    st.selectbox("Stack by", list(GROUP_BY), format_func=GROUP_BY.__getitem__, key=GROUP_KEY)

filter_options: dict[str, list[str]] = {}
for dimension, key in FILTER_KEYS.items():
    selected = [str(value) for value in st.session_state.get(key) or []]
    options = list(dict.fromkeys([*offered.values.get(dimension, []), *selected]))
    if options:
        filter_options[dimension] = options
    else:
        st.session_state[key] = []  # nothing of this kind in the range: no filter to offer
active = sum(1 for dimension in filter_options if st.session_state.get(FILTER_KEYS[dimension]))
filters: dict[str, tuple[str, ...]] = {}
with row[-1].popover(
    f"Filters · {active} active" if active else "Filters",
    icon=":material/filter_alt:",
    type="primary" if active else "secondary",
    width="stretch",
    key="usage.filters",
    help="Only usage of some models, projects or API keys.",
):
    if not filter_options:
        st.caption("Nothing to filter by in this range.")
    for dimension, options in filter_options.items():
        key = FILTER_KEYS[dimension]
        st.multiselect(
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
focus_export(context)
watch_for_changes(context, stamp)
