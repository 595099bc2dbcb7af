"""The sign-in screen: OIDC button, demo-mode user picker, or a refusal in production.

Also the screen for a provider sign-in whose email address is not verified.
"""

from __future__ import annotations

import streamlit as st

from app.auth import DemoUser, demo_users, sign_in_demo, sign_in_mode, sign_out_unverified
from app.invitations_ui import invitation_in_link, summary, utc
from app.resources import get_engine
from app.user_text import code, literal
from core.clock import system_clock

DEMO_PICK_KEY = "signin.demo_pick"
UNVERIFIED_SIGN_OUT_KEY = "auth.unverified_sign_out"
UNVERIFIED_MESSAGE = (
    "Your email address is not verified with your sign-in provider; verify it there, then sign in again."
)


def render_sign_in_to_accept() -> None:
    """The sign-in screen under an invitation's link: what it offers, and whom to sign in as; the
    address (with its token) is kept, so the invitation opens once signed in."""
    invitation = invitation_in_link()
    if invitation is not None and invitation.status(system_clock()) != "pending":
        invitation = None  # used, withdrawn or expired: the page says so once signed in
    note = "Sign in to see your invitation."
    if invitation is not None:
        note = (
            f"{summary(invitation)} Sign in as {literal(invitation.email)} to accept it "
            f"(the link works until {utc(invitation.expires_at)})."
        )
    render_sign_in(note=note, preselect=invitation.email if invitation is not None else None)


def render_sign_in(*, note: str = "", preselect: str | None = None) -> None:
    st.title("Meterline")
    st.caption("Usage and credits for your organisation")
    if note:
        st.info(note, icon=":material/mail:")
    mode = sign_in_mode()
    if mode == "oidc":
        st.write("Sign in with your company account to see your usage and credit balance.")
        if st.button("Sign in", type="primary"):
            st.login()
        return
    if mode == "refused":
        st.error(
            "Sign-in is not configured: this server runs with METERLINE_ENV=production and has no "
            "[auth] section in .streamlit/secrets.toml, so demo sign-in is turned off. "
            "An operator needs to add the OIDC settings (see .streamlit/secrets.example.toml) and restart."
        )
        return
    st.warning(
        "**Demo mode.** No sign-in provider is configured, so you can act as any seeded demo user. "
        "Do not use demo mode with real customer data: add an [auth] section to "
        ".streamlit/secrets.toml to turn on sign-in."
    )
    users = demo_users(get_engine())
    if not users:
        st.info(
            "There are no demo users yet. Seed the demo data with `meterline demo seed` "
            "(or `make run`, which seeds on first start), then reload this page."
        )
        return
    labels = {
        user.email: f"**{literal(user.name)}** · {_unlinked(user.email)}"
        if user.name != user.email
        else f"**{_unlinked(user.email)}**"
        for user in users
    }
    emails = list(labels)
    email = st.radio(
        "Sign in as",
        emails,
        index=emails.index(preselect) if preselect in labels else 0,
        format_func=labels.__getitem__,
        captions=[user.story or _memberships(user) for user in users],
        key=DEMO_PICK_KEY,
    )
    if st.button("Sign in as this demo user", type="primary") and email:
        sign_in_demo(email, get_engine())
        st.rerun()


def _unlinked(email: str) -> str:
    """The address as code: as plain Markdown it would become a mailto link, and a click on the
    option's label would then open a mail program instead of picking the user."""
    return code(email)


def _memberships(user: DemoUser) -> str:
    if user.invited_to is not None:
        account, role = user.invited_to
        return f"invited to {literal(account)} as {role}: not a member yet"
    if user.is_support:
        return "support agent"
    return f"member of {user.account_count} account{'s' if user.account_count != 1 else ''}"


def render_email_unverified() -> None:
    st.title("Meterline")
    st.error(UNVERIFIED_MESSAGE)
    if st.button("Sign out", type="primary", key=UNVERIFIED_SIGN_OUT_KEY):
        sign_out_unverified()
