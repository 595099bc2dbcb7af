"""Limits: spend caps (soft or hard; on the account, a project, a meter or an API key; per day,
week or month), spend against each, the overshoot, the budget that binds first per API key and
project, and the overdraft.

Caps name their project, meter or API key from what the account's usage carries (a typo would
protect nothing); removing a cap asks first. Owners and admins change them; everyone else reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.credits_table import money_column, styled
from app.live import as_of
from app.page import READ_ONLY_HELP, PageContext, page_context, read, show_error
from app.spend_ui import (
    evaluate_and_send,
    field_error,
    may,
    scope_value_picker,
    unused_confirmed,
    unused_refusal,
    write,
)
from app.user_text import literal
from core.accounts import AccountSummary
from core.clock import system_clock
from core.db.models import CAP_PERIODS, CAP_SCOPES, Meter
from core.display import format_credits, format_datetime, zone_note
from core.errors import BillingError
from core.money import nanos_to_credits
from core.spend.budget_stack import BudgetLine, budget_stack
from core.spend.caps import (
    PERIOD_NOUNS,
    CapStatus,
    cap_statuses,
    delete_cap,
    overdraft_nanos,
    set_cap,
    set_overdraft,
)
from core.spend.measure import Period, period_of
from core.usage.exports import nanos_decimal
from core.usage.views import NO_VALUE, dimension_values, values_used

FLASH_KEY = "limits.flash"
REMOVING_KEY = "limits.removing"  # the cap whose removal waits for a yes
SCOPE_LABELS = {"account": "Whole account", "project": "Project", "meter": "Meter", "api_key": "API key"}
MODE_LABELS = {"hard": "Hard: authorize refuses once reached", "soft": "Soft: notify only"}
PERIOD_CHOICES = {"day": "Daily", "week": "Weekly (Monday to Sunday)", "month": "Monthly"}
PERIOD_COLUMN = {"day": "Day", "week": "Week", "month": "Month"}
LIMIT_LABEL = "Cap (credits)"
OVERDRAFT_LABEL = "Overdraft allowance (credits; 0 turns it off)"
PROTECTS = "this cap protects nothing"
CAP_FIELDS = {"limit": LIMIT_LABEL, "mode": "Mode", "scope": "Scope", "period": "Period"}
STACK_KIND_LABELS = {"account": "Any request", "api_key": "API key", "project": "Project"}
CAP_COLUMNS = ("Spent (credits)", "Cap (credits)", "Remaining (credits)", "Overshoot (credits)")


@dataclass(frozen=True)
class LimitsData:
    account: AccountSummary
    caps: list[CapStatus]
    period: Period
    overdraft_nanos: int
    meters: dict[str, str]  # every meter of the catalogue: name → display name
    used: dict[str, list[str]]  # the meters, projects (…) the account's usage carries
    stack: list[BudgetLine]  # the budget that binds first: the account, each key and project


def load(session: Session, account: AccountSummary, *, at: datetime) -> LimitsData:
    statuses = cap_statuses(session, account.account_id, at=at)
    period = period_of(account.timezone, at)
    this_month = dimension_values(session, account.account_id, start=period.start, end=period.today)
    return LimitsData(
        account,
        statuses,
        period,
        overdraft_nanos(session, account.account_id),
        {
            name: display or name
            for name, display in session.execute(select(Meter.name, Meter.display_name).order_by(Meter.name))
        },
        values_used(session, account.account_id),
        budget_stack(
            statuses,
            api_keys=[k for k in this_month.get("api_key", []) if k != NO_VALUE],
            projects=[p for p in this_month.get("project", []) if p != NO_VALUE],
        ),
    )


def used_percent(status: CapStatus) -> str:
    return f"{status.spent_nanos * 100 // status.cap.limit_nanos:,}%"


def caps_table(data: LimitsData) -> pd.DataFrame:
    """One row per cap; on a phone the scope, its period's spend and the cap are on screen."""
    tz = data.account.timezone
    return pd.DataFrame(
        {
            "Scope": [c.cap.scope_label for c in data.caps],
            "Spent (credits)": [nanos_decimal(c.spent_nanos) for c in data.caps],
            "Cap (credits)": [nanos_decimal(c.cap.limit_nanos) for c in data.caps],
            "Period": [PERIOD_COLUMN[c.cap.period] for c in data.caps],
            "Used": [used_percent(c) for c in data.caps],
            "Mode": ["Hard" if c.cap.mode == "hard" else "Soft" for c in data.caps],
            "Remaining (credits)": [nanos_decimal(c.remaining_nanos) for c in data.caps],
            "Overshoot (credits)": [nanos_decimal(c.overshoot_nanos) for c in data.caps],
            "Reached": [
                format_datetime(c.reached_at, tz, zone=False) if c.reached_at else "—" for c in data.caps
            ],
            "Resets": [format_datetime(c.resets_at, tz, zone=False) for c in data.caps],
        }
    )


def binding_words(line: BudgetLine) -> str:
    """ "Daily cap on API key ci" / "Monthly cap on the whole account"."""
    if line.binding is None:
        return "No hard cap: only credits"
    cap = line.binding.cap
    return f"{cap.period_label.capitalize()} cap on {cap.scope_label}"


def stack_table(data: LimitsData) -> pd.DataFrame:
    """One row per API key and project (and the account): the hard cap that stops it first."""
    tz = data.account.timezone
    return pd.DataFrame(
        {
            "Requests from": [
                STACK_KIND_LABELS[line.kind] + (f" {line.value}" if line.value else "") for line in data.stack
            ],
            "Binds first": [binding_words(line) for line in data.stack],
            "Room left (credits)": pd.Series(
                [None if line.room_nanos is None else nanos_decimal(line.room_nanos) for line in data.stack],
                dtype="object",
            ),
            "Resets": [
                "—" if line.resets_at is None else format_datetime(line.resets_at, tz, zone=False)
                for line in data.stack
            ],
        }
    )


def stack_section(data: LimitsData, moment: datetime) -> None:
    """The stack as authorize applies it: for each API key and project seen this month (and each
    with a cap), the hard cap with the least room, its room, period and reset."""
    if not any(line.binding is not None for line in data.stack):
        return
    st.subheader("What stops requests first")
    st.caption(
        "A request must pass every hard cap that applies: the account's, and its API key's and "
        "project's when it names them. Here is the one with the least room for each API key and "
        f"project used this month, {as_of(moment, data.account.timezone)}. Meter caps also apply "
        "to requests naming their meter."
    )
    st.dataframe(
        styled(stack_table(data), credits=("Room left (credits)",)),
        hide_index=True,
        width="stretch",
        column_config={
            "Requests from": st.column_config.TextColumn("Requests from", pinned=True, width=140),
            "Room left (credits)": money_column("Room left (credits)"),
        },
        key="limits.stack",
    )


def caps_section(data: LimitsData, *, editable: bool) -> None:
    st.subheader("Spend caps")
    st.caption(
        "Each cap counts spend over its own period in "
        f"{data.account.timezone}: the day, the week (Monday to Sunday) or the month, and starts over "
        "when it resets. Caps stack: a request must pass every hard cap that applies to it."
    )
    if not data.caps:
        st.info(
            "No caps yet. A hard cap makes POST /api/v1/authorize refuse once its period's spend reaches "
            "it; a soft cap only notifies. "
            + ("Set one below." if editable else "Owners and admins of this account can set them.")
        )
        return
    st.caption(zone_note(data.account.timezone, system_clock()))
    st.dataframe(
        styled(caps_table(data), credits=CAP_COLUMNS),
        hide_index=True,
        width="stretch",
        column_config={
            "Scope": st.column_config.TextColumn("Scope", pinned=True, width=120),
            "Spent (credits)": money_column("Spent (credits)", help="This period so far", width=110),
            "Cap (credits)": money_column("Cap (credits)", width=100),
            "Remaining (credits)": money_column("Remaining (credits)"),
            "Overshoot (credits)": money_column("Overshoot (credits)"),
        },
        key="limits.caps",
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
                f"{format_credits(status.cap.limit_nanos)} {status.cap.period_label} {status.cap.mode} cap "
                f"{PERIOD_NOUNS[status.cap.period]}."
            )


def set_cap_form(ctx: PageContext, data: LimitsData) -> None:
    with st.expander("Set a cap", expanded=not data.caps):
        scopes = list(CAP_SCOPES)
        scope = st.selectbox("Scope", scopes, format_func=SCOPE_LABELS.__getitem__, key="limits.scope")
        label = SCOPE_LABELS[scope]
        choice = None
        if scope != "account":
            choice = scope_value_picker(
                scope,
                label=label,
                used=data.used.get(scope, []),
                key=f"limits.{scope}",
                catalogue=data.meters if scope == "meter" else None,
                protects=PROTECTS,
            )
        with st.form("limits.cap_form"):
            confirmed = unused_confirmed(choice, key="limits.confirm_unused") if choice else True
            period = st.selectbox(
                "Period",
                list(CAP_PERIODS),
                index=list(CAP_PERIODS).index("month"),
                format_func=PERIOD_CHOICES.__getitem__,
                key="limits.period",
                help=f"Counted in {data.account.timezone}; a daily cap starts over at midnight.",
            )
            limit = st.text_input(LIMIT_LABEL, key="limits.limit", placeholder="500")
            mode = st.radio("Mode", list(MODE_LABELS), format_func=MODE_LABELS.__getitem__, key="limits.mode")
            st.caption(
                "Setting a cap on a scope and period that has one changes it; a key may have a daily "
                "and a monthly cap side by side."
            )
            submitted = st.form_submit_button("Save cap", type="primary")
        if not submitted:
            return
        if choice is not None and not confirmed:
            st.error(unused_refusal(choice, label=label, protects=PROTECTS))
            return
        now = system_clock()
        try:
            saved = write(
                ctx,
                lambda s, actor: set_cap(
                    s,
                    account_id=ctx.account_id,
                    scope=scope,
                    scope_value=choice.value if choice else "",
                    period=period,
                    limit=limit,
                    mode=mode,
                    actor=actor,
                    at=now,
                ),
            )
            evaluate_and_send(ctx.account_id)
        except BillingError as error:
            st.error(field_error(error, {**CAP_FIELDS, "scope_value": label}))
            return
        amount = format_credits(saved.limit_nanos)
        st.session_state[FLASH_KEY] = (
            f"{saved.mode.title()} {saved.period_label} cap of {amount} set on {literal(saved.scope_label)}."
        )
        st.rerun()


def cap_words(status: CapStatus) -> str:
    cap = status.cap
    period = "" if cap.period == "month" else f" {cap.period_label}"
    return f"the {cap.mode}{period} cap of {format_credits(cap.limit_nanos)} on {cap.scope_label}"


def remove_cap(ctx: PageContext, data: LimitsData) -> None:
    """Pick a cap, then say what removing it does and ask; only the yes removes it (once)."""
    with st.expander("Remove a cap", expanded=REMOVING_KEY in st.session_state):
        caps = {status.cap.cap_id: status for status in data.caps}
        pending = st.session_state.get(REMOVING_KEY)
        if pending in caps:
            status = caps[pending]
            consequence = (
                "authorize stops refusing requests for it at once"
                if status.cap.mode == "hard"
                else "no more notifications for it"
            )
            st.warning(
                f"Remove {literal(cap_words(status))}? {consequence.capitalize()}; its history stays.",
                icon=":material/help:",
            )
            yes, keep = st.columns(2)
            if yes.button("Yes, remove it", key="limits.remove_yes", type="primary"):
                del st.session_state[REMOVING_KEY]  # one removal per yes, whatever the clicks
                try:
                    write(
                        ctx,
                        lambda s, actor: delete_cap(
                            s, account_id=ctx.account_id, cap_id=pending, actor=actor, at=system_clock()
                        ),
                    )
                except BillingError as error:
                    show_error(error)
                    return
                st.session_state[FLASH_KEY] = f"Removed {literal(cap_words(status))}."
                st.rerun()
            if keep.button("Keep it", key="limits.remove_no"):
                del st.session_state[REMOVING_KEY]
                st.rerun()
            return
        st.session_state.pop(REMOVING_KEY, None)  # a cap removed meanwhile: nothing to ask about
        chosen = st.selectbox(
            "Cap",
            list(caps),
            format_func=lambda cap_id: cap_words(caps[cap_id]).removeprefix("the ").capitalize(),
            key="limits.remove_pick",
        )
        if st.button("Remove cap…", key="limits.remove"):
            st.session_state[REMOVING_KEY] = chosen
            st.rerun()


def overdraft_section(ctx: PageContext, data: LimitsData, *, editable: bool) -> None:
    st.subheader("Overdraft allowance")
    if data.overdraft_nanos:
        st.write(
            f"Authorize keeps allowing requests until the balance is {format_credits(-data.overdraft_nanos)} "
            f"(an overdraft of {format_credits(data.overdraft_nanos)})."
        )
    else:
        st.write("No overdraft: once no credits are left, authorize answers `insufficient_credits`.")
    if not editable:
        return
    with st.form("limits.overdraft_form"):
        amount = st.text_input(
            OVERDRAFT_LABEL,
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
                st.error(field_error(error, {"overdraft": OVERDRAFT_LABEL}))
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

st.caption(f"{literal(limits_data.account.name)} · {as_of(moment, limits_data.account.timezone)}")
flash_message = st.session_state.pop(FLASH_KEY, None)
if flash_message:
    st.success(flash_message)
caps_editable = may(context, limits_data.account, "caps.edit")
caps_section(limits_data, editable=caps_editable)
stack_section(limits_data, moment)
if caps_editable:
    set_cap_form(context, limits_data)
    if limits_data.caps:
        remove_cap(context, limits_data)
elif context.read_only:
    st.caption(READ_ONLY_HELP)
else:
    st.caption(f"Your role ({limits_data.account.role}) can see caps; owners and admins can change them.")
overdraft_section(context, limits_data, editable=may(context, limits_data.account, "overdraft.edit"))
st.caption(
    "Your gateway asks POST /api/v1/authorize before serving a request: it answers allowed or not, why "
    "(hard_cap_reached, insufficient_credits, account_suspended), the headroom left, the cap that binds "
    "(the one with the least room for that request's API key, project and meter) and when it resets."
)
