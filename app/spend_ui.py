"""What the Alerts and Limits pages share: role-checked writes, the sidebar's notification badge,
and sending an evaluation's messages without making the person wait for SMTP or HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import streamlit as st
from sqlalchemy.orm import Session

from app.page import PageContext
from app.resources import get_engine
from core.accounts import AccountSummary, require_access
from core.clock import system_clock
from core.db import unit_of_work
from core.errors import PermissionDenied
from core.spend.deliveries import deliver_due
from core.spend.evaluate import evaluate_accounts
from core.spend.notifications import unread_count

T = TypeVar("T")

EDIT_ROLES = ("owner", "admin")
BADGE_REFRESH = "20s"


def can_edit(account: AccountSummary) -> bool:
    """Owners and admins change alerts, caps and the overdraft; billing and viewer see them."""
    return account.role in EDIT_ROLES


def write(ctx: PageContext, command: Callable[[Session, AccountSummary], T]) -> T:
    """Run ``command`` in a write transaction after checking, in it, that the person is an owner or admin."""
    if ctx.read_only:
        raise PermissionDenied("a customer view is read-only; act from the support console", field="role")
    with unit_of_work(get_engine(), write=True) as session:
        account = require_access(session, email=ctx.email, account_id=ctx.account_id, min_role="admin")
        return command(session, account)


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
