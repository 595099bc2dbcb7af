"""Balance & credits: the live balance, open grants, the balance over time, the ledger by event,
monthly statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from app.charts import ALARM_COLOR, PALETTE
from app.credits_table import credits_values, money_column, styled
from app.live import as_of, data_stamp, live_caption, watch_for_changes
from app.page import PageContext, page_context, read, show_error
from app.statements_ui import statements_section
from app.user_text import literal
from core.accounts import AccountSummary
from core.accounts.permissions import CREDITS_BUY
from core.clock import system_clock
from core.display import (
    CREDIT_WORTH,
    DATETIME_COLUMN_FORMAT,
    credits_help,
    format_credits,
    format_date,
    format_datetime,
    zone_note,
)
from core.errors import BillingError
from core.ledger import BalanceView, LedgerLine, balance_view, ledger_view
from core.ledger.events import LedgerEvent, ledger_events
from core.ledger.reasons import GRANT_ISSUED, SOURCE_LABELS
from core.ledger.service import GrantView
from core.money import NANOS_PER_CREDIT
from core.usage import SpendSummary, ledger_csv, spend_summary
from core.usage.ranges import zone_abbreviation

EXPIRY_WARNING_DAYS = 14
LEDGER_LIMIT = 5_000
HISTORY_DAYS = 90
BUY_CREDITS_PAGE = str(Path(__file__).resolve().with_name("buy_credits.py"))
LEDGER_KEY = "balance.ledger"


@dataclass(frozen=True)
class BalanceData:
    account: AccountSummary
    balance: BalanceView
    ledger: list[LedgerLine]
    spend: SpendSummary


def load(session: Session, account: AccountSummary, *, at: datetime) -> BalanceData:
    return BalanceData(
        account,
        balance_view(session, account.account_id, at=at),
        ledger_view(session, account.account_id, limit=LEDGER_LIMIT),
        spend_summary(session, account.account_id, at=at),
    )


def expiry_text(grant: GrantView, at: datetime, timezone: str) -> str:
    if grant.expires_at is None:
        return "Never"
    days = (grant.expires_at - at).days
    when = format_date(grant.expires_at.astimezone(ZoneInfo(timezone)).date())
    if days < 1:
        return f"{when} · within a day"
    return f"{when} · in {days} day{'s' if days != 1 else ''}"


def expiring_soon(data: BalanceData, at: datetime) -> list[GrantView]:
    return [
        g
        for g in data.balance.grants
        if g.expires_at is not None and (g.expires_at - at).days < EXPIRY_WARNING_DAYS
    ]


def headline(data: BalanceData, at: datetime) -> None:
    """The balance once, in credits; beside it what moves it. (Burn rate and days left, from the
    spend-control work, belong in these columns too.)"""
    balance = data.balance
    tz = data.account.timezone
    first, second, third = st.columns(3)
    exact = credits_help(balance.balance_nanos)
    first.metric(
        f"Balance, as of {format_datetime(at, tz)}",
        format_credits(balance.balance_nanos),
        help=f"{exact + '. ' if exact else ''}{CREDIT_WORTH}. "
        "Live: updates by itself when usage or credits arrive.",
    )
    summary = data.spend
    second.metric(
        f"Used this period, {summary.period.describe(with_year=False, zone_label=zone_abbreviation(tz, at))}",
        format_credits(summary.period_amount_nanos),
        help=credits_help(summary.period_amount_nanos)
        or "Usage charged to the balance since the start of the calendar month.",
    )
    soon = expiring_soon(data, at)
    expiring = sum(g.remaining_nanos for g in soon)
    third.metric(
        f"Expiring within {EXPIRY_WARNING_DAYS} days",
        format_credits(expiring) if soon else "None",
        help="Credits of grants that expire soon: usage burns them first, what is left then is lost.",
    )


def owed_warning(data: BalanceData, *, may_buy: bool) -> None:
    """A negative balance in plain words: how much is owed and what pays it off."""
    balance = data.balance
    if balance.balance_nanos >= 0 and balance.deficit_nanos >= 0:
        return
    owed = -min(balance.balance_nanos, balance.deficit_nanos)
    who = "" if may_buy else " (by an owner, admin or billing member)"
    st.warning(
        f"**You owe {format_credits(owed)}**: usage your credits did not cover. Usage is still recorded "
        f"and charged to the account. The next purchase of credits{who}, or a grant from your account "
        "manager, pays this off first.",
        icon=":material/error:",
    )


def buy_credits_button() -> None:
    """The way to the Buy credits page (top up now, or set up auto-recharge): for those who may buy."""
    if st.button("Buy credits", icon=":material/add_card:", type="primary", key="balance.buy"):
        st.switch_page(BUY_CREDITS_PAGE)


def grants_section(data: BalanceData, at: datetime, *, may_buy: bool) -> None:
    st.subheader("Open credit grants")
    grants = data.balance.grants
    if not grants:
        how = "Buy credits" if may_buy else "An owner, admin or billing member can buy credits"
        st.info(
            f"No open credit grants: every grant is spent or has expired. {how}, or ask your account "
            "manager for a grant, to keep usage covered."
        )
        return
    tz = data.account.timezone
    for grant in expiring_soon(data, at):
        st.warning(
            f"{format_credits(grant.remaining_nanos)} of {SOURCE_LABELS.get(grant.source, grant.source)} "
            f"credits (grant #{grant.grant_id}) expire on {format_datetime(grant.expires_at, tz)} "  # type: ignore[arg-type]
            "— they are used first, but what is left then is lost.",
            icon=":material/schedule:",
        )
    # Remaining and expiry first: on a phone the first columns are the ones on screen.
    table = pd.DataFrame(
        {
            "Grant": [f"#{g.grant_id}" for g in grants],
            "Remaining (credits)": credits_values(g.remaining_nanos for g in grants),
            "Expires": [expiry_text(g, at, tz) for g in grants],
            "Source": [SOURCE_LABELS.get(g.source, g.source) for g in grants],
            "Description": [g.description for g in grants],
            "Original (credits)": credits_values(g.amount_nanos for g in grants),
            "Added": pd.to_datetime(pd.Series([g.effective_at for g in grants], dtype="object"), utc=True),
        }
    )
    st.caption(
        f"In the order usage burns them: priority, then soonest expiry, then oldest. {zone_note(tz, at)}."
    )
    st.dataframe(
        styled(table, credits=("Remaining (credits)", "Original (credits)")),
        hide_index=True,
        width="stretch",
        key="balance.grants",
        column_config={
            "Grant": st.column_config.TextColumn("Grant", pinned=True),
            "Remaining (credits)": money_column("Remaining (credits)"),
            "Original (credits)": money_column("Original (credits)"),
            "Added": when_column(tz, "Added"),
        },
    )


def history_points(
    lines: list[LedgerLine], *, at: datetime, days: int
) -> tuple[datetime, list[tuple[datetime, int, str, bool]]]:
    """(start, points): the balance after each entry in the window, from the balance it had when
    the window opened to the balance now, so the line spans the whole window."""
    ordered = sorted(lines, key=lambda line: line.entry_id)
    start = at - timedelta(days=days)
    before = [line for line in ordered if line.effective_at < start]
    inside = [line for line in ordered if line.effective_at >= start]
    points: list[tuple[datetime, int, str, bool]] = []
    if before:
        points.append((start, before[-1].balance_after_nanos, "Balance then", False))
    elif inside:
        start = inside[0].effective_at
    points += [
        (line.effective_at, line.balance_after_nanos, line.reason_label, line.reason == GRANT_ISSUED)
        for line in inside
    ]
    if points:
        points.append((at, points[-1][1], "Balance now", False))
    return start, points


def history_chart(data: BalanceData, at: datetime) -> None:
    tz = data.account.timezone
    start, points = history_points(data.ledger, at=at, days=HISTORY_DAYS)
    if not points:
        return
    zone = ZoneInfo(tz)
    st.subheader(f"Balance over time — since {format_date(start.astimezone(zone).date())} ({tz})")

    def naive(moment: datetime) -> str:
        # Wall-clock time in the account's zone, drawn on a UTC scale: no browser zone involved.
        return moment.astimezone(zone).replace(tzinfo=None).isoformat() + "Z"

    frame = pd.DataFrame(
        {
            "at": [naive(point[0]) for point in points],
            # Float only as line height (chart geometry); tooltips show the exact value as text.
            "credits": [point[1] / NANOS_PER_CREDIT for point in points],
            "when": [format_datetime(point[0], tz) for point in points],
            "balance": [format_credits(point[1]) for point in points],
            "change": [point[2] for point in points],
            "added": [point[3] for point in points],
        }
    )
    x = alt.X(
        "at:T",
        title=f"Time ({tz})",
        scale=alt.Scale(type="utc", domain=[naive(start), naive(at)]),
        axis=alt.Axis(
            format="%b %-d",
            labelOverlap="greedy",
            tickCount={"interval": "week", "step": 1} if (at - start).days > 20 else "day",
        ),
    )
    tooltip = [
        alt.Tooltip("when:N", title="When"),
        alt.Tooltip("change:N", title="Change"),
        alt.Tooltip("balance:N", title="Balance after"),
    ]
    base = alt.Chart(frame)
    line = base.mark_line(interpolate="step-after", color=PALETTE[0]).encode(
        x=x, y=alt.Y("credits:Q", title="Balance (credits)"), tooltip=tooltip
    )
    added = (
        base.transform_filter("datum.added")
        .mark_point(shape="triangle-up", filled=True, size=70, color=PALETTE[2])
        .encode(x=x, y="credits:Q", tooltip=tooltip)
    )
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(strokeDash=[4, 4], color=ALARM_COLOR).encode(y="y:Q")
    st.altair_chart((line + added + zero).properties(height=280), width="stretch")
    st.caption("Triangles mark credits added. Below the dashed line the balance is negative.")


def when_column(timezone: str, label: str = "When") -> st.column_config.DatetimeColumn:
    """Real times (they sort as times), shown in the account's zone with its short name, as
    ``core.display.format_datetime`` writes them: "Dec 7, 2026, 04:48 PST"."""
    return st.column_config.DatetimeColumn(label, format=DATETIME_COLUMN_FORMAT, timezone=timezone)


LEDGER_MONEY = ("Change (credits)", "Balance after (credits)")


def events_table(events: list[LedgerEvent]) -> pd.DataFrame:
    # Money right after the time: on a phone the first columns are the ones on screen.
    return pd.DataFrame(
        {
            "When": pd.to_datetime(pd.Series([e.effective_at for e in events], dtype="object"), utc=True),
            "Change (credits)": credits_values(e.change_nanos for e in events),
            "What happened": [e.label for e in events],
            "Balance after (credits)": credits_values(e.balance_after_nanos for e in events),
            "Reference": [e.reference_label for e in events],
        }
    )


def event_details(event: LedgerEvent, timezone: str) -> None:
    title = event.reference_label or event.label
    # Details name grants by their descriptions, which support agents typed.
    st.markdown(
        f"**{literal(title)}** · {format_datetime(event.effective_at, timezone)} · {literal(event.details)}"
    )
    entries = list(event.entries)
    # The amounts right after the grant's name: on a phone the first columns are on screen.
    frame = pd.DataFrame(
        {
            "Credits from": [e.grant_label for e in entries],
            "Change (credits)": credits_values(e.amount_nanos for e in entries),
            "Balance after (credits)": credits_values(e.balance_after_nanos for e in entries),
            "What happened": [e.reason_label for e in entries],
            "Entry": pd.Series([e.entry_id for e in entries], dtype="int64"),
        }
    )
    st.dataframe(
        styled(frame, credits=LEDGER_MONEY),
        hide_index=True,
        width="stretch",
        key="balance.event_entries",
        column_config={
            "Change (credits)": money_column("Change (credits)"),
            "Balance after (credits)": money_column("Balance after (credits)"),
            "Entry": st.column_config.NumberColumn("Entry", format="%d"),
        },
    )


def ledger_section(data: BalanceData) -> None:
    tz = data.account.timezone
    st.subheader("Ledger")
    st.caption(
        f"Every change to your balance, newest first, times in {tz}. Usage is charged once per batch of "
        "events the API accepted. Select a row to see which grants it used. Entries are never edited: a "
        "correction is a new entry."
    )
    events = ledger_events(data.ledger)
    selection = st.dataframe(
        styled(events_table(events), credits=LEDGER_MONEY),
        hide_index=True,
        width="stretch",
        key=LEDGER_KEY,
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "When": when_column(tz),
            "Change (credits)": money_column("Change (credits)"),
            "Balance after (credits)": money_column("Balance after (credits)"),
        },
    )
    rows = selection.selection.rows if selection else []
    if rows and rows[0] < len(events):
        event_details(events[rows[0]], tz)
    if len(data.ledger) >= LEDGER_LIMIT:
        st.caption(f"Showing the latest {LEDGER_LIMIT:,} entries; the CSV has the same.")
    st.download_button(
        "Download ledger CSV (exact values, one row per entry)",
        ledger_csv(data.ledger),
        file_name=f"ledger_{data.account.account_id}.csv",
        mime="text/csv",
        key="balance.download",
    )


def live_balance(ctx: PageContext) -> None:
    now = system_clock()
    try:
        data = read(ctx, lambda session, account: load(session, account, at=now))
    except BillingError as error:
        show_error(error)
        return
    st.caption(live_caption(f"{literal(data.account.name)} · {as_of(now, data.account.timezone)}"))
    may_buy = ctx.may(data.account, CREDITS_BUY)
    headline(data, now)
    owed_warning(data, may_buy=may_buy)
    if may_buy:
        buy_credits_button()
    if not data.ledger:
        how = "Buy credits" if may_buy else "An owner, admin or billing member can buy credits"
        st.info(
            f"No credits yet and no usage charged for {literal(data.account.name)}. {how}, or ask "
            "your account manager for a grant; your usage is then charged against them."
        )
        return
    grants_section(data, now, may_buy=may_buy)
    history_chart(data, now)
    ledger_section(data)
    statements_section(ctx)


st.title("Balance & credits")
context = page_context()
if context is None:
    st.stop()
stamp = data_stamp(context)  # before reading: a change meanwhile shows at the next check
live_balance(context)
watch_for_changes(context, stamp)
