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

from app.auth import Viewer, session_still_open
from app.portal_state import current_portal
from app.resources import get_engine
from app.state import (
    current_page,
    current_viewer,
    end_view_as,
    foreign_account_link,
    mark_view_recorded,
    selected_account_id,
    view_recorded,
    viewing_as,
)
from app.support_ui import open_account
from app.user_text import literal
from core.accounts import AccountSummary, Actor, Permission, allowed, require_access
from core.clock import system_clock
from core.db import unit_of_work
from core.errors import BillingError, NotFound, PermissionDenied
from core.support import Agent, record_customer_view

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
    read_only: bool = False  # a support agent viewing the account as its customer: nothing is written
    portal_session_id: str | None = None  # a portal session (core.portal_sessions): it reads and writes
    portal_email: str | None = None  # that session's person, if the company named one

    @property
    def actor(self) -> Actor:
        """Who writes, for the core's permission check: this signed-in person, or, in a customer view,
        an agent viewing as the customer (the core refuses every customer write then), or the portal
        session this page runs in (the core checks it is still open and audits the write)."""
        if self.portal_session_id is not None:
            return Actor.portal(self.portal_session_id, self.portal_email, at=system_clock())
        return Actor.viewing_as_customer(self.email) if self.read_only else Actor.member(self.email)

    def may(self, account: AccountSummary, permission: Permission) -> bool:
        """Whether to offer ``permission``'s controls on ``account`` (read with this context): the
        core's table for the viewer's role; nothing in a customer view. The write decides again."""
        return allowed(account.role, permission, kind=self.actor.kind)


READ_ONLY_HELP = "Read-only: you are viewing this account as its customer. Act from the support console."


def page_context() -> PageContext | None:
    """The viewer and account this page run is for; None (with a message) if there is none."""
    portal = current_portal()
    if portal is not None:
        if current_page() not in portal.pages:
            st.warning("This page is not part of this session.", icon=":material/block:")
            return None
        return PageContext(
            portal.author,
            False,
            portal.account_id,
            portal_session_id=portal.session_id,
            portal_email=portal.email,
        )
    viewer = current_viewer()
    if viewer is None:
        st.warning("You are signed out. Reload the page to sign in again.")
        return None
    viewed = viewing_as()
    if viewed is not None:
        return customer_view_context(viewer, viewed)
    account_id = selected_account_id(viewer)
    if account_id is None:
        st.info("You are not a member of any account yet. Ask an owner of your organisation to invite you.")
        return None
    if foreign_account_link():
        shown = viewer.account(account_id)
        st.warning(
            "That link is for an account you are not a member of, so this page shows "
            f"{literal(shown.name) if shown else 'your account'} instead. Ask the account's owner for an "
            "invitation if you need to see it.",
            icon=":material/link_off:",
        )
    return PageContext(viewer.email, viewer.is_support, account_id)


def customer_view_context(viewer: Viewer, account_id: str) -> PageContext | None:
    """A support agent's read-only view of the account's own page, under a banner; the first
    view of each page in this customer view is written to the audit log before anything shows."""
    agent = Agent(viewer.email, viewer.support_level or "support")  # type: ignore[arg-type]
    page = current_page()
    try:
        with unit_of_work(get_engine(), write=True) as session:
            account = require_access(session, email=viewer.email, account_id=account_id, is_support=True)
            recording = not view_recorded(page)
            if recording:
                record_customer_view(session, agent, account_id=account_id, page=page, at=system_clock())
    except BillingError as error:
        show_error(error)
        return None
    if recording:
        mark_view_recorded(page)  # committed: later reruns of this page add nothing
    with st.container(border=True):
        text, back = st.columns([3, 1], vertical_alignment="center")
        text.markdown(
            f":material/visibility: **Viewing {literal(account.name)} as the customer sees it.** "
            "Read-only: nothing here can be changed. Each page you open is recorded in the audit log."
        )
        if back.button("Back to the console", key="view_as.exit", icon=":material/support_agent:"):
            end_view_as()
            open_account(account_id)
    return PageContext(viewer.email, True, account_id, read_only=True)


def ensure_still_signed_in() -> None:
    """For live parts that rerun on their own: once this browser signed out in another tab,
    rerun the whole app, which then shows the sign-in screen."""
    portal = current_portal()
    if portal is not None:
        from core.portal_sessions import find_portal_session

        with unit_of_work(get_engine()) as session:
            view = find_portal_session(session, portal.session_id)
        if view is None or view.status(system_clock()) != "active":
            st.rerun(scope="app")  # the router then shows the "ended" page
        return
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
            portal_session_id=ctx.portal_session_id,
            at=system_clock() if ctx.portal_session_id else None,
        )
        return view(session, account)


def show_error(error: BillingError) -> None:
    """A core error as a message that says what to do next."""
    hint = next((text for kind, text in NEXT_STEP.items() if isinstance(error, kind)), "")
    st.error(f"{error_text(error)}. {hint}".strip())


def error_text(error: BillingError) -> str:
    """A core error's message, capitalised, as Markdown that shows it as text: messages quote
    what was typed (a name, an address, an id from a link)."""
    return literal(f"{error.message[:1].upper()}{error.message[1:]}")
