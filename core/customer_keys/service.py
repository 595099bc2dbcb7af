"""Customer API keys: create, revoke, list, and find one by its secret for the HTTP API.

A customer API key is a secret an account makes for its own tools, with scopes:

    usage:read    GET /api/v1/usage and GET /api/v1/costs of its own account
    balance:read  GET /api/v1/balance of its own account
    spend:write   read and change its own account's caps and alert rules (/api/v1/accounts/{id}/caps,
                  /alert-rules); reading them also takes usage:read

It is not the ``api_key`` usage dimension (the company's product sends that with each event)
and not the company's server token. Creating and revoking are customer writes
(``api_keys.edit``: owner, admin, billing; the system actor for the CLI), audited in
``audit_log`` (``api_keys.create`` / ``api_keys.revoke``) in the same transaction, which the
support console's timeline shows. The secret is returned once and stored only as its SHA-256
(``core.customer_keys.secret`` says why that is enough).

A page form passes a ``submission_id`` made when the form was drawn (and the secret made with
it): a repeated submit of the same form finds the key the first one made instead of making a
second, and the same id with other values is a ``Conflict`` naming ``submission_id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.accounts.permissions import API_KEYS_EDIT, Actor, require_permission
from core.customer_keys.secret import is_secret_shaped, new_secret, secret_digest, visible_prefix
from core.db.models import CUSTOMER_KEY_SCOPES, AuditLog, CustomerApiKey
from core.display import format_datetime
from core.errors import Conflict, NotFound, ValidationError
from core.support.once import checked_submission_id
from core.text import single_line_text

USAGE_READ = "usage:read"
BALANCE_READ = "balance:read"
SPEND_WRITE = "spend:write"
SCOPES = CUSTOMER_KEY_SCOPES
SCOPE_HELP = {
    USAGE_READ: "read usage and costs (GET /api/v1/usage, /api/v1/costs)",
    BALANCE_READ: "read the balance and grants (GET /api/v1/balance)",
    SPEND_WRITE: "read and change caps and alert rules (/api/v1/accounts/{id}/caps, /alert-rules)",
}
DEFAULT_SCOPES = (USAGE_READ, BALANCE_READ)  # the CLI's, when no --scope is given
MAX_NAME = 100
MAX_ACTIVE_KEYS = 50  # per account: a limit on everything
MAX_LIFETIME_DAYS = 3 * 366
LIST_LIMIT = 500
LAST_USED_RESOLUTION = timedelta(minutes=1)  # ``last_used_at`` is written at most this often per key

KeyStatus = Literal["active", "expired", "revoked"]


@dataclass(frozen=True)
class CustomerKeyView:
    """A customer API key as the portal, the CLI and the API see it (never the secret)."""

    key_id: int
    account_id: str
    name: str
    prefix: str  # "ml_live_3f9a2c"
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def shown(self) -> str:
        """How a person recognises it: ``ml_live_3f9a2c…``."""
        return f"{self.prefix}…"

    def status(self, at: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= at:
            return "expired"
        return "active"

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True)
class NewCustomerKey:
    """What creating a key answers: the key, and its secret, to show once (None when a repeated
    submission found the key but did not bring the secret it was made with)."""

    key: CustomerKeyView
    secret: str | None
    created: bool  # False: a repeat of the same submission found the key it made


def _view(row: CustomerApiKey) -> CustomerKeyView:
    return CustomerKeyView(
        key_id=row.id,
        account_id=row.account_id,
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(row.scopes or ()),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


def checked_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes, known and at least one, in the table's order; else a ValidationError naming ``scopes``."""
    wanted = set()
    for scope in scopes:
        if scope not in SCOPES:
            shown = repr(scope)[:60]
            raise ValidationError(
                f"unknown scope {shown}; use {', '.join(SCOPES)}", code="unknown_scope", field="scopes"
            )
        wanted.add(scope)
    if not wanted:
        raise ValidationError("give the key at least one scope", code="required", field="scopes")
    return tuple(scope for scope in SCOPES if scope in wanted)


def checked_name(name: str) -> str:
    text = single_line_text((name or "").strip(), field="name")
    if not text:
        raise ValidationError("give the key a name, e.g. “Finance export”", code="required", field="name")
    if len(text) > MAX_NAME:
        raise ValidationError(f"keep the name under {MAX_NAME} characters", code="too_long", field="name")
    return text


def expiry_of(expires_on: date | None, *, at: datetime) -> datetime | None:
    """When a key that expires "on" ``expires_on`` stops working: it is valid through that day (UTC)
    and stops at 00:00 UTC the day after. None: it never expires."""
    if expires_on is None:
        return None
    today = at.astimezone(UTC).date()
    if expires_on < today:
        raise ValidationError("the expiry date is in the past; pick today or later", field="expires")
    if expires_on > today + timedelta(days=MAX_LIFETIME_DAYS):
        raise ValidationError(
            f"a key may last at most {MAX_LIFETIME_DAYS:,} days; pick an earlier date", field="expires"
        )
    return datetime.combine(expires_on + timedelta(days=1), time.min, UTC)


def _audit(
    session: Session, *, actor: Actor, action: str, key: CustomerKeyView, reason: str, at: datetime
) -> None:
    session.add(
        AuditLog(
            actor=actor.author,
            action=action,
            account_id=key.account_id,
            reason=reason,
            details={
                "target": f"customer_api_key:{key.key_id}",
                "key_id": key.key_id,
                "prefix": key.prefix,
                "name": key.name,
                "scopes": list(key.scopes),
                "expires_at": None if key.expires_at is None else key.expires_at.isoformat(),
            },
            created_at=at,
        )
    )


def _describe(key: CustomerKeyView) -> str:
    expires = key.expires_at
    expiry = "never expires" if expires is None else f"expires {format_datetime(expires, 'UTC')}"
    return f"“{key.name}” ({key.shown}), scopes {', '.join(key.scopes)}, {expiry}"


def _active_count(session: Session, account_id: str, at: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(CustomerApiKey)
            .where(
                CustomerApiKey.account_id == account_id,
                CustomerApiKey.revoked_at.is_(None),
                or_(CustomerApiKey.expires_at.is_(None), CustomerApiKey.expires_at > at),
            )
        )
        or 0
    )


def _replay(
    row: CustomerApiKey, *, account_id: str, actor: Actor, fields: tuple[object, ...], secret: str | None
) -> NewCustomerKey:
    """The answer to a repeated submission: the key it made, if the values are the same."""
    same = (
        row.account_id == account_id
        and row.created_by == actor.author
        and (row.name, tuple(row.scopes or ()), row.expires_at) == fields
        and (secret is None or row.secret_sha256 == secret_digest(secret))
    )
    if not same:
        raise Conflict(
            f"submission {row.submission_id} already made another key: reload the form to start a new one",
            code="submission_reused",
            field="submission_id",
        )
    return NewCustomerKey(_view(row), secret, created=False)


def create_customer_key(
    session: Session,
    *,
    actor: Actor,
    account_id: str,
    name: str,
    scopes: Iterable[str],
    at: datetime,
    expires_on: date | None = None,
    submission_id: str | None = None,
    secret: str | None = None,
) -> NewCustomerKey:
    """Make a key for ``account_id`` (``api_keys.edit``) and audit it; the answer holds the secret,
    the only time it exists outside the caller. ``secret`` (from ``new_secret``) lets a page make it
    with the form, so a repeated submit can still show it; else one is made here."""
    key_name = checked_name(name)
    key_scopes = checked_scopes(scopes)
    expires_at = expiry_of(expires_on, at=at)
    if secret is not None and not is_secret_shaped(secret):
        raise ValidationError("the form's key was malformed: reload the page", field="secret")
    account = require_permission(session, actor, account_id=account_id, permission=API_KEYS_EDIT)
    fields = (key_name, key_scopes, expires_at)
    if submission_id is not None:
        submission_id = checked_submission_id(submission_id)
        found = session.scalar(select(CustomerApiKey).where(CustomerApiKey.submission_id == submission_id))
        if found is not None:
            return _replay(found, account_id=account.account_id, actor=actor, fields=fields, secret=secret)
    if _active_count(session, account.account_id, at) >= MAX_ACTIVE_KEYS:
        raise ValidationError(
            f"an account may have at most {MAX_ACTIVE_KEYS} active keys: revoke one first",
            code="too_many_keys",
            field="account_id",
        )
    secret = secret or new_secret()
    values = {
        "account_id": account.account_id,
        "name": key_name,
        "prefix": visible_prefix(secret),
        "secret_sha256": secret_digest(secret),
        "scopes": list(key_scopes),
        "created_by": actor.author,
        "created_at": at,
        "expires_at": expires_at,
        "last_used_at": None,
        "revoked_at": None,
        "revoked_by": None,
        "submission_id": submission_id,
    }
    if submission_id is None:
        row = CustomerApiKey(**values)
        session.add(row)
        session.flush()
    else:
        # Insert or nothing: on PostgreSQL a concurrent insert of the same submission waits here for
        # the first one's transaction, then inserts nothing and finds its key.
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = insert(CustomerApiKey).values(**values).on_conflict_do_nothing().returning(CustomerApiKey.id)
        inserted = session.execute(stmt).scalar_one_or_none() is not None  # no row: it was there already
        row = session.scalars(
            select(CustomerApiKey)
            .where(CustomerApiKey.submission_id == submission_id)
            .execution_options(populate_existing=True)
        ).one_or_none()
        if row is None:  # the secret's digest is another key's: a form's secret sent with a new id
            raise Conflict("the form's key was already used: reload the page", field="secret")
        if not inserted:
            return _replay(row, account_id=account.account_id, actor=actor, fields=fields, secret=secret)
    key = _view(row)
    _audit(
        session,
        actor=actor,
        action="api_keys.create",
        key=key,
        reason=f"customer API key created: {_describe(key)}",
        at=at,
    )
    session.flush()
    return NewCustomerKey(key, secret, created=True)


def revoke_customer_key(
    session: Session, *, actor: Actor, key_id: int, at: datetime, account_id: str | None = None
) -> CustomerKeyView:
    """Revoke a key (``api_keys.edit`` on its account) and audit it; revoking it again changes
    nothing. ``account_id``, when given, must be the key's (a page passes the account it shows)."""
    row = None
    if isinstance(key_id, int) and 0 < key_id < 2**63:  # anything else is no key (and never reaches SQL)
        stmt = select(CustomerApiKey).where(CustomerApiKey.id == key_id)
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()  # two revokes at once: one audit entry
        row = session.scalars(stmt).one_or_none()
    if row is None or (account_id is not None and row.account_id != account_id):
        raise NotFound(f"no customer API key {key_id!r}", field="key_id")
    require_permission(session, actor, account_id=row.account_id, permission=API_KEYS_EDIT)
    if row.revoked_at is None:
        row.revoked_at = at
        row.revoked_by = actor.author
        session.flush()
        key = _view(row)
        _audit(
            session,
            actor=actor,
            action="api_keys.revoke",
            key=key,
            reason=f"customer API key revoked: {_describe(key)}",
            at=at,
        )
        session.flush()
    return _view(row)


def list_customer_keys(session: Session, account_id: str) -> list[CustomerKeyView]:
    """The account's keys, newest first, revoked and expired ones included (at most ``LIST_LIMIT``)."""
    rows = session.scalars(
        select(CustomerApiKey)
        .where(CustomerApiKey.account_id == account_id)
        .order_by(CustomerApiKey.id.desc())
        .limit(LIST_LIMIT)
    )
    return [_view(row) for row in rows]


def key_for_secret(session: Session, secret: str) -> CustomerKeyView | None:
    """The key whose secret this is (whatever its status), or None: one indexed lookup by digest."""
    if not is_secret_shaped(secret):
        return None
    row = session.scalar(select(CustomerApiKey).where(CustomerApiKey.secret_sha256 == secret_digest(secret)))
    return None if row is None else _view(row)


def note_key_used(session: Session, key_id: int, at: datetime) -> bool:
    """Set ``last_used_at`` unless it was set less than ``LAST_USED_RESOLUTION`` ago (one conditional
    UPDATE, so processes sharing the database write it at most about once a minute per key)."""
    result = session.execute(
        update(CustomerApiKey)
        .where(
            CustomerApiKey.id == key_id,
            or_(
                CustomerApiKey.last_used_at.is_(None),
                CustomerApiKey.last_used_at <= at - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
