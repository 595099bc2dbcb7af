"""Session-state accessors for the router (keys prefixed ``nav.``)."""

from __future__ import annotations

import streamlit as st

from app.auth import Viewer

ACCOUNT_KEY = "nav.account_id"
VIEWER_KEY = "nav.viewer"


def selected_account_id(viewer: Viewer) -> str | None:
    """The account chosen in this session; falls back to the viewer's first account.

    A stored id that is not one of the viewer's accounts (stale or tampered with) is
    dropped here, and every read checks access again in core anyway.
    """
    chosen = st.session_state.get(ACCOUNT_KEY)
    if chosen is not None and viewer.account(chosen) is not None:
        return str(chosen)
    fallback = viewer.accounts[0].account_id if viewer.accounts else None
    st.session_state[ACCOUNT_KEY] = fallback
    return fallback


def select_account(account_id: str) -> None:
    st.session_state[ACCOUNT_KEY] = account_id


def set_viewer(viewer: Viewer) -> None:
    st.session_state[VIEWER_KEY] = viewer


def clear_viewer() -> None:
    """Forget the viewer and the account chosen in this session."""
    st.session_state.pop(VIEWER_KEY, None)
    st.session_state.pop(ACCOUNT_KEY, None)


def current_viewer() -> Viewer | None:
    viewer = st.session_state.get(VIEWER_KEY)
    return viewer if isinstance(viewer, Viewer) else None
