"""What every page needs: the viewer, the chosen account, and authorised reads.

Each read opens its own unit of work and calls ``core.accounts.require_access`` in it
before touching the account's data, so access is decided on every read, never cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import streamlit as st
from sqlalchemy.orm import Session

from app.auth import session_still_open
from app.resources import get_engine
from app.state import current_viewer, foreign_account_link, selected_account_id
from core.accounts import AccountSummary, require_access
from core.db import unit_of_work
from core.errors import BillingError, NotFound, PermissionDenied

T = TypeVar("T")

NEXT_STEP = {
    PermissionDenied: "Pick one of your accounts in the sidebar, or ask an account owner to invite you.",
    NotFound: "Pick one of your accounts in the sidebar.",
}


@dataclass(frozen=True)
class PageContext:
    email: str
    is_support: bool
    account_id: str


def page_context() -> PageContext | None:
    """The viewer and account this page run is for; None (with a message) if there is none."""
    viewer = current_viewer()
    if viewer is None:
        st.warning("You are signed out. Reload the page to sign in again.")
        return None
    account_id = selected_account_id(viewer)
    if account_id is None:
        st.info("You are not a member of any account yet. Ask an owner of your organisation to invite you.")
        return None
    if foreign_account_link():
        shown = viewer.account(account_id)
        st.warning(
            "That link is for an account you are not a member of, so this page shows "
            f"{shown.name if shown else 'your account'} instead. Ask the account's owner for an invitation "
            "if you need to see it.",
            icon=":material/link_off:",
        )
    return PageContext(viewer.email, viewer.is_support, account_id)


def ensure_still_signed_in() -> None:
    """For live parts that rerun on their own: once this browser signed out in another tab,
    rerun the whole app, which then shows the sign-in screen."""
    if not session_still_open(get_engine()):
        st.rerun(scope="app")


def read(ctx: PageContext, view: Callable[[Session, AccountSummary], T], *, min_role: str = "viewer") -> T:
    """Run ``view`` for the context's account after checking access in the same unit of work."""
    with unit_of_work(get_engine()) as session:
        account = require_access(
            session,
            email=ctx.email,
            account_id=ctx.account_id,
            min_role=min_role,
            is_support=ctx.is_support,
        )
        return view(session, account)


def show_error(error: BillingError) -> None:
    """A core error as a message that says what to do next."""
    hint = next((text for kind, text in NEXT_STEP.items() if isinstance(error, kind)), "")
    st.error(f"{error.message[:1].upper()}{error.message[1:]}. {hint}".strip())
