"""Limits: monthly spend caps (soft or hard), spend against each, the overshoot, and the overdraft."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import streamlit as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.page import READ_ONLY_HELP, PageContext, error_text, page_context, read, show_error
from app.spend_ui import can_edit, evaluate_and_send, write
from app.user_text import literal
from core.accounts import AccountSummary
from core.clock import system_clock
from core.db.models import CAP_SCOPES, Meter
from core.display import format_credits
from core.errors import BillingError
from core.money import nanos_to_credits
from core.spend.caps import CapStatus, cap_statuses, delete_cap, overdraft_nanos, set_cap, set_overdraft
from core.spend.measure import Period, period_of
from core.usage.ranges import describe_dates

FLASH_KEY = "limits.flash"
SCOPE_LABELS = {"account": "Whole account", "project": "Project", "meter": "Meter"}
MODE_LABELS = {"hard": "Hard: authorize refuses once reached", "soft": "Soft: notify only"}


@dataclass(frozen=True)
class LimitsData:
    account: AccountSummary
    caps: list[CapStatus]
    period: Period
    overdraft_nanos: int
    meters: list[str]


def load(session: Session, account: AccountSummary, *, at: datetime) -> LimitsData:
    return LimitsData(
        account,
        cap_statuses(session, account.account_id, at=at),
        period_of(account.timezone, at),
        overdraft_nanos(session, account.account_id),
        list(session.scalars(select(Meter.name).order_by(Meter.name))),
    )


def local(moment: datetime | None, timezone: str) -> str:
    if moment is None:
        return "—"
    return pd.Timestamp(moment).tz_convert(timezone).strftime("%b %d, %Y %H:%M")


def used_percent(status: CapStatus) -> str:
    return f"{status.spent_nanos * 100 // status.cap.limit_nanos:,}%"


def caps_section(data: LimitsData) -> None:
    period_text = f"{describe_dates(data.period.start, data.period.today)} ({data.period.timezone})"
    st.subheader("Monthly spend caps")
    st.caption(
        f"Spend this month so far: {period_text}. Caps start over on "
        f"{local(data.period.resets_at, data.account.timezone)}."
    )
    if not data.caps:
        st.info(
            "No caps yet. A hard cap makes POST /api/v1/authorize refuse once this month's spend reaches it; "
            "a soft cap only notifies. "
            + (
                "Set one below."
                if can_edit(data.account)
                else "Owners and admins of this account can set them."
            )
        )
        return
    tz = data.account.timezone
    st.dataframe(
        pd.DataFrame(
            {
                "Scope": [c.cap.scope_label for c in data.caps],
                "Mode": ["Hard" if c.cap.mode == "hard" else "Soft" for c in data.caps],
                "Cap": [format_credits(c.cap.limit_nanos) for c in data.caps],
                "Spent this month": [format_credits(c.spent_nanos) for c in data.caps],
                "Used": [used_percent(c) for c in data.caps],
                "Remaining": [format_credits(c.remaining_nanos) for c in data.caps],
                "Overshoot": [
                    format_credits(c.overshoot_nanos) if c.overshoot_nanos else "—" for c in data.caps
                ],
                "Reached": [local(c.reached_at, tz) for c in data.caps],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    for status in data.caps:
        if status.overshoot_nanos and status.cap.mode == "hard":
            over, cap = format_credits(status.overshoot_nanos), format_credits(status.cap.limit_nanos)
            st.warning(
                f"{literal(status.cap.scope_label.capitalize())}: usage went {over} past the {cap} hard cap. "
                "Usage is always recorded, never dropped; the overshoot is what your services sent "
                "after authorize started refusing (or without asking it)."
            )
        elif status.spent_nanos >= status.cap.limit_nanos:
            st.warning(
                f"{literal(status.cap.scope_label.capitalize())} reached its "
                f"{format_credits(status.cap.limit_nanos)} {status.cap.mode} cap this month."
            )


def edit_caps(ctx: PageContext, data: LimitsData) -> None:
    now = system_clock()
    with st.expander("Set a cap", expanded=not data.caps):
        scopes = list(CAP_SCOPES)
        scope = st.selectbox("Scope", scopes, format_func=SCOPE_LABELS.__getitem__, key="limits.scope")
        with st.form("limits.cap_form"):
            value = ""
            if scope == "meter":
                value = st.selectbox("Meter", data.meters, key="limits.meter") or ""
            elif scope == "project":
                value = st.text_input("Project", key="limits.project")
            limit = st.text_input("Monthly cap (credits, $)", key="limits.limit", placeholder="500")
            mode = st.radio("Mode", list(MODE_LABELS), format_func=MODE_LABELS.__getitem__, key="limits.mode")
            st.caption("Setting a cap on a scope that has one changes it.")
            if st.form_submit_button("Save cap", type="primary"):
                try:
                    saved = write(
                        ctx,
                        lambda s, actor: set_cap(
                            s,
                            account_id=ctx.account_id,
                            scope=scope,
                            scope_value=value,
                            limit=limit,
                            mode=mode,
                            actor=actor,
                            at=now,
                        ),
                    )
                    evaluate_and_send(ctx.account_id)
                except BillingError as error:
                    field = f" (field: {error.field})" if error.field else ""
                    st.error(f"{error_text(error)}{field}. Nothing was saved.")
                else:
                    amount = format_credits(saved.limit_nanos)
                    st.session_state[FLASH_KEY] = (
                        f"{saved.mode.title()} cap of {amount} set on {literal(saved.scope_label)}."
                    )
                    st.rerun()
    if data.caps:
        with st.expander("Remove a cap"):
            caps = {
                c.cap.cap_id: f"{c.cap.scope_label} ({format_credits(c.cap.limit_nanos)}, {c.cap.mode})"
                for c in data.caps
            }
            chosen = st.selectbox("Cap", list(caps), format_func=caps.__getitem__, key="limits.remove_pick")
            if st.button("Remove cap", key="limits.remove"):
                try:
                    write(
                        ctx,
                        lambda s, actor: delete_cap(
                            s, account_id=ctx.account_id, cap_id=chosen, actor=actor, at=now
                        ),
                    )
                except BillingError as error:
                    show_error(error)
                else:
                    st.session_state[FLASH_KEY] = "Cap removed."
                    st.rerun()


def overdraft_section(ctx: PageContext, data: LimitsData) -> None:
    st.subheader("Overdraft allowance")
    if data.overdraft_nanos:
        st.write(
            f"Authorize keeps allowing requests until the balance is {format_credits(-data.overdraft_nanos)} "
            f"(an overdraft of {format_credits(data.overdraft_nanos)})."
        )
    else:
        st.write("No overdraft: once no credits are left, authorize answers `insufficient_credits`.")
    if not can_edit(data.account):
        return
    with st.form("limits.overdraft_form"):
        amount = st.text_input(
            "Overdraft allowance (credits, $; 0 turns it off)",
            value=format(nanos_to_credits(data.overdraft_nanos).normalize(), "f"),
            key="limits.overdraft",
        )
        if st.form_submit_button("Save overdraft"):
            try:
                write(
                    ctx,
                    lambda s, actor: set_overdraft(
                        s, account_id=ctx.account_id, overdraft=amount, actor=actor, at=system_clock()
                    ),
                )
            except BillingError as error:
                show_error(error)
            else:
                st.session_state[FLASH_KEY] = "Overdraft allowance saved."
                st.rerun()


st.title("Limits")
context = page_context()
if context is None:
    st.stop()
moment = system_clock()
try:
    limits_data = read(context, lambda session, account: load(session, account, at=moment))
except BillingError as error:
    show_error(error)
    st.stop()

st.caption(f"{literal(limits_data.account.name)} · as of {moment.astimezone(UTC):%H:%M:%S} UTC")
flash_message = st.session_state.pop(FLASH_KEY, None)
if flash_message:
    st.success(flash_message)
caps_section(limits_data)
if can_edit(limits_data.account):
    edit_caps(context, limits_data)
elif context.read_only:
    st.caption(READ_ONLY_HELP)
else:
    st.caption(f"Your role ({limits_data.account.role}) can see caps; owners and admins can change them.")
overdraft_section(context, limits_data)
st.caption(
    "Your gateway asks POST /api/v1/authorize before serving a request: it answers allowed or not, why "
    "(hard_cap_reached, insufficient_credits, account_suspended), the headroom left and when caps reset."
)
