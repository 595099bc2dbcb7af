"""The Usage page's FOCUS export: pick a calendar month (UTC), download the account's FOCUS cost CSV.

The file is made when the button is clicked (Streamlit runs ``data`` then, in its own thread), in
one snapshot of the database, after the reader's access is checked again in that snapshot.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial

import streamlit as st
from sqlalchemy import Engine

from app.page import PageContext
from app.resources import get_engine
from core.accounts import require_access
from core.clock import system_clock
from core.display import CREDIT_WORTH
from core.usage.focus import focus_csv, focus_file_name, focus_snapshot

MONTHS_OFFERED = 13  # this month and the twelve before it
MONTH_KEY = "usage.focus.month"


def recent_months(at: datetime, count: int = MONTHS_OFFERED) -> list[str]:
    """This month in UTC and the ``count - 1`` before it, newest first: "2026-11", "2026-10", …"""
    today = at.astimezone(UTC).date()
    index = today.year * 12 + today.month - 1
    return [f"{(index - back) // 12:04d}-{(index - back) % 12 + 1:02d}" for back in range(count)]


def month_label(month: str) -> str:
    """ "2026-11" as people read it: "November 2026"."""
    year, number = (int(part) for part in month.split("-"))
    return f"{date(year, number, 1):%B %Y}"


def export_for(engine: Engine, ctx: PageContext, month: str) -> bytes:
    """The FOCUS CSV of the context's account for ``month``, if this reader may still read it."""
    with focus_snapshot(engine) as session:
        require_access(
            session,
            email=ctx.email,
            account_id=ctx.account_id,
            is_support=ctx.is_support,
            portal_session_id=ctx.portal_session_id,
        )
        return focus_csv(session, ctx.account_id, month)


def focus_export(ctx: PageContext) -> None:
    """A month picker and the "FOCUS export (CSV)" download for the account."""
    st.subheader("FOCUS export")
    st.caption(
        "Costs of a calendar month (UTC) in the FinOps FOCUS format, for cost tools and spreadsheets: "
        "usage per day, model, project and API key, credits bought, and promotional credits used. "
        f"In US dollars ({CREDIT_WORTH}), exact to the nano-dollar."
    )
    months = recent_months(system_clock())
    if st.session_state.get(MONTH_KEY) not in months:
        st.session_state[MONTH_KEY] = months[0]
    pick, download = st.columns([2, 3], vertical_alignment="bottom")
    month = pick.selectbox("Month (UTC)", months, format_func=month_label, key=MONTH_KEY)
    download.download_button(
        "FOCUS export (CSV)",
        data=partial(export_for, get_engine(), ctx, month),
        file_name=focus_file_name(ctx.account_id, month),
        mime="text/csv",
        key="usage.focus.download",
        on_click="ignore",
        icon=":material/download:",
        help="One row per day, meter, model, project and API key, plus purchases and credits; "
        "columns as the FOCUS specification names them.",
    )
