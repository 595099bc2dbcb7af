"""Live pages that cost almost nothing while nothing changes.

A live page draws its data once per run, then a small fragment wakes every few seconds
and reads the account's data stamp (``core.usage.version.data_stamp``: its last batch,
its last ledger entry and its local date, in one query). Only when the stamp moved (new
usage, a grant, a top-up, an expiry, midnight in the account's zone) does it rerun the
page, which reads and draws everything again. Twenty idle tabs thus cost twenty tiny
queries every few seconds, not twenty recomputed pages. The watcher also notices a
sign-out in another tab.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import streamlit as st

from app.auth import SESSION_ID_KEY
from app.page import PageContext
from app.resources import get_engine
from core.clock import system_clock
from core.db import unit_of_work
from core.display import format_datetime
from core.sessions import session_ended
from core.usage.version import DataVersion
from core.usage.version import data_stamp as version_stamp

WATCH_SECONDS = 5

Stamp = tuple[DataVersion, date | None]


def data_stamp(ctx: PageContext) -> Stamp:
    """What the page shows depends on: the account's data version and its local date.

    Read without an access check on purpose: it only decides whether to rerun the page, and
    the rerun checks access before reading anything it shows.
    """
    with unit_of_work(get_engine()) as session:
        return version_stamp(session, ctx.account_id, system_clock())


@st.fragment(run_every=timedelta(seconds=WATCH_SECONDS))
def watch_for_changes(ctx: PageContext, shown: Stamp) -> None:
    """Rerun the page once its data changed or this browser signed out; otherwise do nothing.

    One short read transaction per tick: the sign-out mark and the stamp together.
    """
    sid = st.session_state.get(SESSION_ID_KEY)
    with unit_of_work(get_engine()) as session:
        signed_out = bool(sid) and session_ended(session, str(sid))
        stamp = version_stamp(session, ctx.account_id, system_clock())
    if signed_out or stamp != shown:
        st.rerun(scope="app")  # signed out: the whole app then shows the sign-in screen


def live_caption(updated: str) -> str:
    """The words under a live page's title: when the numbers are from, how they stay current."""
    return f"{updated} · updates by itself when new usage or credits arrive (checked every {WATCH_SECONDS} s)"


def as_of(at: datetime, timezone: str) -> str:
    """ "as of Dec 7, 2026, 04:48 PST": when a live page's numbers are from, written as every time
    is (``core.display``), in the account's zone."""
    return f"as of {format_datetime(at, timezone)}"
