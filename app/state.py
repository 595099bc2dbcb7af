"""Session-state accessors for the router (keys prefixed ``nav.``).

The chosen account is also in the address (``?account=acc_…``) so that a link opens the
account it was copied from; it is honoured only for an account the viewer is a member of.
"""

from __future__ import annotations

import streamlit as st

from app.auth import Viewer

ACCOUNT_KEY = "nav.account_id"
VIEWER_KEY = "nav.viewer"
FOREIGN_LINK_KEY = "nav.foreign_account_link"
ACCOUNT_PARAM = "account"


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


def select_account(account_id: str, *, in_link: bool = False) -> None:
    st.session_state[ACCOUNT_KEY] = account_id
    if in_link:
        st.query_params[ACCOUNT_PARAM] = account_id


def account_from_link(viewer: Viewer) -> None:
    """Follow ``?account=`` when the viewer is a member of it; otherwise say so and keep theirs.

    Then the address names the account shown, so copying it shares this very view.
    """
    linked = st.query_params.get(ACCOUNT_PARAM)
    st.session_state.pop(FOREIGN_LINK_KEY, None)
    if linked and viewer.account(linked) is not None:
        st.session_state[ACCOUNT_KEY] = linked
    elif linked and viewer.accounts:
        st.session_state[FOREIGN_LINK_KEY] = True  # the page says it; the id is not echoed back
    shown = selected_account_id(viewer)
    if shown and st.query_params.get(ACCOUNT_PARAM) != shown:
        st.query_params[ACCOUNT_PARAM] = shown


def foreign_account_link() -> bool:
    """True when this run's link named an account the viewer is not a member of."""
    return bool(st.session_state.get(FOREIGN_LINK_KEY))


def set_viewer(viewer: Viewer) -> None:
    st.session_state[VIEWER_KEY] = viewer


def clear_viewer() -> None:
    """Forget the viewer and the account chosen in this session."""
    st.session_state.pop(VIEWER_KEY, None)
    st.session_state.pop(ACCOUNT_KEY, None)


def current_viewer() -> Viewer | None:
    viewer = st.session_state.get(VIEWER_KEY)
    return viewer if isinstance(viewer, Viewer) else None
