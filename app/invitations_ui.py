"""What the invitation link's screens share: the invitation the address opens, and its one-line summary."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from app.resources import get_engine
from app.user_text import literal
from core.accounts.invitations import ACCEPT_PATH, TOKEN_PARAM, InvitationView, find_invitation
from core.db import unit_of_work

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
    return pd.Timestamp(moment).tz_convert("UTC").strftime("%b %d, %Y %H:%M UTC")


def summary(view: InvitationView) -> str:
    """Markdown: who invited whom to which account, with which role."""
    return (
        f"{literal(view.invited_by)} invited **{literal(view.email)}** to join "
        f"**{literal(view.account_name)}** as **{view.role}**."
    )
