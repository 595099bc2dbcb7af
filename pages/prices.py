"""Prices: the rate card this account is on, the version in force, the versions to come and the
card's history (past versions with their dates, the one in force marked).

Prices are credits, exact (every digit of the rate card, never rounded): "2.405 credits per 1M
tokens"; dates and times in the account's time zone, the zone named.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from app.page import page_context, read, show_error
from app.user_text import literal
from core.clock import system_clock
from core.display import CREDIT_WORTH, format_datetime, format_price
from core.errors import BillingError
from core.rating import PriceLine, PriceSheet, VersionSheet, price_sheet
from core.usage.exports import plural


def per_count(per_units: int) -> str:
    """How many units a price buys, short and exact: "1M", "1K", "500" (never a rounded "2.5M")."""
    for size, letter in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if per_units % size == 0:
            return f"{per_units // size:,}{letter}"
    return f"{per_units:,}"


def per_text(per_units: int, unit: str) -> str:
    """ "per token", "per 1M tokens", "per 500 images"."""
    return (
        f"per {plural(unit, 1)}"
        if per_units == 1
        else f"per {per_count(per_units)} {plural(unit, per_units)}"
    )


def volume_texts(line: PriceLine) -> list[str]:
    """Each tier's monthly volume: "All", or "0–1,000,000,000 tokens", "Above 1,000,000,000 tokens"."""
    if len(line.tiers) == 1:
        return ["All"]
    texts, lower = [], 0
    for up_to, _ in line.tiers:
        if up_to is None:
            texts.append(f"Above {lower:,} {plural(line.unit, 2)}")
        else:
            texts.append(f"{lower:,}–{up_to:,} {plural(line.unit, 2)}")
            lower = up_to
    return texts


def price_texts(line: PriceLine) -> list[str]:
    """Each tier's price, every digit, not rounded: "2.405 credits per 1M tokens"."""
    per = per_text(line.per_units, line.unit)
    return [f"{format_price(price_nanos)} {per}" for _, price_nanos in line.tiers]


def what(line: PriceLine) -> str:
    """The meter, and the usage a line is limited to: "Input tokens", "Input tokens · atlas-large"."""
    return line.meter_display + (f" · {line.match_value}" if line.match_dimension else "")


def applies_to(line: PriceLine) -> str:
    if not line.match_dimension:
        return "All usage"
    return f"{line.match_dimension.replace('_', ' ')} = {line.match_value}"


def lines_table(version: VersionSheet) -> pd.DataFrame:
    """One row per price (a graduated price: one per tier). On a phone the first two columns are on
    screen: what is priced (the meter and the model or project it is limited to) and the price."""
    rows = [
        {
            "Meter": what(line),
            "Price": price,
            "Monthly volume": volume,
            "Applies to": applies_to(line),
            "Your own price": "Yes" if line.is_override else "",
        }
        for line in version.lines
        for price, volume in zip(price_texts(line), volume_texts(line), strict=True)
    ]
    return pd.DataFrame(rows, columns=["Meter", "Price", "Monthly volume", "Applies to", "Your own price"])


def when(moment: datetime, timezone: str) -> str:
    """ "Jan 1, 2026, 00:00 UTC": in the account's zone, named."""
    return format_datetime(moment, timezone)


def show_version(version: VersionSheet, timezone: str) -> None:
    if version.notes:
        st.caption(version.notes)
    if not version.lines:
        st.info("This version lists no prices.")
        return
    st.dataframe(
        lines_table(version),
        hide_index=True,
        width="stretch",
        column_config={
            "Meter": st.column_config.TextColumn("Meter", pinned=True),
            "Price": st.column_config.TextColumn("Price", help=f"In credits ({CREDIT_WORTH}), exact"),
        },
    )


CURRENT_MARK = "In force now"


def history_table(sheet: PriceSheet, timezone: str) -> pd.DataFrame:
    """Every version of the card, oldest first, with its dates; the one in force now marked."""
    rows = []
    dated = [(v, "Past") for v in reversed(sheet.past)]
    dated += [(sheet.current, CURRENT_MARK)] if sheet.current is not None else []
    dated += [(v, "Upcoming") for v in sheet.upcoming]
    for version, status in dated:
        until = sheet.until(version)
        rows.append(
            {
                "Version": str(version.version),
                "From": when(version.effective_from, timezone),
                "Until": when(until, timezone) if until is not None else "—",
                "Status": status,
                "Notes": version.notes,
            }
        )
    return pd.DataFrame(rows, columns=["Version", "From", "Until", "Status", "Notes"])


def show_history(sheet: PriceSheet, timezone: str) -> None:
    st.subheader("Version history")
    st.dataframe(history_table(sheet, timezone), hide_index=True, width="stretch")
    for version in sheet.past:
        until = sheet.until(version)
        span = f"from {when(version.effective_from, timezone)}" + (
            f" until {when(until, timezone)}" if until is not None else ""
        )
        with st.expander(f"Version {version.version} (past), {span}"):
            show_version(version, timezone)


def show_sheet(sheet: PriceSheet, account_name: str, timezone: str) -> None:
    if not sheet.card_key:
        st.info(
            f"{literal(account_name)} is not on a rate card yet, so usage is not priced. "
            "Ask your account manager to assign one (operators: `meterline rates load FILE`)."
        )
        return
    st.markdown(
        f"**{sheet.card_name}** (`{sheet.card_key}`)"
        + (" with prices of your own" if sheet.has_overrides else "")
    )
    st.caption(f"{CREDIT_WORTH}. Usage is priced at the version in force when it happened.")
    if sheet.current is None:
        st.info("This card has no version in force yet: see the upcoming versions below.")
    else:
        since = when(sheet.current.effective_from, timezone)
        st.subheader(f"In force now: version {sheet.current.version}, since {since}")
        show_version(sheet.current, timezone)
    st.subheader("Upcoming")
    if not sheet.upcoming:
        st.caption("No price changes are scheduled.")
    for version in sheet.upcoming:
        st.markdown(f"**Version {version.version}, from {when(version.effective_from, timezone)}**")
        show_version(version, timezone)
    show_history(sheet, timezone)


st.title("Prices")
context = page_context()
if context is None:
    st.stop()
now = system_clock()
try:
    account, sheet = read(
        context, lambda session, acct: (acct, price_sheet(session, acct.account_id, at=now))
    )
except BillingError as error:
    show_error(error)
    st.stop()
show_sheet(sheet, account.name, account.timezone)
