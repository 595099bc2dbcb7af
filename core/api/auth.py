"""Who is calling the API: the company's server token, or a customer API key.

``Authorization: Bearer <token>``:

- the **server token** (``METERLINE_API_TOKEN``), compared in constant time: every route, any
  account;
- a **customer API key** (``ml_live_…``, ``core.customer_keys``), found by the SHA-256 of the
  secret: only the customer routes (usage, costs, balance; caps and alert rules), only its own
  account, only with one of the route's scopes. Unknown, revoked or expired: 401. Another
  route: 403. A missing scope: 403 naming ``scope``. Another account's id: 404, the same answer
  as an account that does not exist (``CustomerKeyCaller.account_for``). Past its rate: 429 with
  ``Retry-After`` (``core.api.rate_limit``). Its ``last_used_at`` is written at most once a minute.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from core.accounts.permissions import Actor
from core.accounts.service import shown_id
from core.api.errors import RequestError
from core.api.rate_limit import TokenBucketLimiter, retry_after_header
from core.clock import Clock
from core.customer_keys import CustomerKeyView, key_for_secret, note_key_used
from core.customer_keys.secret import is_secret_shaped
from core.customer_keys.service import LAST_USED_RESOLUTION
from core.db import unit_of_work
from core.errors import NotFound, ValidationError

log = logging.getLogger("meterline.api")

CUSTOMER_ROUTES_TEXT = (
    "GET /api/v1/usage, GET /api/v1/costs, GET /api/v1/balance and its own account's "
    "/api/v1/accounts/{account_id}/caps and /alert-rules"
)
MAX_NOTED_KEYS = 100_000  # keys whose last write of last_used_at this process remembers


def bearer_token(request: Request) -> str:
    """The request's bearer token; 401 without one."""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise RequestError(
            401,
            "unauthorized",
            "send the server token or a customer API key as 'Authorization: Bearer <token>'",
        )
    return given.strip()


def require_token(request: Request, expected: str) -> None:
    """Raise 401 unless the request carries the server token."""
    given = bearer_token(request)
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise RequestError(401, "unauthorized", "the token is not valid")


@dataclass(frozen=True)
class ServerCaller:
    """The company's own backend (the server token): every route, any account."""

    def account_for(self, requested: str | None) -> str:
        if requested is None:
            raise ValidationError(
                "name the account: account_id is required", code="required", field="account_id"
            )
        return requested

    @property
    def actor(self) -> Actor:
        """Who its writes are made and audited as."""
        return Actor.system("api")

    @property
    def via(self) -> dict[str, object]:
        """What an audit entry says about the credential."""
        return {"server_token": True}


@dataclass(frozen=True)
class CustomerKeyCaller:
    """A customer API key: its own account only."""

    key: CustomerKeyView

    def account_for(self, requested: str | None) -> str:
        """The key's account; another id is answered as an account that does not exist."""
        if requested is not None and requested != self.key.account_id:
            raise NotFound(f"account {shown_id(requested)} does not exist", field="account_id")
        return self.key.account_id

    @property
    def actor(self) -> Actor:
        key = self.key
        return Actor.customer_key(
            key_id=key.key_id, prefix=key.prefix, account_id=key.account_id, scopes=key.scopes
        )

    @property
    def via(self) -> dict[str, object]:
        key = self.key
        return {"customer_key": {"key_id": key.key_id, "prefix": key.prefix, "name": key.name}}


Caller = ServerCaller | CustomerKeyCaller
SERVER = ServerCaller()


class Authenticator:
    """Decides the caller of each request (see the module docstring); one per API app."""

    def __init__(
        self,
        engine_provider: Callable[[], Engine],
        token_provider: Callable[[], str],
        *,
        clock: Clock,
        limiter: TokenBucketLimiter,
    ):
        self._engine_provider = engine_provider
        self._token_provider = token_provider
        self._clock = clock
        self.limiter = limiter
        self._noted: dict[int, datetime] = {}  # key id -> when this process last wrote last_used_at
        self._noted_lock = threading.Lock()

    async def caller(self, request: Request, *, scope: str | tuple[str, ...] | None) -> Caller:
        """The caller, if allowed on a route taking customer keys with ``scope`` (several: any one
        of them; None: server token only)."""
        given = bearer_token(request)
        expected = self._token_provider()
        if expected and hmac.compare_digest(given.encode(), expected.encode()):
            return SERVER
        if not is_secret_shaped(given):  # neither token: no database read
            raise RequestError(401, "unauthorized", "the token is not valid")
        key = await run_in_threadpool(self._active_key, given)
        wait = self.limiter.take(key.key_id)
        if wait is not None:
            raise RequestError(
                429,
                "rate_limited",
                f"this customer API key is limited to {self.limiter.per_minute:,} requests a minute; "
                "retry after the seconds in Retry-After",
                headers={"Retry-After": retry_after_header(wait)},
            )
        if scope is None:
            raise RequestError(
                403,
                "forbidden",
                f"a customer API key may call only {CUSTOMER_ROUTES_TEXT}; this route needs the server token",
                field="authorization",
            )
        scopes = (scope,) if isinstance(scope, str) else scope
        if not any(key.allows(one) for one in scopes):
            raise RequestError(
                403,
                "forbidden",
                f"this customer API key lacks the {' or '.join(scopes)} scope; create a key with it",
                field="scope",
            )
        return CustomerKeyCaller(key)

    def _active_key(self, secret: str) -> CustomerKeyView:
        at = self._clock()
        with unit_of_work(self._engine_provider()) as session:
            key = key_for_secret(session, secret)
        if key is None:
            raise RequestError(401, "unauthorized", "the token is not valid")
        status = key.status(at)
        if status == "revoked":
            raise RequestError(401, "key_revoked", f"customer API key {key.shown} was revoked")
        if status == "expired":
            raise RequestError(401, "key_expired", f"customer API key {key.shown} expired")
        self._note_used(key, at)
        return key

    def _note_used(self, key: CustomerKeyView, at: datetime) -> None:
        """Write ``last_used_at`` when the stored one (and this process's last write) is a minute old."""
        if key.last_used_at is not None and at - key.last_used_at < LAST_USED_RESOLUTION:
            return
        with self._noted_lock:
            last = self._noted.get(key.key_id)
            if last is not None and at - last < LAST_USED_RESOLUTION:
                return
            if len(self._noted) >= MAX_NOTED_KEYS:
                self._noted.clear()
            self._noted[key.key_id] = at
        try:
            with unit_of_work(self._engine_provider(), write=True) as session:
                note_key_used(session, key.key_id, at)
        except Exception:  # a bookkeeping write never fails the request it notes
            log.exception("could not note the use of customer API key %s", key.key_id)
