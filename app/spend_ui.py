"""What the Alerts and Limits pages share: writes as the page's actor, the sidebar's notification badge,
and sending an evaluation's messages without making the person wait for SMTP or HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import streamlit as st
from sqlalchemy.orm import Session

from app.page import PageContext
from app.resources import get_engine
from core.accounts import AccountSummary, Actor, require_access
from core.accounts.permissions import ALERTS_EDIT
from core.clock import system_clock
from core.db import unit_of_work
from core.spend.deliveries import deliver_due
from core.spend.evaluate import evaluate_accounts
from core.spend.notifications import unread_count

T = TypeVar("T")

BADGE_REFRESH = "20s"


def can_edit(account: AccountSummary) -> bool:
    """Whether to draw the editing controls: owners and admins change alerts, caps and the overdraft
    (the same rule for each, in ``core.accounts.permissions``); the core decides again on the write."""
    return ALERTS_EDIT.allows(account.role)


def write(ctx: PageContext, command: Callable[[Session, Actor], T]) -> T:
    """Run ``command`` in a write transaction as the page's actor; the core command checks the role
    (and refuses a customer view) in that transaction."""
    with unit_of_work(get_engine(), write=True) as session:
        return command(session, ctx.actor)


def evaluate_and_send(account_id: str) -> int:
    """Evaluate the account's rules now (a rule just made may already hold); its emails and webhooks
    go out on a background thread. Returns how many crossings fired."""
    engine = get_engine()
    with unit_of_work(engine, write=True) as session:
        result = evaluate_accounts(session, [account_id], at=system_clock())
    if result.delivery_ids:
        threading.Thread(
            target=deliver_due,
            args=(engine,),
            kwargs={"ids": result.delivery_ids},
            name="meterline-deliveries",
            daemon=True,
        ).start()
    return result.fired


def _unread(email: str, account_id: str) -> int:
    with unit_of_work(get_engine()) as session:
        require_access(session, email=email, account_id=account_id)
        return unread_count(session, email=email, account_id=account_id)


@st.fragment(run_every=BADGE_REFRESH)
def notification_badge(email: str, account_id: str) -> None:
    """The sidebar's link to the notification centre, with the unread count (refreshes itself)."""
    try:
        count = _unread(email, account_id)
    except Exception:  # the badge must never break the page around it
        return
    # A badge, not a page link: the sidebar is drawn before the pages are registered with st.navigation.
    if count:
        st.badge(f"Notifications · {count} unread", icon=":material/notifications:", color="red")
        st.caption("Read them on the Alerts page.")
    else:
        st.badge("Notifications · none unread", icon=":material/notifications_none:", color="gray")
