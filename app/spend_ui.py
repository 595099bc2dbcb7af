"""What the Alerts and Limits pages share: who may change what, writes as the page's actor, picking a
scope from the names the account's usage carries, errors that name the field, the sidebar's
notification badge, and sending an evaluation's messages without making the person wait for SMTP
or HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import streamlit as st
from sqlalchemy.orm import Session

from app.page import PageContext, error_text
from app.resources import get_engine
from app.user_text import literal
from core.accounts import AccountSummary, Actor, require_access
from core.accounts.permissions import ALERTS_EDIT, allowed
from core.clock import system_clock
from core.db import unit_of_work
from core.errors import BillingError
from core.spend.deliveries import deliver_due
from core.spend.evaluate import evaluate_accounts
from core.spend.notifications import unread_count

T = TypeVar("T")

BADGE_REFRESH = "20s"


def can_edit(account: AccountSummary) -> bool:
    """Whether to draw the editing controls: owners and admins change alerts, caps and the overdraft
    (the same rule for each, in ``core.accounts.permissions``); the core decides again on the write."""
    return allowed(account.role, ALERTS_EDIT.action)


def may(ctx: PageContext, account: AccountSummary, action: str) -> bool:
    """Whether this page run offers ``action`` (a key of ``core.accounts.permissions.PERMISSIONS``):
    never in a support agent's customer view (read-only), else as the role allows. The core
    decides again when the write comes."""
    return not ctx.read_only and allowed(account.role, action)


NOT_USED_YET = "\x00not used yet"  # the picker's option for a name no usage carries yet
CONFIRM_HELP = "Names are matched exactly, as your requests send them."


@dataclass(frozen=True)
class ScopeChoice:
    value: str  # "" when nothing is named yet
    used: bool  # some usage of the account already carries it


def scope_value_picker(
    kind: str,
    *,
    label: str,
    used: list[str],
    key: str,
    current: str = "",
    catalogue: Mapping[str, str] | None = None,
    protects: str,
) -> ScopeChoice:
    """Pick a project, meter or API key from those the account's usage carries (a typo then has
    nowhere to go); a name nothing uses yet only behind an explicit "not used yet" option, with a
    warning that says what that means. ``catalogue`` (meters: name → display name) lists every
    name that may be chosen at all (no typing); ``protects`` ends the warning ("this cap protects
    nothing"). Draw it outside the form, so the warning shows before anything is saved."""
    names = dict(catalogue or {})
    unused_known = [name for name in names if name not in used]
    options = [*used, *unused_known] if catalogue is not None else [*used, NOT_USED_YET]
    if current and current not in options and catalogue is None:
        st.session_state.setdefault(f"{key}.new", current)
    start = current if current in options else (NOT_USED_YET if current else None)
    word = label if label[:2].isupper() else label.lower()  # "API key" stays as it is

    def shown(option: str) -> str:
        if option == NOT_USED_YET:
            return f"Another {word}, not used yet…"
        text = names.get(option, option) if catalogue is not None else option
        return text if option in used else f"{text} (not used yet)"

    picked = st.selectbox(
        label,
        options,
        index=options.index(start) if start in options else (0 if used else None),
        format_func=shown,
        key=key,
        placeholder=f"No usage carries a {word} yet",
        help=f"The {word}s your account's usage carries. {CONFIRM_HELP}",
    )
    value = picked or ""
    if picked == NOT_USED_YET:
        value = st.text_input(f"New {word} name", key=f"{key}.new", max_chars=128).strip()
    is_used = value in used
    if value and not is_used:
        st.warning(
            f"No usage under “{literal(value)}” yet: {protects} until requests carry it. "
            f"Check the spelling against your requests.",
            icon=":material/warning:",
        )
    return ScopeChoice(value, is_used)


def unused_confirmed(choice: ScopeChoice, *, key: str) -> bool:
    """Inside the form: the explicit yes a name nothing uses yet needs (True when none is needed)."""
    if not choice.value or choice.used:
        return True
    return st.checkbox(f"Save it anyway: no usage carries “{literal(choice.value)}” yet", key=key)


def unused_refusal(choice: ScopeChoice, *, label: str, protects: str) -> str:
    """The error when the yes was not given; it names the field."""
    return (
        f"{label}: no usage under “{literal(choice.value)}” yet: {protects} until requests carry it. "
        "Pick a name from the list, or tick “Save it anyway”. Nothing was saved."
    )


def field_error(error: BillingError, labels: Mapping[str, str]) -> str:
    """A refused write, naming the field as the form labels it: "Monthly cap (credits): the cap
    must be more than zero. Nothing was saved."."""
    label = labels.get(error.field or "", "")
    text = error_text(error)
    if label:
        text = f"{label}: {text[:1].lower()}{text[1:]}"
    return f"{text}. Nothing was saved."


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
