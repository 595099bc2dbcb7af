"""Members: who belongs to the account, with their role and last sign-in; invitations; role changes.

Owners and admins invite people by email with a role, see and revoke pending invitations, change
a role and remove a member (admins leave owners alone: ``owners.edit``); billing and viewer
members, and a support agent viewing the account as its customer, see the lists only. The core
decides again on every write (``core.accounts.members``, ``core.accounts.invitations``).

Each form is drawn with a submission id (in session state, renewed after a success) that its
widgets' keys carry and its command receives: a double click or a retry acts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from app.page import READ_ONLY_HELP, PageContext, error_text, page_context, read
from app.payments_ui import base_url
from app.resources import get_engine
from app.spend_ui import write
from app.user_text import literal
from core.accounts import AccountSummary
from core.accounts.invitations import (
    InvitationView,
    Invited,
    invitation_ttl,
    invite_member,
    open_invitations,
    revoke_invitation,
)
from core.accounts.members import MemberChange, MemberRow, change_role, list_members, remove_member
from core.accounts.permissions import MEMBERS_EDIT, OWNERS_EDIT
from core.clock import system_clock
from core.db.models import ROLES
from core.display import format_datetime, zone_note
from core.errors import BillingError
from core.payments import payment_config
from core.sessions import session_secret
from core.spend.channels import smtp_settings
from core.support.once import new_submission_id

FLASH_KEY = "members.flash"
REMOVE_CONFIRM = "I confirm removing this member"
ROLE_HELP = {
    "owner": "Owner: everything, including owners",
    "admin": "Admin: everything but owners",
    "billing": "Billing: buys credits; sees everything",
    "viewer": "Viewer: sees everything, changes nothing",
}


@dataclass(frozen=True)
class MembersData:
    account: AccountSummary
    members: list[MemberRow]
    invitations: list[InvitationView]


def load(session: Session, account: AccountSummary) -> MembersData:
    return MembersData(
        account, list_members(session, account.account_id), open_invitations(session, account.account_id)
    )


def local(moment: datetime | None, timezone: str) -> str:
    """ "Dec 7, 2026, 04:48" in the account's zone (named once under the table), or "never"."""
    return "never" if moment is None else format_datetime(moment, timezone, zone=False)


def submission(form: str) -> str:
    """The form's current submission id (a new one the first time it is drawn, and after a success)."""
    key = f"members.submission.{form}"
    if key not in st.session_state:
        st.session_state[key] = new_submission_id()
    return str(st.session_state[key])


def succeeded(form: str, flash: dict[str, str]) -> None:
    """Remember what happened, start a new submission of the form (an empty one), and draw again."""
    st.session_state[FLASH_KEY] = flash
    st.session_state.pop(f"members.submission.{form}", None)
    st.rerun()


def failed(error: BillingError) -> None:
    field = f" (field: {error.field})" if error.field else ""
    st.error(f"{error_text(error)}{field}. Nothing was changed.")


def show_flash() -> None:
    flash = st.session_state.pop(FLASH_KEY, None)
    if not flash:
        return
    st.success(flash["text"], icon=":material/check_circle:")
    if flash.get("link"):
        st.code(flash["link"], language=None, wrap_lines=True)
        st.caption(flash.get("link_help", ""))


def members_section(data: MembersData) -> None:
    tz = data.account.timezone
    st.dataframe(
        pd.DataFrame(
            {
                "Name": [m.name for m in data.members],
                "Email": [m.email for m in data.members],
                "Role": [m.role for m in data.members],
                "Member since": [local(m.joined_at, tz) for m in data.members],
                "Last sign-in": [local(m.last_signed_in_at, tz) for m in data.members],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        f"{zone_note(tz, system_clock())}. Last sign-in: when a portal session of theirs last started."
    )


def invitations_section(data: MembersData) -> None:
    st.subheader("Pending invitations")
    if not data.invitations:
        st.caption("No invitation is waiting to be accepted.")
        return
    now = system_clock()
    tz = data.account.timezone
    st.caption(f"{zone_note(tz, now)}.")
    st.dataframe(
        pd.DataFrame(
            {
                "Email": [i.email for i in data.invitations],
                "Role": [i.role for i in data.invitations],
                "Invited by": [i.invited_by for i in data.invitations],
                "Sent": [local(i.created_at, tz) for i in data.invitations],
                "Expires": [local(i.expires_at, tz) for i in data.invitations],
                "Status": [i.status(now) for i in data.invitations],
            }
        ),
        hide_index=True,
        width="stretch",
    )


def emails_configured() -> bool:
    try:
        return smtp_settings() is not None
    except ValueError:  # SMTP_URL set but unreadable: the invitation says it was not sent
        return True


def invited_flash(invited: Invited) -> dict[str, str]:
    view = invited.invitation
    until = format_datetime(view.expires_at, "UTC")
    if invited.emailed:
        return {
            "text": f"Invitation emailed to {literal(view.email)} as {view.role}; "
            f"the link works until {until}."
        }
    return {
        "text": f"Invitation for {literal(view.email)} as {view.role} created.",
        "link": invited.link,
        "link_help": (
            f"Email is not configured on this server (SMTP_URL), so send this link yourself: it works once, "
            f"for {literal(view.email)} signed in, until {until}."
        ),
    }


def invite_form(ctx: PageContext, data: MembersData) -> None:
    sent = submission("invite")
    roles = [r for r in ROLES if r != "owner" or OWNERS_EDIT.allows(data.account.role)]
    by_email = emails_configured()
    with st.form(f"members.invite.{sent}"):
        st.markdown("**Invite someone**")
        email = st.text_input("Email", key=f"members.invite.{sent}.email", placeholder="name@example.com")
        role = st.selectbox(
            "Role",
            roles,
            index=roles.index("viewer"),
            format_func=ROLE_HELP.__getitem__,
            key=f"members.invite.{sent}.role",
        )
        days = invitation_ttl().days
        st.caption(
            f"The link works once, for that email signed in, for {days} day{'s' if days != 1 else ''}. "
            + ("It is emailed to them." if by_email else "Email is not configured: you get the link to send.")
        )
        submitted = st.form_submit_button(
            "Send invitation" if by_email else "Create invitation link", type="primary"
        )
    if not submitted:
        return
    secret = session_secret(get_engine())
    link_base = base_url(payment_config().public_url)
    try:
        invited = write(
            ctx,
            lambda s, actor: invite_member(
                s,
                actor,
                account_id=ctx.account_id,
                email=email,
                role=role or "viewer",
                submission_id=sent,
                secret=secret,
                link_base=link_base,
                at=system_clock(),
            ),
        )
    except BillingError as error:
        failed(error)
        return
    succeeded("invite", invited_flash(invited))


def revoke_form(ctx: PageContext, data: MembersData) -> None:
    may_owners = OWNERS_EDIT.allows(data.account.role)
    choices = {i.invitation_id: i for i in data.invitations if may_owners or i.role != "owner"}
    if not choices:
        return
    sent = submission("revoke")
    now = system_clock()
    with st.form(f"members.revoke.{sent}"):
        st.markdown("**Revoke an invitation** (its link stops working)")
        chosen = st.selectbox(
            "Invitation",
            list(choices),
            format_func=lambda i: f"{choices[i].email} · {choices[i].role} · {choices[i].status(now)}",
            key=f"members.revoke.{sent}.invitation",
        )
        submitted = st.form_submit_button("Revoke invitation")
    if not submitted or chosen is None:
        return
    try:
        revoked = write(
            ctx,
            lambda s, actor: revoke_invitation(
                s,
                actor,
                account_id=ctx.account_id,
                invitation_id=chosen,
                submission_id=sent,
                at=system_clock(),
            ),
        )
    except BillingError as error:
        failed(error)
        return
    succeeded(
        "revoke",
        {"text": f"The invitation of {literal(revoked.email)} is revoked: its link no longer works."},
    )


def changeable(data: MembersData) -> dict[str, MemberRow]:
    """The members this viewer may change or remove (admins leave owners alone)."""
    may_owners = OWNERS_EDIT.allows(data.account.role)
    return {m.email: m for m in data.members if may_owners or m.role != "owner"}


def role_form(ctx: PageContext, data: MembersData) -> None:
    members = changeable(data)
    if not members:
        return
    roles = [r for r in ROLES if r != "owner" or OWNERS_EDIT.allows(data.account.role)]
    sent = submission("role")
    with st.form(f"members.role.{sent}"):
        st.markdown("**Change a role**")
        email = st.selectbox(
            "Member",
            list(members),
            format_func=lambda e: f"{members[e].name} · {e} · {members[e].role}",
            key=f"members.role.{sent}.member",
        )
        role = st.selectbox(
            "New role", roles, format_func=ROLE_HELP.__getitem__, key=f"members.role.{sent}.role"
        )
        submitted = st.form_submit_button("Change role")
    if not submitted or email is None or role is None:
        return
    try:
        change: MemberChange = write(
            ctx,
            lambda s, actor: change_role(
                s,
                actor,
                account_id=ctx.account_id,
                email=email,
                role=role,
                submission_id=sent,
                at=system_clock(),
            ),
        )
    except BillingError as error:
        failed(error)
        return
    text = (
        f"{literal(change.email)} is now {change.role_after} (was {change.role_before})."
        if change.changed
        else f"{literal(change.email)} already was {change.role_before}: nothing changed."
    )
    succeeded("role", {"text": text})


def remove_form(ctx: PageContext, data: MembersData) -> None:
    members = changeable(data)
    if not members:
        return
    sent = submission("remove")
    with st.form(f"members.remove.{sent}"):
        st.markdown("**Remove a member** (they lose access to this account at once)")
        email = st.selectbox(
            "Member",
            list(members),
            format_func=lambda e: f"{members[e].name} · {e} · {members[e].role}",
            key=f"members.remove.{sent}.member",
        )
        confirm = st.checkbox(REMOVE_CONFIRM, key=f"members.remove.{sent}.confirm")
        submitted = st.form_submit_button("Remove member")
    if not submitted or email is None:
        return
    if not confirm:
        st.error(f"Tick “{REMOVE_CONFIRM}” to remove {literal(email)}. Nothing was changed.")
        return
    try:
        removed = write(
            ctx,
            lambda s, actor: remove_member(
                s, actor, account_id=ctx.account_id, email=email, submission_id=sent, at=system_clock()
            ),
        )
    except BillingError as error:
        failed(error)
        return
    succeeded(
        "remove", {"text": f"{literal(removed.email)} ({removed.role_before}) was removed from the account."}
    )


def render() -> None:
    st.title("Members")
    ctx = page_context()
    if ctx is None:
        return
    try:
        data = read(ctx, load)
    except BillingError as error:
        failed(error)
        return
    st.caption(f"Who can sign in to {literal(data.account.name)}, and what each may do.")
    show_flash()
    members_section(data)
    editor = not ctx.read_only and MEMBERS_EDIT.allows(data.account.role)
    if ctx.read_only:
        st.caption(READ_ONLY_HELP)
    elif not editor:
        st.info(
            f"Read-only: owners and admins invite people and change roles; your role is {data.account.role}.",
            icon=":material/visibility:",
        )
        return
    invitations_section(data)
    if not editor:
        return
    if data.account.role == "admin":
        st.caption("As an admin you invite, change and remove everyone but owners; owners do that.")
    invite_form(ctx, data)
    revoke_form(ctx, data)
    role_form(ctx, data)
    remove_form(ctx, data)


render()
