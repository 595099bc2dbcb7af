"""Balance & credits: the balance in credits and money, open grants, balance over time, the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from app.page import page_context, read, show_error
from core.accounts import AccountSummary
from core.clock import system_clock
from core.errors import BillingError
from core.ledger import BalanceView, LedgerLine, balance_view, ledger_view
from core.ledger.reasons import SOURCE_LABELS
from core.ledger.service import GrantView
from core.money import NANOS_PER_CREDIT, format_credits, format_usd
from core.usage import balance_history_frame, ledger_csv
from core.usage.exports import ledger_table

EXPIRY_WARNING_DAYS = 14
LEDGER_LIMIT = 5_000
BUY_CREDITS_PAGE = str(Path(__file__).resolve().with_name("buy_credits.py"))


@dataclass(frozen=True)
class BalanceData:
    account: AccountSummary
    balance: BalanceView
    ledger: list[LedgerLine]


def load(session: Session, account: AccountSummary, *, at: datetime) -> BalanceData:
    return BalanceData(
        account,
        balance_view(session, account.account_id, at=at),
        ledger_view(session, account.account_id, limit=LEDGER_LIMIT),
    )


def local(moment: datetime, timezone: str) -> str:
    return pd.Timestamp(moment).tz_convert(timezone).strftime("%b %d, %Y %H:%M")


def expiry_text(grant: GrantView, at: datetime, timezone: str) -> str:
    if grant.expires_at is None:
        return "Never expires"
    days = (grant.expires_at - at).days
    when = local(grant.expires_at, timezone)
    if days < 1:
        return f"{when} (expires within a day)"
    return f"{when} (in {days} day{'s' if days != 1 else ''})"


def headline(data: BalanceData, at: datetime) -> None:
    balance = data.balance
    tz = data.account.timezone
    as_of = f"as of {local(at, tz)} {tz}"
    left, right = st.columns(2)
    left.metric(f"Balance ({as_of})", format_credits(balance.balance_nanos))
    right.metric(f"Worth ({as_of}; 1 credit = $1.00)", format_usd(balance.balance_nanos))
    if balance.balance_nanos < 0 or balance.deficit_nanos < 0:
        owed = -min(balance.balance_nanos, balance.deficit_nanos)
        st.warning(
            f"Your balance is negative: {format_credits(owed)} ({format_usd(owed)}) of usage was not covered "
            "by any credits. Usage keeps being recorded; the next top-up or grant pays this off first."
        )


def buy_credits_button() -> None:
    """The way to the Buy credits page (top up now, or set up auto-recharge)."""
    if st.button("Buy credits", icon=":material/add_card:", type="primary", key="balance.buy"):
        st.switch_page(BUY_CREDITS_PAGE)


def grants_section(data: BalanceData, at: datetime) -> None:
    st.subheader("Open credit grants")
    grants = data.balance.grants
    if not grants:
        st.info(
            "No open credit grants: every grant is spent or has expired. "
            "Buy credits or ask your account manager for a grant to keep usage covered."
        )
        return
    tz = data.account.timezone
    for grant in grants:
        if grant.expires_at is not None and (grant.expires_at - at).days < EXPIRY_WARNING_DAYS:
            st.warning(
                f"{format_credits(grant.remaining_nanos)} of {SOURCE_LABELS.get(grant.source, grant.source)} "
                f"credits (grant #{grant.grant_id}) expire {expiry_text(grant, at, tz)}: "
                "they are used first, but what is left then is lost."
            )
    table = pd.DataFrame(
        {
            "Grant": [f"#{g.grant_id}" for g in grants],
            "Source": [SOURCE_LABELS.get(g.source, g.source) for g in grants],
            "Description": [g.description for g in grants],
            "Remaining": [format_credits(g.remaining_nanos) for g in grants],
            "Original": [format_credits(g.amount_nanos) for g in grants],
            "Added": [local(g.effective_at, tz) for g in grants],
            "Expires": [expiry_text(g, at, tz) for g in grants],
        }
    )
    st.caption("In the order usage burns them: priority, then soonest expiry, then oldest.")
    st.dataframe(table, hide_index=True, width="stretch")


def history_chart(data: BalanceData) -> None:
    st.subheader("Balance over time")
    history = balance_history_frame(data.ledger)
    if history.empty:
        return
    tz = data.account.timezone
    chart_data = pd.DataFrame(
        {
            "at": history["at"].dt.tz_convert(tz).dt.tz_localize(None),
            # Float only as line height (chart geometry); tooltips show the exact value as text.
            "credits": history["balance_nanos"] / NANOS_PER_CREDIT,
            "balance": [format_credits(int(n)) for n in history["balance_nanos"]],
            "change": history["reason_label"],
        }
    )
    line = (
        alt.Chart(chart_data)
        .mark_line(interpolate="step-after", point=True)
        .encode(
            x=alt.X("at:T", title=f"Time ({tz})"),
            y=alt.Y("credits:Q", title="Balance (credits)"),
            tooltip=[
                alt.Tooltip("at:T", title="When", format="%b %d, %Y %H:%M"),
                alt.Tooltip("change:N", title="Change"),
                alt.Tooltip("balance:N", title="Balance after"),
            ],
        )
        .properties(height=280)
    )
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(strokeDash=[4, 4]).encode(y="y:Q")
    st.altair_chart(line + zero, width="stretch")


def ledger_section(data: BalanceData) -> None:
    st.subheader("Ledger")
    st.caption(
        "Every change to your balance, newest first. Usage is debited once per accepted batch of events; "
        "entries are never edited — a correction is a new entry."
    )
    st.dataframe(ledger_table(data.ledger, timezone=data.account.timezone), hide_index=True, width="stretch")
    if len(data.ledger) >= LEDGER_LIMIT:
        st.caption(f"Showing the latest {LEDGER_LIMIT:,} entries.")
    st.download_button(
        "Download ledger CSV (exact values)",
        ledger_csv(data.ledger),
        file_name=f"ledger_{data.account.account_id}.csv",
        mime="text/csv",
        key="balance.download",
    )


st.title("Balance & credits")
context = page_context()
if context is None:
    st.stop()
now = system_clock()
try:
    balance_data = read(context, lambda session, account: load(session, account, at=now))
except BillingError as error:
    show_error(error)
    st.stop()

st.caption(f"{balance_data.account.name} · as of {now.astimezone(UTC):%H:%M:%S} UTC")
headline(balance_data, now)
buy_credits_button()
if not balance_data.ledger:
    st.info(
        "No credits yet and no usage charged: this account's ledger is empty. "
        "Buy credits or ask your account manager for a grant; usage sent to POST /api/v1/events "
        "is charged against them."
    )
    st.stop()
grants_section(balance_data, now)
history_chart(balance_data)
ledger_section(balance_data)
