"""Who is signed in, and what they may see.

Two modes. With an ``[auth]`` section in ``.streamlit/secrets.toml`` sign-in is
Streamlit's native OIDC (``st.login``). Without one the portal runs in *demo mode*:
the sign-in screen lets you pick a seeded user; that is refused when
``METERLINE_ENV=production``. A logged-in ``st.user`` counts as signed in either way.

The support role never comes from the database: it comes from the ``roles`` claim of
the ID token (``support`` or ``support_admin``) or from the ``METERLINE_SUPPORT_EMAILS`` and
``METERLINE_SUPPORT_ADMIN_EMAILS`` allow-lists (``core.support.agents``).

An ID token whose ``email_verified`` claim is false is not a sign-in: anyone can claim
an address they do not own at some providers, so that email is never mapped to a user
or an account (a token without the claim is trusted as before).

Sessions survive a reload. With OIDC, Streamlit's own identity cookie does it. In demo
mode the pick is kept in a signed, expiring token (``core.sessions``) that the browser
stores as an HttpOnly cookie through ``POST /session/demo``; a new session (a reload, a
new tab) reads it back. Signing out records the browser session as ended, so every other
tab of that browser is signed out on its next run too (``session_still_open``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import streamlit as st
from sqlalchemy import Engine, func, select

from core.accounts import AccountSummary, accounts_for_user
from core.accounts.members import record_sign_in
from core.clock import system_clock
from core.db import unit_of_work
from core.db.models import Account, Invitation, Membership, User
from core.demo.personas import DEMO_PERSONAS
from core.sessions import (
    SESSION_COOKIE,
    cookie_session_id,
    end_session,
    mint_token,
    read_token,
    session_ended,
    session_secret,
)
from core.support.agents import agent_level

DEMO_EMAIL_KEY = "auth.demo_email"
ENSURED_KEY = "auth.ensured_email"
SESSION_ID_KEY = "auth.session_id"  # this browser session's id (see core.sessions)
SESSION_UNTIL_KEY = "auth.session_until"  # when it would expire on its own
COOKIE_PENDING_KEY = "auth.cookie_pending"  # a demo session token to store in the browser
COOKIE_CLEAR_KEY = "auth.cookie_clear"  # the browser's session cookie is to be removed
STREAMLIT_USER_COOKIE = "_streamlit_user"
SUPPORT_ROLE = "support"
# Streamlit keeps its identity cookie 30 days: an ended OIDC session is remembered that long.
_OIDC_COOKIE_LIFETIME = timedelta(days=30)

Mode = Literal["oidc", "demo", "refused", "portal"]  # "portal": a portal session (app/embed.py)


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: identity, support flag, and the accounts they belong to."""

    email: str
    name: str
    is_support: bool
    accounts: tuple[AccountSummary, ...]
    mode: Mode
    support_level: str | None = None  # "support" | "support_admin" (core.support.agents), None for a customer

    def account(self, account_id: str) -> AccountSummary | None:
        return next((a for a in self.accounts if a.account_id == account_id), None)


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    account_count: int
    story: str = ""  # one line: what signing in as them shows
    is_support: bool = False
    invited_to: tuple[str, str] | None = (
        None  # (account name, role) of a pending invitation: not a member yet
    )


def auth_configured() -> bool:
    """True when secrets have an ``[auth]`` section (OIDC sign-in)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: Streamlit raises rather than answering False
        return False


def is_production() -> bool:
    return os.environ.get("METERLINE_ENV", "").strip().lower() == "production"


def sign_in_mode() -> Mode:
    if auth_configured():
        return "oidc"
    return "refused" if is_production() else "demo"


def support_emails() -> frozenset[str]:
    """Agents the allow-lists name: ``METERLINE_SUPPORT_EMAILS``, ``METERLINE_SUPPORT_ADMIN_EMAILS``."""
    lists = ("METERLINE_SUPPORT_EMAILS", "METERLINE_SUPPORT_ADMIN_EMAILS")
    raw = ",".join(os.environ.get(name, "") for name in lists)
    return frozenset(part.strip().lower() for part in raw.split(",") if part.strip())


def is_support(email: str, claims: Mapping[str, Any]) -> bool:
    """Support comes from the ``roles`` claim (a list or a separated string) or the allow-lists."""
    return agent_level(email, claims) is not None


def _user_claims() -> dict[str, Any]:
    try:
        return dict(st.user.to_dict())
    except Exception:
        return {}


def email_marked_unverified(claims: Mapping[str, Any]) -> bool:
    """True when ``email_verified`` is explicitly false (``False`` or "false"); a missing claim is not."""
    value = claims.get("email_verified")
    if isinstance(value, str):
        return value.strip().lower() == "false"
    return value is False


def unverified_sign_in() -> bool:
    """True when the provider signed someone in but says their email address is not verified."""
    claims = _user_claims()
    return bool(claims.get("is_logged_in")) and email_marked_unverified(claims)


def _browser_cookie(name: str) -> str | None:
    """A cookie the browser sent when this session opened (none under AppTest)."""
    try:
        value = st.context.cookies.get(name)
    except Exception:
        return None
    return value if isinstance(value, str) and value else None


def _demo_session_from_cookie(engine: Engine) -> str | None:
    """Sign this new session in from the browser's demo session cookie, if it holds a valid one."""
    token = _browser_cookie(SESSION_COOKIE)
    if not token:
        return None
    browser = read_token(session_secret(engine), token, now=system_clock())
    if browser is None:
        return None
    st.session_state[DEMO_EMAIL_KEY] = browser.email
    st.session_state[SESSION_ID_KEY] = browser.sid
    st.session_state[SESSION_UNTIL_KEY] = browser.expires_at
    return browser.email


def signed_in_identity(engine: Engine | None = None) -> tuple[str, str, dict[str, Any]] | None:
    """(email, name, claims) of whoever is signed in, or None (always None for an unverified email)."""
    claims = _user_claims()
    if claims.get("is_logged_in") and email_marked_unverified(claims):
        return None  # not even a leftover demo pick: this session belongs to someone unverified
    if claims.get("is_logged_in") and claims.get("email"):
        email = str(claims["email"]).strip().lower()
        identity_cookie = _browser_cookie(STREAMLIT_USER_COOKIE)
        if identity_cookie and SESSION_ID_KEY not in st.session_state:
            st.session_state[SESSION_ID_KEY] = cookie_session_id(identity_cookie)
        return email, str(claims.get("name") or email), claims
    if sign_in_mode() == "demo":
        email = st.session_state.get(DEMO_EMAIL_KEY)
        if not email and engine is not None and not st.session_state.get(COOKIE_CLEAR_KEY):
            email = _demo_session_from_cookie(engine)
        if email:
            return str(email), str(email), {}
    return None


def load_viewer(engine: Engine) -> Viewer | None:
    """The signed-in viewer with their accounts, read fresh on every run (never cached).

    None when nobody is signed in, or when this browser session was signed out in another tab.
    """
    identity = signed_in_identity(engine)
    if identity is None:
        return None
    if not session_still_open(engine):
        forget_sign_in()
        return None
    email, name, claims = identity
    if st.session_state.get(ENSURED_KEY) != email:
        # First run of this session for this person: create the user row if it is new, and note
        # the sign-in (the Members page's "last sign-in").
        with unit_of_work(engine, write=True) as session:
            record_sign_in(
                session, email=email, at=system_clock(), display_name=name if name != email else ""
            )
        st.session_state[ENSURED_KEY] = email
    with unit_of_work(engine) as session:
        accounts = tuple(accounts_for_user(session, email))
        display = session.scalar(select(User.display_name).where(User.email == email)) or ""
    mode: Mode = "oidc" if claims.get("is_logged_in") and auth_configured() else "demo"
    return Viewer(
        email=email,
        name=display or name,
        is_support=is_support(email, claims),
        accounts=accounts,
        mode=mode,
        support_level=agent_level(email, claims),
    )


def session_still_open(engine: Engine) -> bool:
    """False once this browser session was signed out, in this tab or another one."""
    sid = st.session_state.get(SESSION_ID_KEY)
    if not sid:
        return True
    with unit_of_work(engine) as session:
        return not session_ended(session, str(sid))


def demo_users(engine: Engine) -> list[DemoUser]:
    """The people demo mode lets you sign in as: members of an account, then support agents, then
    people invited to an account who are not members of any yet (so an invitation can be accepted).

    The demo story's people come first, in its order (Maya, the story's lead, first), each
    with one line on what they show; others follow by email.
    """
    with unit_of_work(engine) as session:
        rows = session.execute(
            select(User.email, User.display_name, func.count(Membership.account_id))
            .join(Membership, Membership.user_id == User.id)
            .group_by(User.email, User.display_name)
            .order_by(User.email)
        ).all()
        agents = sorted(support_emails())
        names: dict[str, str] = {
            email: display
            for email, display in session.execute(
                select(User.email, User.display_name).where(User.email.in_(agents))
            )
        }
        invited = session.execute(
            select(Invitation.email, Account.name, Invitation.role)
            .join(Account, Account.id == Invitation.account_id)
            .where(Invitation.state == "pending", Invitation.expires_at > system_clock())
            .order_by(Invitation.email, Invitation.id)
        ).all()
    story_order = {email: index for index, email in enumerate(DEMO_PERSONAS)}
    members = sorted(rows, key=lambda row: (story_order.get(row[0], len(story_order)), row[0]))
    users = [
        DemoUser(email, display or email, int(count), DEMO_PERSONAS.get(email, ""))
        for email, display, count in members
    ]
    known = {user.email for user in users}
    users += [
        DemoUser(
            email,
            names.get(email) or email,
            0,
            DEMO_PERSONAS.get(email, "support agent: the support console"),
            is_support=True,
        )
        for email in agents
        if email not in known
    ]
    known |= set(agents)
    for email, account_name, role in invited:
        if email not in known:
            known.add(email)
            users.append(DemoUser(email, email, 0, invited_to=(account_name, role)))
    return users


def sign_in_demo(email: str, engine: Engine) -> None:
    """Sign this session in as ``email`` and have the browser keep it (a signed, expiring cookie)."""
    if sign_in_mode() != "demo":
        raise RuntimeError("demo sign-in is only available in demo mode")
    now = system_clock()
    token = mint_token(session_secret(engine), email, now=now)
    browser = read_token(session_secret(engine), token, now=now)
    assert browser is not None, "a token just minted reads back"
    st.session_state[DEMO_EMAIL_KEY] = email
    st.session_state[SESSION_ID_KEY] = browser.sid
    st.session_state[SESSION_UNTIL_KEY] = browser.expires_at
    st.session_state[COOKIE_PENDING_KEY] = token
    st.session_state.pop(COOKIE_CLEAR_KEY, None)


def forget_sign_in() -> None:
    """Drop what this session remembers about who signed in (demo pick, user row ensured)."""
    for key in (DEMO_EMAIL_KEY, ENSURED_KEY, SESSION_ID_KEY, SESSION_UNTIL_KEY, COOKIE_PENDING_KEY):
        st.session_state.pop(key, None)


def _end_browser_session(engine: Engine) -> None:
    """Record this browser session as signed out, so its other tabs sign out too."""
    sid = st.session_state.get(SESSION_ID_KEY)
    if not sid:
        return
    now = system_clock()
    until = st.session_state.get(SESSION_UNTIL_KEY)
    if not isinstance(until, datetime):
        until = now + _OIDC_COOKIE_LIFETIME
    end_session(engine, str(sid), until=until, now=now)


def sign_out(viewer: Viewer, engine: Engine) -> None:
    """Sign out everywhere in this browser: this tab now, the others on their next run."""
    _end_browser_session(engine)
    forget_sign_in()
    if viewer.mode == "oidc":
        st.logout()
    else:
        st.session_state[COOKIE_CLEAR_KEY] = True


def sign_out_unverified() -> None:
    """End a provider session whose email is not verified."""
    forget_sign_in()
    st.logout()
