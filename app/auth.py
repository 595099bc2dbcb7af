"""Who is signed in, and what they may see.

Two modes. With an ``[auth]`` section in ``.streamlit/secrets.toml`` sign-in is
Streamlit's native OIDC (``st.login``). Without one the portal runs in *demo mode*:
the sign-in screen lets you pick a seeded user; that is refused when
``METERLINE_ENV=production``. A logged-in ``st.user`` counts as signed in either way.

The support role never comes from the database: it comes from the ``roles`` claim of
the ID token or from the ``METERLINE_SUPPORT_EMAILS`` allow-list.

An ID token whose ``email_verified`` claim is false is not a sign-in: anyone can claim
an address they do not own at some providers, so that email is never mapped to a user
or an account (a token without the claim is trusted as before).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st
from sqlalchemy import Engine, func, select

from core.accounts import AccountSummary, accounts_for_user, ensure_user
from core.clock import system_clock
from core.db import unit_of_work
from core.db.models import Membership, User

DEMO_EMAIL_KEY = "auth.demo_email"
ENSURED_KEY = "auth.ensured_email"
SUPPORT_ROLE = "support"

Mode = Literal["oidc", "demo", "refused"]


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: identity, support flag, and the accounts they belong to."""

    email: str
    name: str
    is_support: bool
    accounts: tuple[AccountSummary, ...]
    mode: Mode

    def account(self, account_id: str) -> AccountSummary | None:
        return next((a for a in self.accounts if a.account_id == account_id), None)


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    account_count: int


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
    raw = os.environ.get("METERLINE_SUPPORT_EMAILS", "")
    return frozenset(part.strip().lower() for part in raw.split(",") if part.strip())


def is_support(email: str, claims: Mapping[str, Any]) -> bool:
    """Support comes from the ``roles`` claim (a list or a separated string) or the allow-list."""
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = roles.replace(",", " ").split()
    return SUPPORT_ROLE in roles or email.strip().lower() in support_emails()


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


def signed_in_identity() -> tuple[str, str, dict[str, Any]] | None:
    """(email, name, claims) of whoever is signed in, or None (always None for an unverified email)."""
    claims = _user_claims()
    if claims.get("is_logged_in") and email_marked_unverified(claims):
        return None  # not even a leftover demo pick: this session belongs to someone unverified
    if claims.get("is_logged_in") and claims.get("email"):
        email = str(claims["email"]).strip().lower()
        return email, str(claims.get("name") or email), claims
    if sign_in_mode() == "demo":
        email = st.session_state.get(DEMO_EMAIL_KEY)
        if email:
            return str(email), str(email), {}
    return None


def load_viewer(engine: Engine) -> Viewer | None:
    """The signed-in viewer with their accounts, read fresh on every run (never cached)."""
    identity = signed_in_identity()
    if identity is None:
        return None
    email, name, claims = identity
    if st.session_state.get(ENSURED_KEY) != email:
        # First run of this session for this person: create the user row if it is new.
        with unit_of_work(engine, write=True) as session:
            ensure_user(session, email=email, at=system_clock(), display_name=name if name != email else "")
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
    )


def demo_users(engine: Engine) -> list[DemoUser]:
    """Users with at least one membership: the people demo mode lets you sign in as."""
    with unit_of_work(engine) as session:
        rows = session.execute(
            select(User.email, User.display_name, func.count(Membership.account_id))
            .join(Membership, Membership.user_id == User.id)
            .group_by(User.email, User.display_name)
            .order_by(User.email)
        ).all()
    return [DemoUser(email, display or email, int(count)) for email, display, count in rows]


def sign_in_demo(email: str) -> None:
    if sign_in_mode() != "demo":
        raise RuntimeError("demo sign-in is only available in demo mode")
    st.session_state[DEMO_EMAIL_KEY] = email


def forget_sign_in() -> None:
    """Drop what this session remembers about who signed in (demo pick, user row ensured)."""
    for key in (DEMO_EMAIL_KEY, ENSURED_KEY):
        st.session_state.pop(key, None)


def sign_out(viewer: Viewer) -> None:
    forget_sign_in()
    if viewer.mode == "oidc":
        st.logout()


def sign_out_unverified() -> None:
    """End a provider session whose email is not verified."""
    forget_sign_in()
    st.logout()
