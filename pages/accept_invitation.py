"""Accept invitation: the page an invitation's link opens (``/accept-invitation?token=…``).

Signed out, the address shows the sign-in screen and keeps its token through sign-in. Signed
in, it says what the invitation offers and, when the signed-in email may take it, offers one
button; otherwise it says plainly why not (another email, already used, withdrawn, expired, not
an invitation) and what to do. Accepted, the person lands in the account's Overview.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.auth import sign_out
from app.invitations_ui import invitation_in_link, summary, token_in_link, utc
from app.page import error_text
from app.resources import get_engine
from app.state import current_viewer, select_account, viewing_as
from app.user_text import literal
from core.accounts.invitations import accept_invitation, refusal
from core.accounts.permissions import Actor
from core.clock import system_clock
from core.db import unit_of_work
from core.errors import BillingError

HOME = Path(__file__).resolve().parent / "overview.py"
LANDING_KEY = "accept_invitation.landing"  # the account just joined: the next run opens it


def open_account(account_id: str) -> None:
    select_account(account_id)
    st.switch_page(HOME)


def accept(token: str, email: str) -> None:
    try:
        with unit_of_work(get_engine(), write=True) as session:
            accepted = accept_invitation(session, Actor.member(email), token=token, at=system_clock())
    except BillingError as error:
        st.error(f"{error_text(error)}.")
        return
    # The router drew this run's pages before the membership existed: rerun, then open the account.
    st.session_state[LANDING_KEY] = accepted.account_id
    st.rerun()


def render() -> None:
    st.title("Accept invitation")
    viewer = current_viewer()
    landing = st.session_state.pop(LANDING_KEY, None)
    if viewer is not None and landing and viewer.account(landing) is not None:
        open_account(landing)
    if viewer is None:
        st.warning("You are signed out. Reload the page to sign in again.")
        return
    if viewing_as() is not None:
        st.info(
            "You are viewing an account as its customer. Go back to the console (the button above) "
            "to accept an invitation for yourself."
        )
        return
    token = token_in_link()
    if not token:
        st.info(
            "This page accepts an invitation to an account. Open the link from your invitation "
            "(it ends with ?token=…), or ask an owner or admin of the account to invite you."
        )
        return
    invitation = invitation_in_link()
    now = system_clock()
    if invitation is not None:
        st.markdown(summary(invitation))
    problem = refusal(invitation, viewer.email, now)
    if problem is not None:
        st.error(f"{error_text(problem)}.")
        if problem.code == "invitation_for_another_email":
            if st.button("Sign out", key="accept_invitation.sign_out"):
                sign_out(viewer, get_engine())
                st.rerun()
        elif (
            invitation is not None
            and viewer.account(invitation.account_id) is not None
            and st.button(f"Open {literal(invitation.account_name)}", key="accept_invitation.open")
        ):
            open_account(invitation.account_id)
        return
    assert invitation is not None, "refusal answers a missing invitation"
    st.caption(
        f"You are signed in as {literal(viewer.email)}. "
        f"The link works once, until {utc(invitation.expires_at)}."
    )
    if st.button("Accept invitation", type="primary", key="accept_invitation.accept"):
        accept(token, viewer.email)


render()
