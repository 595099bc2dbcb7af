"""The portal session this Streamlit session runs in, if any (keys prefixed ``portal.``).

Set by ``app.embed`` on every run from the browser token (checked against the stored session);
read by ``app.page`` so that reads and writes act as that portal session (``core.portal_sessions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import streamlit as st

PORTAL_KEY = "portal.session"


@dataclass(frozen=True)
class PortalState:
    session_id: str
    token: str  # the browser token (never the start token)
    account_id: str
    email: str | None
    author: str  # "portal:<id>:<email>": what writes record
    role: str
    pages: tuple[str, ...]
    expires_at: datetime
    return_url: str | None


def current_portal() -> PortalState | None:
    state = st.session_state.get(PORTAL_KEY)
    return state if isinstance(state, PortalState) else None


def set_portal(state: PortalState) -> None:
    st.session_state[PORTAL_KEY] = state


def clear_portal() -> None:
    st.session_state.pop(PORTAL_KEY, None)
