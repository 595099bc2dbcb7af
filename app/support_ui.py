"""What the support console's pages share: the acting agent, the open account, audited writes.

The agent's level comes from the sign-in (``Viewer.support_level``); every core call gets
the ``Agent`` and checks it again, so a page that forgot a check still cannot act.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import streamlit as st
from sqlalchemy.orm import Session

from app.resources import get_engine
from app.state import current_viewer
from core.db import unit_of_work
from core.support import Agent

T = TypeVar("T")

OPEN_KEY = "support.open_account"  # the account the console has open
OPEN_PARAM = "open"  # ...and in the address, so a link opens it again
PAGES = Path(__file__).resolve().parent.parent / "pages"
SEARCH_PAGE = str(PAGES / "support_search.py")
ACCOUNT_PAGE = str(PAGES / "support_account.py")
AUDIT_PAGE = str(PAGES / "support_audit.py")


def current_agent() -> Agent | None:
    """The signed-in support agent, or None for anyone else."""
    viewer = current_viewer()
    if viewer is None or not viewer.is_support or viewer.support_level is None:
        return None
    return Agent(viewer.email, viewer.support_level)  # type: ignore[arg-type]


def require_console() -> Agent:
    """The agent; anyone else gets a message and the page stops (the router does not list it for them)."""
    agent = current_agent()
    if agent is None:
        st.error("The support console is for Meterline support agents.")
        st.stop()
    return agent  # type: ignore[return-value]


def open_account(account_id: str) -> None:
    """Show the account in the console; the new address names it and nothing else (no customer view)."""
    st.session_state[OPEN_KEY] = account_id
    st.switch_page(ACCOUNT_PAGE, query_params={OPEN_PARAM: account_id})


def opened_account() -> str | None:
    """The account to show: from the address first (a shared link), then this session."""
    linked = st.query_params.get(OPEN_PARAM)
    if linked:
        st.session_state[OPEN_KEY] = linked
    chosen = st.session_state.get(OPEN_KEY)
    if chosen and st.query_params.get(OPEN_PARAM) != chosen:
        st.query_params[OPEN_PARAM] = chosen
    return str(chosen) if chosen else None


def support_read(view: Callable[[Session], T]) -> T:
    with unit_of_work(get_engine()) as session:
        return view(session)


def support_write(command: Callable[[Session], T]) -> T:
    """Run one support action in one write transaction (the action and its audit entry commit together)."""
    with unit_of_work(get_engine(), write=True) as session:
        return command(session)
