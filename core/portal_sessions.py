"""Portal sessions: the portal's pages inside the company's own product, without a second sign-in.

The company's backend (holding the server token) mints a session for one of its accounts with
``POST /api/v1/portal-sessions``: who (an optional email, for the audit trail), which role
(viewer, billing or admin; never more than that person has when they are a member), which
pages, how long (at most a day), and where to send the person back (``return_url``).

It answers a start link ``<portal>/portal/start?token=<start token>``. The start token is
random, signed with the server's secret (``core.sessions.session_secret``) and stored only as its
SHA-256 (``portal_sessions.token_hash``): the table alone cannot be turned back into a link.

    minted ──first open of the link (one conditional UPDATE of used_at)──▶ started
       │                                     │
       │                                     ├── expires_at passes ──▶ expired
       └──────── DELETE /api/v1/portal-sessions/{id} (ended_at) ─────▶ ended

Opening the start link a second time is refused: the link starts one browser session only.
The browser session it starts is carried by a *browser token* (``browser_token``): the session
id and its expiry signed with the secret under another purpose, so it can never be taken for a
start token. The portal keeps it in a cookie and in the page's address (``?portal=…``, for
browsers that refuse cookies in a third-party frame), and checks it with the stored row on every
run: an ended or expired session stops at its next run. Whoever holds the browser token holds the
session until it ends, exactly like a session cookie: that is why its lifetime is the session's
and why the company can end it early.

Writes made in a portal session act as ``Actor.portal``: the core's permission check
(``require_permission``) reads the session row in the write's transaction (still open, same
account, its role capped by the person's membership role now) and adds an audit entry naming the
session id and email (``audit_portal_write``); ``created_by`` columns record ``Actor.author``,
``portal:<id>:<email>``. Reads check the same row (``portal_access``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from core.db.models import PORTAL_PAGES, PORTAL_ROLES, ROLES, AuditLog, Membership, PortalSession, User
from core.errors import NotFound, PermissionDenied, ValidationError

START_PATH = "/portal/start"
PORTAL_PARAM = "portal"  # the page address's query parameter holding the browser token
PORTAL_COOKIE = "meterline_portal"
DEFAULT_TTL_S = 3600
MIN_TTL_S = 60
MAX_TTL_S = 86_400
MAX_EMAIL = 254
MAX_RETURN_URL = 2000
MAX_TOKEN_LENGTH = 256
AUDIT_PREFIX = "portal."
FIELDS = ("account_id", "email", "role", "pages", "ttl_seconds", "return_url")

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)
_ID = re.compile(r"^ps_[A-Za-z0-9_-]{16,24}$")
_RANK = {role: len(ROLES) - index for index, role in enumerate(ROLES)}  # owner 4 … viewer 1

Status = Literal["unused", "active", "ended", "expired"]


@dataclass(frozen=True)
class PortalRequest:
    """A mint request, checked (``parse_request``)."""

    account_id: str
    email: str | None
    role: str
    pages: tuple[str, ...]
    ttl_seconds: int
    return_url: str | None


@dataclass(frozen=True)
class PortalView:
    id: str
    account_id: str
    email: str | None
    role: str
    pages: tuple[str, ...]
    expires_at: datetime
    return_url: str | None
    used_at: datetime | None
    ended_at: datetime | None
    created_at: datetime

    def status(self, at: datetime) -> Status:
        if self.ended_at is not None:
            return "ended"
        if self.expires_at <= at:
            return "expired"
        return "active" if self.used_at is not None else "unused"

    @property
    def author(self) -> str:
        return portal_author(self.id, self.email)


@dataclass(frozen=True)
class Minted:
    id: str
    token: str
    expires_at: datetime


def portal_author(session_id: str, email: str | None) -> str:
    """What ``created_by`` and the audit log record for a write in this session."""
    return f"portal:{session_id}:{email or '-'}"


# --- validation -----------------------------------------------------------------------------------


def _optional_text(document: Mapping[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string", code="not_a_string", field=name)
    return value


def _checked_email(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    email = value.strip().lower()
    if len(email) > MAX_EMAIL or not email.isascii() or not _EMAIL.match(email):
        raise ValidationError("email must be one plain email address", code="invalid_email", field="email")
    return email


def _checked_role(value: object) -> str:
    if value is None:
        raise ValidationError(
            f"role is required: one of {', '.join(PORTAL_ROLES)}", code="required", field="role"
        )
    if not isinstance(value, str) or value not in PORTAL_ROLES:
        raise ValidationError(
            f"role must be one of {', '.join(PORTAL_ROLES)}", code="invalid_role", field="role"
        )
    return value


def _checked_pages(value: object) -> tuple[str, ...]:
    if value is None:
        return PORTAL_PAGES
    if not isinstance(value, list):
        raise ValidationError("pages must be a list of page names", code="not_a_list", field="pages")
    if not value:
        raise ValidationError("pages must name at least one page", code="empty", field="pages")
    if len(value) > len(PORTAL_PAGES) * 2 or not all(isinstance(p, str) and p in PORTAL_PAGES for p in value):
        raise ValidationError(
            f"pages may hold only {', '.join(PORTAL_PAGES)}", code="unknown_page", field="pages"
        )
    return tuple(page for page in PORTAL_PAGES if page in value)  # the navigation's order, once each


def _checked_ttl(value: object) -> int:
    if value is None:
        return DEFAULT_TTL_S
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(
            "ttl_seconds must be a whole number of seconds", code="not_an_integer", field="ttl_seconds"
        )
    if not MIN_TTL_S <= value <= MAX_TTL_S:
        raise ValidationError(
            f"ttl_seconds must be between {MIN_TTL_S} and {MAX_TTL_S:,}",
            code="out_of_range",
            field="ttl_seconds",
        )
    return value


def checked_return_url(value: str | None) -> str | None:
    """An http(s) address with a host and nothing that could break out of a link, or None."""
    if value is None or not value.strip():
        return None
    url = value.strip()
    problem = ValidationError(
        f"return_url must be an http or https address of at most {MAX_RETURN_URL:,} characters",
        code="invalid_url",
        field="return_url",
    )
    if (
        len(url) > MAX_RETURN_URL
        or not url.isascii()
        or any(ch.isspace() or ord(ch) < 0x20 or ch in "<>\"'`\\" for ch in url)
    ):
        raise problem
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise problem from None
    if parts.scheme not in ("http", "https") or not hostname or parts.username or parts.password:
        raise problem
    return url


def parse_request(document: object) -> PortalRequest:
    """The mint request in a JSON body; ValidationError naming the field otherwise."""
    if not isinstance(document, dict):
        raise ValidationError("the body must be a JSON object", code="not_an_object")
    unknown = sorted(str(key)[:40] for key in document if key not in FIELDS)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r}", code="unknown_field", field=unknown[0])
    account_id = document.get("account_id")
    if account_id is None:
        raise ValidationError("account_id is required", code="required", field="account_id")
    if not isinstance(account_id, str) or not account_id.strip():
        raise ValidationError(
            "account_id must be a non-empty string", code="not_a_string", field="account_id"
        )
    return PortalRequest(
        account_id=account_id,
        email=_checked_email(_optional_text(document, "email")),
        role=_checked_role(document.get("role")),
        pages=_checked_pages(document.get("pages")),
        ttl_seconds=_checked_ttl(document.get("ttl_seconds")),
        return_url=checked_return_url(_optional_text(document, "return_url")),
    )


# --- tokens ---------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mac(secret: bytes, purpose: str, body: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}:{body}".encode("ascii"), hashlib.sha256).digest())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _start_token(secret: bytes) -> str:
    body = secrets.token_urlsafe(24)
    return f"{body}.{_mac(secret, 'portal-start', body)}"


def _signed_start_token(secret: bytes, token: object) -> str | None:
    """``token`` when it is a start token this server signed, else None (no database lookup)."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or not token.isascii():
        return None
    body, _, mac = token.partition(".")
    if not body or not hmac.compare_digest(mac, _mac(secret, "portal-start", body)):
        return None
    return token


def browser_token(secret: bytes, view: PortalView) -> str:
    """The token the started browser session carries (cookie and address): never a start token."""
    body = f"{view.id}.{int(view.expires_at.timestamp())}"
    return f"{body}.{_mac(secret, 'portal-browser', body)}"


def read_browser_token(secret: bytes, token: object) -> str | None:
    """The portal session id a browser token names, when the signature holds; else None.

    Whether that session is still open is for the stored row to say (``find_portal_session``).
    """
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 3 or not _ID.match(parts[0]) or not parts[1].isdigit():
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2], _mac(secret, "portal-browser", body)):
        return None
    return parts[0]


def start_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{START_PATH}?{urlencode({'token': token})}"


# --- the rows -------------------------------------------------------------------------------------


def _view(row: PortalSession) -> PortalView:
    return PortalView(
        id=row.id,
        account_id=row.account_id,
        email=row.email,
        role=row.role,
        pages=tuple(page for page in PORTAL_PAGES if page in (row.pages or [])),
        expires_at=row.expires_at,
        return_url=row.return_url,
        used_at=row.used_at,
        ended_at=row.ended_at,
        created_at=row.created_at,
    )


def _member_role(session: Session, email: str, account_id: str) -> str | None:
    return session.scalar(
        select(Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email, Membership.account_id == account_id)
    )


def create_portal_session(session: Session, request: PortalRequest, *, secret: bytes, at: datetime) -> Minted:
    """Store a new portal session and return its start token (shown once, never stored)."""
    from core.accounts.service import find_account  # core.accounts imports this module

    if find_account(session, request.account_id) is None:
        raise NotFound("no account has this id", field="account_id")
    if request.email is not None:
        role_now = _member_role(session, request.email, request.account_id)
        if role_now is not None and _RANK[request.role] > _RANK[role_now]:
            raise ValidationError(
                f"role {request.role} is more than this person has in the account ({role_now})",
                code="above_member_role",
                field="role",
            )
    token = _start_token(secret)
    row = PortalSession(
        id="ps_" + secrets.token_urlsafe(15),  # 20 characters, 120 random bits
        account_id=request.account_id,
        email=request.email,
        role=request.role,
        pages=list(request.pages),
        token_hash=token_hash(token),
        expires_at=at + timedelta(seconds=request.ttl_seconds),
        return_url=request.return_url,
        created_at=at,
    )
    session.add(row)
    session.flush()
    return Minted(id=row.id, token=token, expires_at=row.expires_at)


def find_portal_session(session: Session, session_id: object) -> PortalView | None:
    if not isinstance(session_id, str) or not _ID.match(session_id):
        return None
    row = session.get(PortalSession, session_id)
    return _view(row) if row is not None else None


StartOutcome = Literal["started", "used", "ended", "expired", "invalid"]


def start_portal_session(
    session: Session, token: object, *, secret: bytes, at: datetime
) -> tuple[StartOutcome, PortalView | None]:
    """Use a start token: one conditional UPDATE, so of two opens at once only one starts.

    Returns what happened and the session when the token named one (for its return_url).
    """
    signed = _signed_start_token(secret, token)
    if signed is None:
        return "invalid", None
    row = session.scalar(select(PortalSession).where(PortalSession.token_hash == token_hash(signed)))
    if row is None:
        return "invalid", None
    view = _view(row)
    status = view.status(at)
    if status != "unused":
        return ("used" if status == "active" else status), view
    result = session.execute(
        update(PortalSession)
        .where(PortalSession.id == view.id, PortalSession.used_at.is_(None), PortalSession.ended_at.is_(None))
        .values(used_at=at)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        return "used", view
    session.expire(row)
    return "started", _view(row)


def end_portal_session(session: Session, session_id: str, *, at: datetime) -> PortalView:
    """End the session now (a second call changes nothing); NotFound for an unknown id."""
    row = (
        session.get(PortalSession, session_id)
        if isinstance(session_id, str) and _ID.match(session_id)
        else None
    )
    if row is None:
        raise NotFound("no portal session has this id", field="id")
    if row.ended_at is None:
        row.ended_at = at
        session.flush()
    return _view(row)


def effective_role(session: Session, view: PortalView) -> str:
    """The session's role, lowered to the person's membership role when that is less now."""
    if view.email is None:
        return view.role
    role_now = _member_role(session, view.email, view.account_id)
    if role_now is not None and _RANK[role_now] < _RANK[view.role]:
        return role_now
    return view.role


def portal_access(
    session: Session, *, portal_session_id: str, account_id: str, at: datetime | None = None
) -> tuple[PortalView, str]:
    """The session and its role now, when it is started and open and for ``account_id``; else
    PermissionDenied (an ended or expired session, another account)."""
    view = find_portal_session(session, portal_session_id)
    if view is None or view.account_id != account_id:
        raise PermissionDenied("this portal session is not for this account", field="account_id")
    if view.used_at is None or view.ended_at is not None or (at is not None and view.expires_at <= at):
        raise PermissionDenied("this portal session has ended", code="session_ended", field="portal_session")
    return view, effective_role(session, view)


def audit_portal_write(session: Session, view: PortalView, *, action: str, role: str, at: datetime) -> None:
    """The audit entry of a write made in a portal session (in the write's transaction)."""
    session.add(
        AuditLog(
            actor=view.author[:320],
            action=(AUDIT_PREFIX + action)[:64],
            account_id=view.account_id,
            reason="",
            details={"portal_session_id": view.id, "email": view.email, "role": role},
            created_at=at,
        )
    )
    session.flush()
