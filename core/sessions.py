"""Browser sessions of the portal: signed demo-mode session tokens and sign-out everywhere.

Demo mode has no identity provider, so the portal keeps who picked which demo user in a
cookie of its own (``meterline_session``): a token the server signs with HMAC-SHA256 and
that expires. Editing it (another email, a later expiry) breaks the signature; only the
server, which holds the secret, mints one. The secret is ``METERLINE_SESSION_SECRET`` or
a random one generated once and kept in the ``settings`` table, so sessions survive a
restart and every process of one deployment accepts them.

Signing out must end the session in every tab of that browser, including tabs whose page
is already open and never sends the cookie again. So each browser session has an id (the
token's ``sid``; with OIDC, a hash of Streamlit's identity cookie) and signing out records
it in ``settings`` as ended, until the moment the session would have expired anyway. Every
portal run checks that record.

No Streamlit here: the token is made by the portal's scripts and checked again by the HTTP
route that sets the cookie (``app/session_routes.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import unit_of_work
from core.db.models import Setting

SESSION_COOKIE = "meterline_session"
SESSION_TTL = timedelta(days=7)
SECRET_SETTING_KEY = "portal_session_secret"
ENDED_PREFIX = "session_ended:"
TOKEN_VERSION = 1
MAX_TOKEN_LENGTH = 1024
_SID = re.compile(r"^[A-Za-z0-9_-]{16,48}$")


@dataclass(frozen=True)
class BrowserSession:
    """Who a valid session token says is signed in, in which browser session, until when."""

    email: str
    sid: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_session_id() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 random bits


def mint_token(secret: bytes, email: str, *, now: datetime, sid: str | None = None) -> str:
    """A token saying ``email`` is signed in until ``now + SESSION_TTL``."""
    assert now.tzinfo is not None, "mint_token needs an aware time"
    expires = int((now + SESSION_TTL).timestamp())
    payload = json.dumps(
        {"v": TOKEN_VERSION, "email": email, "sid": sid or new_session_id(), "exp": expires},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    body = _b64(payload)
    mac = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def read_token(secret: bytes, token: str | None, *, now: datetime) -> BrowserSession | None:
    """The session a token carries, or None when it is missing, malformed, forged or expired."""
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    expected = hmac.new(secret, body.encode("ascii", "replace"), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            return None
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict) or payload.get("v") != TOKEN_VERSION:
        return None
    email, sid, expires = payload.get("email"), payload.get("sid"), payload.get("exp")
    if not isinstance(email, str) or not email or not isinstance(sid, str) or not _SID.match(sid):
        return None
    if not isinstance(expires, int) or isinstance(expires, bool):
        return None
    expires_at = datetime.fromtimestamp(expires, UTC)
    if expires_at <= now:
        return None
    return BrowserSession(email=email, sid=sid, expires_at=expires_at)


def session_secret(engine: Engine) -> bytes:
    """``METERLINE_SESSION_SECRET``, else a random secret generated once and kept in ``settings``."""
    configured = os.environ.get("METERLINE_SESSION_SECRET", "").strip()
    if configured:
        return configured.encode()
    with unit_of_work(engine) as session:
        stored = session.scalar(select(Setting.value).where(Setting.key == SECRET_SETTING_KEY))
    if stored:
        return stored.encode()
    try:
        with unit_of_work(engine, write=True) as session:
            stored = session.scalar(select(Setting.value).where(Setting.key == SECRET_SETTING_KEY))
            if not stored:
                stored = secrets.token_urlsafe(48)
                session.add(Setting(key=SECRET_SETTING_KEY, value=stored))
    except IntegrityError:  # another process made it first: use theirs
        with unit_of_work(engine) as session:
            stored = session.scalar(select(Setting.value).where(Setting.key == SECRET_SETTING_KEY))
    assert stored, "the session secret exists once made"
    return stored.encode()


def cookie_session_id(cookie_value: str) -> str:
    """A browser-session id for an identity cookie we do not mint (Streamlit's OIDC cookie)."""
    return _b64(hashlib.sha256(cookie_value.encode("utf-8", "replace")).digest()[:18])


def _ended_key(sid: str) -> str:
    return ENDED_PREFIX + sid


def _stamp(moment: datetime) -> str:
    """UTC, fixed width: compares as text in the same order as in time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def end_session(engine: Engine, sid: str, *, until: datetime, now: datetime) -> None:
    """Record that browser session ``sid`` signed out (kept until it would have expired)."""
    try:
        with unit_of_work(engine, write=True) as session:
            # Forget sessions that have expired on their own since: the table stays small.
            session.execute(
                delete(Setting).where(Setting.key.startswith(ENDED_PREFIX), Setting.value < _stamp(now))
            )
            if session.get(Setting, _ended_key(sid)) is None:
                session.add(Setting(key=_ended_key(sid), value=_stamp(max(until, now))))
    except IntegrityError:
        pass  # another tab of the same browser signed out at the same moment: recorded once


def session_ended(session: Session, sid: str) -> bool:
    """True when browser session ``sid`` signed out (in any tab, on any server process)."""
    return session.get(Setting, _ended_key(sid)) is not None
