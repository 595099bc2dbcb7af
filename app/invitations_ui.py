"""What the invitation link's screens share: the invitation the address opens, and its one-line summary."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from app.resources import get_engine
from app.user_text import literal
from core.accounts.invitations import ACCEPT_PATH, TOKEN_PARAM, InvitationView, find_invitation
from core.db import unit_of_work
from core.display import format_datetime

ACCEPT_URL_PATH = ACCEPT_PATH.lstrip("/")


def token_in_link() -> str:
    """The ``token`` of this address (``/accept-invitation?token=…``), or ""."""
    return str(st.query_params.get(TOKEN_PARAM) or "")


def invitation_in_link() -> InvitationView | None:
    """The invitation this address's token opens (in any state), or None."""
    token = token_in_link()
    if not token:
        return None
    with unit_of_work(get_engine()) as session:
        return find_invitation(session, token)


def utc(moment: datetime) -> str:
    """ "Dec 7, 2026, 04:48 UTC": an invitation's times, before its account's zone is the reader's."""
    return format_datetime(moment, "UTC")


def summary(view: InvitationView) -> str:
    """Markdown: who invited whom to which account, with which role."""
    return (
        f"{literal(view.invited_by)} invited **{literal(view.email)}** to join "
        f"**{literal(view.account_name)}** as **{view.role}**."
    )
