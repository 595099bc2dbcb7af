"""Support console: one account whole (the answer to "why is my balance X?"), and what to do about it.

Every action asks for a reason and a confirmation, runs one core command with the agent,
and lands in the audit log with the change; the page then shows the account again.

Each form is drawn with a submission id (kept in session state per form, renewed after a
success) that its widgets' keys carry and its command receives: a double click or a retry of
one submission acts once (the core answers the repeat with the first result), and a click on a
form that a success has replaced finds no button and does nothing. A success clears the form;
the tabs keep the one the agent was on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TypeVar
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from app.payments import get_payments
from app.state import start_view_as
from app.support_ui import SEARCH_PAGE, opened_account, require_console, support_read, support_write
from app.user_text import code, literal
from core.clock import system_clock
from core.db.models import CAP_PERIODS, CAP_SCOPES
from core.display import (
    credits_change_number,
    credits_help,
    credits_number,
    format_credits,
    format_date,
    format_datetime,
    zone_note,
)
from core.errors import BillingError, ValidationError
from core.money import credits_to_nanos
from core.payments.config import dollars_to_cents, format_cents
from core.payments.notify import PAYING_ROLES
from core.support import (
    Account360,
    Agent,
    ApprovalView,
    GrantOutcome,
    ReceiptResent,
    RefundDone,
    account_360,
    approve_grant,
    credit_paid_top_up_as_agent,
    grant_credits_as_agent,
    lift_cap_as_agent,
    new_submission_id,
    reactivate_account,
    reconcile_account,
    refund_top_up,
    reject_grant,
    resend_receipt,
    set_cap_as_agent,
    suspend_account,
    void_grant_as_agent,
)
from core.support.actions import RECEIPT_STATES

FLASH_KEY = "support_account.flash"
TAB_KEY = "support_account.tab"  # the selected tab, kept across reruns
WANT_TAB_KEY = "support_account.want_tab"  # the tab to show after an action (set before the tabs draw)
ACT_TAB = "Act"
DECIDE_CONFIRM = "I confirm this decision"
# The confirmation boxes' labels (an unticked box is named in the message that asks for it).
GRANT_CONFIRM = "I confirm this grant"
VOID_CONFIRM = "I confirm voiding it"
REFUND_CONFIRM = "I confirm this refund"
CREDIT_PAID_CONFIRM = "I confirm crediting this payment"
STATUS_CONFIRM = "I confirm"
RECEIPT_CONFIRM = "I confirm sending this receipt"
T = TypeVar("T")


def when(moment: datetime | None, timezone: str, *, zone: bool = True) -> str:
    """A time on the account's clock, as every time is written (``core.display``); a table leaves
    the zone out of its cells and names it once above (``zone_caption``)."""
    return "—" if moment is None else format_datetime(moment, timezone, zone=zone)


def zone_caption(view: Account360, what: str) -> None:
    st.caption(f"{what} {zone_note(view.timezone, system_clock())}.")


@dataclass(frozen=True)
class Submission:
    """One drawing of a form: its id, and the keys of its widgets (which carry the id)."""

    form: str
    submission_id: str

    @property
    def form_key(self) -> str:
        return f"support_account.{self.form}.{self.submission_id}"

    def key(self, field: str) -> str:
        return f"{self.form_key}.{field}"


def submission_key(form: str) -> str:
    return f"support_account.submission.{form}"


def submission(form: str) -> Submission:
    """The form's current submission (a new id the first time it is drawn, and after a success)."""
    key = submission_key(form)
    if key not in st.session_state:
        st.session_state[key] = new_submission_id()
    return Submission(form, str(st.session_state[key]))


def act(
    command: Callable[[], T],
    done: str | Callable[[T], str],
    *,
    sent: Submission | None = None,
    tab: str = ACT_TAB,
) -> None:
    """Run a support command; on success remember what happened, start a new submission of the form
    (an empty one) and show the account again on ``tab``; on an error keep the form as it was."""
    try:
        result = command()
    except BillingError as error:
        st.error(
            literal(f"{error.message[:1].upper()}{error.message[1:]}.")
            + (f" (field: {error.field})" if error.field else "")
        )
        return
    except ValueError as error:  # an amount that is not a number
        st.error(literal(str(error)))
        return
    st.session_state[FLASH_KEY] = done if isinstance(done, str) else done(result)
    st.session_state[WANT_TAB_KEY] = tab
    if sent is not None:
        st.session_state.pop(submission_key(sent.form), None)
    st.rerun()


def amount_nanos(text: str) -> int:
    try:
        return credits_to_nanos(text.strip() or "0")
    except ValueError as error:
        raise ValidationError(str(error), field="amount") from None


def pick(label: str, choices: dict[int, str], *, key: str) -> int | None:
    """A select box over ids, each shown by its label (the first preselected; None when empty)."""
    return st.selectbox(label, list(choices), format_func=choices.__getitem__, key=key)


def confirmed(ticked: bool, box_label: str) -> bool:
    """True when the confirmation box was ticked; otherwise says to tick it (by its own label)."""
    if not ticked:
        st.error(f"Tick “{box_label}” first.")
    return ticked


def header(view: Account360) -> None:
    st.title(literal(view.name))
    badge = {"active": ":green[active]", "suspended": ":red[suspended]"}.get(
        view.status, literal(view.status)
    )
    ids = ", ".join(code(c) for c in view.customer_ids) or "no payment customer yet"
    st.markdown(f"{code(view.account_id)} · {badge} · times in {view.timezone} · Stripe customer: {ids}")
    if st.button(
        "View as customer",
        icon=":material/visibility:",
        key="support_account.view_as",
        help="The customer's own pages, read-only; each page you open is recorded in the audit log.",
    ):
        start_view_as(view.account_id)  # the router then opens the customer's Overview
        st.rerun()
    balance, usage, grants = st.columns(3)
    balance.metric(
        "Balance",
        format_credits(view.balance.balance_nanos),
        help=credits_help(view.balance.balance_nanos),
    )
    usage.metric(
        "Usage, last 30 days",
        format_credits(view.usage_total_nanos),
        help=credits_help(view.usage_total_nanos),
    )
    grants.metric("Open grants", f"{len(view.balance.grants):,}")


def timeline_section(view: Account360) -> None:
    zone_caption(
        view,
        "Ledger entries, top-ups, payment webhooks, alerts, support actions, member changes and "
        "customer API keys, newest first.",
    )
    if not view.timeline:
        st.info("Nothing has happened on this account yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When": when(item.at, view.timezone, zone=False),
                    "Kind": item.kind,
                    "What": item.title,
                    "Change (credits)": ""
                    if item.amount_nanos is None
                    else credits_change_number(item.amount_nanos),
                    "Detail": item.detail,
                    "By": item.actor,
                }
                for item in view.timeline
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def grants_section(view: Account360) -> None:
    if not view.grants:
        st.info("No grants yet: the account has never had credits.")
        return
    zone_caption(view, "Every grant, newest first.")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Grant": f"#{g.grant_id}",
                    "Source": g.source,
                    "Amount (credits)": credits_number(g.amount_nanos),
                    "Left (credits)": credits_number(g.remaining_nanos),
                    "Expires": when(g.expires_at, view.timezone, zone=False),
                    "State": "expired or voided"
                    if g.expired
                    else ("spent" if g.remaining_nanos == 0 else "open"),
                    "By": g.created_by,
                    "Note": g.description,
                }
                for g in view.grants
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def usage_section(view: Account360) -> None:
    if not view.usage_by_day:
        st.info("No usage in the last 30 days.")
        return
    frame = pd.DataFrame(
        {
            "day": [pd.Timestamp(d.usage_date) for d in view.usage_by_day],
            "credits": [d.amount_nanos / 10**9 for d in view.usage_by_day],  # chart only; the table is exact
        }
    )
    st.bar_chart(frame, x="day", y="credits", x_label=f"Day ({view.timezone})", y_label="Credits spent")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Day": format_date(d.usage_date),
                    "Spent (credits)": credits_number(d.amount_nanos),
                    "Events": d.event_count,
                }
                for d in reversed(view.usage_by_day)
            ]
        ),
        hide_index=True,
    )


def payments_section(view: Account360) -> None:
    if not view.top_ups:
        st.info("No top-ups.")
        return
    zone_caption(view, "Top-ups, newest first: paid and refunded in dollars, credits as granted.")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Top-up": f"#{t.top_up_id}",
                    "State": t.state_label,
                    "Paid": format_cents(t.amount_cents),
                    "Credits": credits_number(t.credits_nanos),
                    "Refunded": format_cents(t.refunded_cents),
                    "Dispute": t.dispute_status or "",
                    "Started": when(t.created_at, view.timezone, zone=False),
                    "Note": t.note,
                }
                for t in view.top_ups
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def refusals_section(view: Account360) -> None:
    st.subheader("Recent authorize refusals (last 7 days)")
    st.caption(
        "Requests `POST /api/v1/authorize` said no to, counted per minute, reason, project and meter "
        "(newest first, 50 rows at most; written within a second of the refusal)."
    )
    if not view.refusals:
        st.info("No refused requests in the last 7 days.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    f"Minute ({view.timezone})": when(r.minute, view.timezone, zone=False),
                    "Reason": r.reason_label,
                    "Project": r.project or "—",
                    "Meter": r.meter or "—",
                    "Refused": r.count,
                    "Last estimated cost (credits)": credits_number(r.last_cost_nanos),
                    "Room left then (credits)": credits_number(r.last_remaining_nanos),
                }
                for r in view.refusals
            ]
        ),
        hide_index=True,
        width="stretch",
    )


CAP_SCOPE_LABELS = {"account": "Whole account", "project": "Project", "meter": "Meter", "api_key": "API key"}
CAP_PERIOD_LABELS = {"day": "Daily", "week": "Weekly (from Monday)", "month": "Monthly"}


def members_and_limits(view: Account360) -> None:
    st.subheader("Members")
    st.dataframe(
        pd.DataFrame([{"Email": m.email, "Name": m.name, "Role": m.role} for m in view.members]),
        hide_index=True,
    )
    st.subheader("Caps")
    if view.caps:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Cap": f"#{c.cap_id}",
                        "Scope": c.scope_label,
                        "Period": c.period_label,
                        "Limit (credits)": credits_number(c.limit_nanos),
                        "Mode": c.mode,
                        "State": c.state,
                    }
                    for c in view.caps
                ]
            ),
            hide_index=True,
        )
    else:
        st.caption("No caps.")
    st.subheader("Alert rules and recent firings")
    st.caption(", ".join(f"{literal(r.name)} ({r.state})" for r in view.rules) or "No alert rules.")
    if view.firings:
        zone_caption(view, "Firings, newest first.")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "When": when(f.at, view.timezone, zone=False),
                        "Event": f.event,
                        "Subject": f.subject,
                        "Message": f.message,
                    }
                    for f in view.firings
                ]
            ),
            hide_index=True,
        )


def request_summary(approval: ApprovalView, account_name: str, timezone: str) -> str:
    """The request named in full: what a decision is about (times in the account's zone, named)."""
    said = (
        f"**Request #{approval.approval_id}**: {format_credits(approval.amount_nanos)} "
        f"({approval.source}) to **{literal(account_name)}** ({code(approval.account_id)}), asked by "
        f"{literal(approval.requested_by)} on {when(approval.requested_at, timezone)}. "
        f"Their reason: “{literal(approval.reason)}”"
    )
    if approval.expires_at is not None:
        said += f" Expires {when(approval.expires_at, timezone)}."
    return said


def approvals_section(agent: Agent, view: Account360) -> None:
    for approval in view.approvals:
        with st.container(border=True, key=f"support_request_{approval.approval_id}"):
            st.markdown(request_summary(approval, view.name, view.timezone))
            if approval.duplicate_of is not None:
                st.warning(
                    f"Likely a duplicate of request #{approval.duplicate_of} (same account, amount and "
                    "reason, still pending): reject one of them unless both are meant."
                )
            if approval.requested_by == agent.email:
                st.caption("You asked for this grant: another agent approves or rejects it.")
                continue
            decision_form(agent, approval)


def decision_form(agent: Agent, approval: ApprovalView) -> None:
    sent = submission(f"decide.{approval.approval_id}")
    named = f"request #{approval.approval_id} ({format_credits(approval.amount_nanos)})"
    with st.form(sent.form_key):
        note = st.text_input(f"Your reason for deciding {named} (required)", key=sent.key("reason"))
        ticked = st.checkbox(DECIDE_CONFIRM, key=sent.key("confirm"))
        approve, reject = st.columns(2)
        approving = approve.form_submit_button(f"Approve #{approval.approval_id}", type="primary")
        rejecting = reject.form_submit_button(f"Reject #{approval.approval_id}")
    if approving:
        act(
            lambda: support_write(
                lambda s: approve_grant(
                    s,
                    agent,
                    approval_id=approval.approval_id,
                    at=system_clock(),
                    reason=note,
                    confirmed=ticked,
                    submission_id=sent.submission_id,
                )
            ),
            f"Approved request #{approval.approval_id}: {format_credits(approval.amount_nanos)} granted.",
            sent=sent,
            tab="Grants",
        )
    elif rejecting:
        act(
            lambda: support_write(
                lambda s: reject_grant(
                    s,
                    agent,
                    approval_id=approval.approval_id,
                    reason=note,
                    at=system_clock(),
                    confirmed=ticked,
                    submission_id=sent.submission_id,
                )
            ),
            f"Rejected request #{approval.approval_id}: nothing was granted.",
            sent=sent,
            tab="Grants",
        )


def grant_message(outcome: GrantOutcome) -> str:
    if outcome.grant is not None:
        return f"Granted {format_credits(outcome.grant.amount_nanos)}, grant #{outcome.grant.grant_id}."
    number = f" (request #{outcome.approval.approval_id})" if outcome.approval is not None else ""
    if outcome.granted_before_nanos:
        return (
            f"Above your limit with the {format_credits(outcome.granted_before_nanos)} you granted "
            f"this account in the last 24 hours: the grant awaits a second agent's approval{number}."
        )
    return f"Above your limit: the grant awaits a second agent's approval{number}."


def grant_form(agent: Agent, view: Account360) -> None:
    sent = submission("grant")
    with st.form(sent.form_key):
        st.markdown("**Grant credits** (goodwill or promotional)")
        amount = st.text_input("Credits", key=sent.key("amount"), placeholder="25.00")
        source = st.selectbox("Kind", ["goodwill", "promotional"], key=sent.key("source"))
        expiry = st.date_input(
            f"Expires at the start of (a day in {view.timezone}; optional)",
            value=None,
            key=sent.key("expiry"),
        )
        reason = st.text_area("Reason (required; the customer may see it)", key=sent.key("reason"))
        confirm = st.checkbox(GRANT_CONFIRM, key=sent.key("confirm"))
        submitted = st.form_submit_button("Grant credits")
    if submitted:
        if not confirmed(confirm, GRANT_CONFIRM):
            return
        zone = ZoneInfo(view.timezone)  # the customer's midnight: the day they read on their pages
        expires_at = datetime.combine(expiry, time(0), tzinfo=zone) if isinstance(expiry, date) else None

        act(
            lambda: support_write(
                lambda s: grant_credits_as_agent(
                    s,
                    agent,
                    account_id=view.account_id,
                    amount_nanos=amount_nanos(amount),
                    reason=reason,
                    at=system_clock(),
                    source=source,
                    expires_at=expires_at,
                    submission_id=sent.submission_id,
                )
            ),
            grant_message,
            sent=sent,
        )


def void_form(agent: Agent, view: Account360) -> None:
    open_grants = [
        g for g in view.grants if not g.expired and g.source != "purchased" and g.remaining_nanos > 0
    ]
    sent = submission("void")
    with st.form(sent.form_key):
        st.markdown("**Void a grant** (takes back what is left of it)")
        grant_id = pick(
            "Grant",
            {
                g.grant_id: f"#{g.grant_id} {g.source}: {format_credits(g.remaining_nanos)} left"
                for g in open_grants
            },
            key=sent.key("grant"),
        )
        reason = st.text_area("Reason (required)", key=sent.key("reason"))
        confirm = st.checkbox(VOID_CONFIRM, key=sent.key("confirm"))
        submitted = st.form_submit_button("Void grant", disabled=not open_grants)
    if submitted:
        if not confirmed(confirm, VOID_CONFIRM):
            return
        act(
            lambda: support_write(
                lambda s: void_grant_as_agent(
                    s,
                    agent,
                    grant_id=int(grant_id),
                    reason=reason,
                    at=system_clock(),
                    submission_id=sent.submission_id,
                )
            ),
            f"Grant #{grant_id} voided.",
            sent=sent,
        )


def refund_form(agent: Agent, view: Account360) -> None:
    choices = {c.top_up_id: c for c in view.refundable}
    refunded_now = {t.top_up_id: t.refunded_cents for t in view.top_ups}
    sent = submission("refund")
    with st.form(sent.form_key):
        st.markdown(
            "**Refund a top-up** (through the payment provider; its unspent credits are taken back, "
            "up to what the refund covers)"
        )
        top_up_id = pick(
            "Top-up (dollars still refundable · credits of it still unspent)",
            {top_up: choice.label for top_up, choice in choices.items()},
            key=sent.key("top_up"),
        )
        dollars = st.text_input("Dollars (empty: all that is left)", key=sent.key("amount"))
        reason = st.text_area("Reason (required)", key=sent.key("reason"))
        confirm = st.checkbox(REFUND_CONFIRM, key=sent.key("confirm"))
        submitted = st.form_submit_button("Refund", disabled=not choices)
    if not choices:
        st.caption("No paid top-up has money left to refund.")
    if submitted and confirmed(confirm, REFUND_CONFIRM):
        act(
            lambda: refund_top_up(
                get_payments(),
                agent,
                top_up_id=int(top_up_id),
                reason=reason,
                amount_cents=dollars_to_cents(dollars) if dollars.strip() else None,
                submission_id=sent.submission_id,
                seen_refunded_cents=refunded_now.get(int(top_up_id)),
            ),
            refund_message,
            sent=sent,
        )


def paid_not_credited_form(agent: Agent, view: Account360) -> None:
    """Top-ups whose money came in but whose credits were not granted: credit one, or refund it."""
    stuck = {t.top_up_id: t for t in view.top_ups if t.state == "paid"}
    if not stuck:
        return
    sent = submission("credit_paid")
    with st.form(sent.form_key):
        st.markdown(
            "**Paid, not credited**: the payment came in but its credits were not granted "
            "(the amount did not match, or the balance is at its ceiling). Credit it as bought, or "
            "refund it with the form above."
        )
        top_up_id = pick(
            "Top-up",
            {t.top_up_id: f"#{t.top_up_id}: {t.note or t.state_label}" for t in stuck.values()},
            key=sent.key("top_up"),
        )
        reason = st.text_area("Reason (required)", key=sent.key("reason"))
        confirm = st.checkbox(CREDIT_PAID_CONFIRM, key=sent.key("confirm"))
        submitted = st.form_submit_button("Credit it")
    if submitted and confirmed(confirm, CREDIT_PAID_CONFIRM):
        act(
            lambda: support_write(
                lambda s: credit_paid_top_up_as_agent(
                    s,
                    agent,
                    top_up_id=int(top_up_id),
                    reason=reason,
                    at=system_clock(),
                    submission_id=sent.submission_id,
                )
            ),
            lambda outcome: f"Top-up #{top_up_id}: {outcome.replace('_', ' ')}.",
            sent=sent,
        )


def admin_forms(agent: Agent, view: Account360) -> None:
    if not agent.is_admin:
        st.caption("Refunds, caps and suspending accounts need the support admin role.")
        return
    refund_form(agent, view)
    paid_not_credited_form(agent, view)
    sent = submission("cap")
    with st.form(sent.form_key):
        st.markdown("**Set a cap** (one per scope, value and period: setting it again changes it)")
        scope = st.selectbox(
            "Scope", list(CAP_SCOPES), format_func=CAP_SCOPE_LABELS.__getitem__, key=sent.key("scope")
        )
        scope_value = st.text_input(
            "Project, meter or API key (as usage names it; empty for the whole account)",
            key=sent.key("scope_value"),
        )
        period = st.selectbox(
            "Period",
            list(CAP_PERIODS),
            index=2,
            format_func=CAP_PERIOD_LABELS.__getitem__,
            key=sent.key("period"),
        )
        limit = st.text_input("Limit (credits)", key=sent.key("limit"))
        mode = st.selectbox("Mode", ["hard", "soft"], key=sent.key("mode"))
        reason = st.text_area("Reason (required)", key=sent.key("reason"))
        submitted = st.form_submit_button("Set cap")
    if submitted:
        act(
            lambda: support_write(
                lambda s: set_cap_as_agent(
                    s,
                    agent,
                    account_id=view.account_id,
                    scope=scope,
                    scope_value=scope_value if scope != "account" else "",
                    period=period,
                    limit=limit,
                    mode=mode,
                    reason=reason,
                    at=system_clock(),
                    submission_id=sent.submission_id,
                )
            ),
            "Cap set.",
            sent=sent,
        )
    if view.caps:
        lift = submission("lift")
        with st.form(lift.form_key):
            st.markdown("**Lift a cap**")
            cap_id = pick(
                "Cap",
                {
                    c.cap_id: f"#{c.cap_id} {c.scope_label}, {c.period_label}: "
                    f"{format_credits(c.limit_nanos)}"
                    for c in view.caps
                },
                key=lift.key("cap"),
            )
            reason = st.text_area("Reason (required)", key=lift.key("reason"))
            submitted = st.form_submit_button("Lift cap")
        if submitted:
            act(
                lambda: support_write(
                    lambda s: lift_cap_as_agent(
                        s,
                        agent,
                        account_id=view.account_id,
                        cap_id=int(cap_id),
                        reason=reason,
                        at=system_clock(),
                        submission_id=lift.submission_id,
                    )
                ),
                f"Cap #{cap_id} lifted.",
                sent=lift,
            )
    suspended = view.status == "suspended"
    status = submission("status")
    with st.form(status.form_key):
        st.markdown(
            "**Reactivate the account**" if suspended else "**Suspend the account** (authorize refuses)"
        )
        reason = st.text_area("Reason (required)", key=status.key("reason"))
        confirm = st.checkbox(STATUS_CONFIRM, key=status.key("confirm"))
        submitted = st.form_submit_button("Reactivate" if suspended else "Suspend")
    if submitted and confirmed(confirm, STATUS_CONFIRM):
        command = reactivate_account if suspended else suspend_account
        act(
            lambda: support_write(
                lambda s: command(
                    s,
                    agent,
                    account_id=view.account_id,
                    reason=reason,
                    at=system_clock(),
                    submission_id=status.submission_id,
                )
            ),
            "Account reactivated." if suspended else "Account suspended.",
            sent=status,
        )


def refund_message(done: RefundDone) -> str:
    if not done.refunded_cents:
        return f"Top-up #{done.top_up_id} was refunded already (same request): nothing more was refunded."
    said = (
        f"Refunded {format_cents(done.refunded_cents)} of top-up #{done.top_up_id} through the payment "
        f"provider: {format_credits(done.reversed_nanos)} taken back."
    )
    if done.debt_restored_nanos:
        said += (
            f" The purchase had paid off {format_credits(done.debt_restored_nanos)} of usage from before it: "
            "that negative balance is back."
        )
    if done.spent_nanos:
        said += (
            f" {format_credits(done.spent_nanos)} of it were already used and stay used; "
            "the customer and support were told."
        )
    return said + " With Stripe the money reaches the card in 5–10 business days."


def receipt_message(sent: ReceiptResent) -> str:
    to = literal(", ".join(sent.recipients))
    if sent.repeated and len(sent.repeated) == len(sent.recipients):
        return f"The receipt for top-up #{sent.top_up_id} had just gone to {to}: nothing was sent again."
    if sent.sent_by == "stripe":
        return (
            f"Stripe is emailing the receipt for top-up #{sent.top_up_id} to {to}. If it has not arrived "
            "in a few minutes, check the address with the customer (and their spam folder)."
        )
    if sent.sent_by == "portal":
        return f"Receipt for top-up #{sent.top_up_id} emailed to {to}."
    link = f" Send the customer its link yourself: {sent.receipt_url}" if sent.receipt_url else ""
    return f"Recorded, but not emailed: this server has no SMTP_URL.{link}"


def receipt_form(agent: Agent, view: Account360) -> None:
    paid = [t for t in view.top_ups if t.state in RECEIPT_STATES]
    payers = ", ".join(m.email for m in view.members if m.role in PAYING_ROLES) or "nobody"
    sent = submission("receipt")
    with st.form(sent.form_key):
        st.markdown("**Resend a receipt** (of a paid top-up; Stripe emails it, or the portal in the sandbox)")
        top_up_id = pick(
            "Top-up",
            {
                t.top_up_id: f"#{t.top_up_id}: {format_cents(t.amount_cents)} paid "
                + when(t.credited_at or t.created_at, view.timezone)
                for t in paid
            },
            key=sent.key("top_up"),
        )
        email = st.text_input(
            f"Send to (empty: the owners, admins and billing members: {literal(payers)})",
            key=sent.key("email"),
        )
        reason = st.text_area("Reason (required)", key=sent.key("reason"))
        confirm = st.checkbox(RECEIPT_CONFIRM, key=sent.key("confirm"))
        submitted = st.form_submit_button("Resend receipt", disabled=not paid)
    if not paid:
        st.caption("No paid top-ups yet: nothing has a receipt.")
    if submitted and confirmed(confirm, RECEIPT_CONFIRM):
        act(
            lambda: resend_receipt(
                get_payments(),
                agent,
                top_up_id=int(top_up_id),
                reason=reason,
                email=email or None,
                submission_id=sent.submission_id,
            ),
            receipt_message,
            sent=sent,
        )


def reconcile_form(agent: Agent, view: Account360) -> None:
    sent = submission("reconcile")  # asking the provider again is safe: the id only clears the form
    with st.form(sent.form_key):
        st.markdown("**Re-run payment reconciliation** (asks the provider about open top-ups now)")
        reason = st.text_input("Reason (required)", key=sent.key("reason"))
        submitted = st.form_submit_button("Reconcile")
    if submitted:
        act(
            lambda: reconcile_account(get_payments(), agent, account_id=view.account_id, reason=reason),
            "Reconciliation ran; see the timeline.",
            sent=sent,
            tab="Timeline",
        )


agent = require_console()
account_id = opened_account()
if account_id is None:
    st.title("Account")
    st.info("Open an account from the search first.")
    st.page_link(SEARCH_PAGE, label="Find an account", icon=":material/search:")
    st.stop()
try:
    view = support_read(lambda session: account_360(session, agent, str(account_id), at=system_clock()))
except BillingError as error:
    st.error(literal(error.message))  # it quotes the id from the address
    st.page_link(SEARCH_PAGE, label="Find an account", icon=":material/search:")
    st.stop()

if flash := st.session_state.pop(FLASH_KEY, None):
    st.success(flash)
header(view)
approvals_section(agent, view)
if wanted := st.session_state.pop(WANT_TAB_KEY, None):
    st.session_state[TAB_KEY] = wanted  # before the tabs draw: the result's tab stays open
timeline_tab, grants_tab, usage_tab, refusals_tab, payments_tab, more_tab, act_tab = st.tabs(
    ["Timeline", "Grants", "Usage", "API refusals", "Top-ups", "Members, caps, alerts", ACT_TAB],
    key=TAB_KEY,
    on_change="rerun",
)
with timeline_tab:
    timeline_section(view)
with grants_tab:
    grants_section(view)
with usage_tab:
    usage_section(view)
with refusals_tab:
    refusals_section(view)
with payments_tab:
    payments_section(view)
with more_tab:
    members_and_limits(view)
with act_tab:
    grant_form(agent, view)
    void_form(agent, view)
    reconcile_form(agent, view)
    receipt_form(agent, view)
    admin_forms(agent, view)
