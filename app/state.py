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


# "View as customer": a support agent sees an account's own pages, read-only. The account is in
# the session and mirrored in the address (``?view_as=acc_…``) so a reload keeps the view.
VIEW_AS_KEY = "nav.view_as"
VIEW_AS_PARAM = "view_as"
VIEWED_PAGES_KEY = "nav.view_as_recorded"  # pages whose view is already in the audit log
PAGE_KEY = "nav.current_page"  # the url path of the page this run shows


VIEW_AS_OPEN_KEY = "nav.view_as_open"  # the next run opens the customer's home page


VIEW_AS_ENDED_KEY = "nav.view_as_ended"  # the view this session left: a stale address does not reopen it


def start_view_as(account_id: str, *, open_home: bool = True) -> None:
    st.session_state.pop(VIEW_AS_ENDED_KEY, None)
    st.session_state[VIEW_AS_KEY] = account_id
    st.session_state[VIEWED_PAGES_KEY] = set()
    st.session_state[VIEW_AS_OPEN_KEY] = open_home
    st.query_params[VIEW_AS_PARAM] = account_id


def open_customer_home() -> bool:
    """True once after a customer view started from the console: the router opens its home page."""
    return bool(st.session_state.pop(VIEW_AS_OPEN_KEY, False))


def end_view_as() -> None:
    st.session_state[VIEW_AS_ENDED_KEY] = st.session_state.pop(VIEW_AS_KEY, None)
    st.session_state.pop(VIEWED_PAGES_KEY, None)
    st.query_params.pop(VIEW_AS_PARAM, None)
    st.query_params.pop(ACCOUNT_PARAM, None)


def view_as_from_link(viewer: Viewer) -> str | None:
    """The account a support agent is viewing as its customer, or None.

    Only an agent's session honours it: for anyone else the address's ``view_as`` is dropped.
    """
    if not viewer.is_support:
        st.session_state.pop(VIEW_AS_KEY, None)
        st.query_params.pop(VIEW_AS_PARAM, None)
        return None
    linked = st.query_params.get(VIEW_AS_PARAM)
    if linked and linked == st.session_state.get(VIEW_AS_ENDED_KEY):
        st.query_params.pop(VIEW_AS_PARAM, None)  # the address still names the view just left
        linked = None
    if linked and linked != st.session_state.get(VIEW_AS_KEY):
        start_view_as(linked, open_home=False)  # a reload or a shared link: a new, audited view
    chosen = st.session_state.get(VIEW_AS_KEY)
    if chosen and st.query_params.get(VIEW_AS_PARAM) != chosen:
        st.query_params[VIEW_AS_PARAM] = chosen
    return str(chosen) if chosen else None


def viewing_as() -> str | None:
    """The account this run shows as its customer sees it (set by the router), or None."""
    chosen = st.session_state.get(VIEW_AS_KEY)
    viewer = current_viewer()
    return str(chosen) if chosen and viewer is not None and viewer.is_support else None


def view_recorded(page: str) -> bool:
    """Whether this customer view's visit to ``page`` is already in the audit log."""
    return page in st.session_state.get(VIEWED_PAGES_KEY, set())


def mark_view_recorded(page: str) -> None:
    st.session_state.setdefault(VIEWED_PAGES_KEY, set()).add(page)


def set_current_page(url_path: str) -> None:
    st.session_state[PAGE_KEY] = url_path


def current_page() -> str:
    return str(st.session_state.get(PAGE_KEY) or "overview")
