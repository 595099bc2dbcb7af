"""Caps and alert rules over the HTTP API (issue 18):

    GET    /api/v1/accounts/{account_id}/caps                  caps with this period's spend, as of now
    POST   /api/v1/accounts/{account_id}/caps                  add a cap (201; 409: scope and period taken)
    PATCH  /api/v1/accounts/{account_id}/caps/{cap_id}         change limit, mode or period
    DELETE /api/v1/accounts/{account_id}/caps/{cap_id}         remove it (204; its history stays)
    GET    /api/v1/accounts/{account_id}/alert-rules           the rules
    POST   /api/v1/accounts/{account_id}/alert-rules           add a rule (201)
    PATCH  /api/v1/accounts/{account_id}/alert-rules/{rule_id} change any of its fields, pause or resume
    DELETE /api/v1/accounts/{account_id}/alert-rules/{rule_id} remove it (204; its firings stay)

The server token acts on any account (as the ``system`` actor "api"); a customer key only on its
own (another account's id is a 404, as one that does not exist), reading with ``usage:read`` or
``spend:write`` and writing with ``spend:write`` (403 naming ``scope``). Bodies are checked by
``core.api.spend_body`` (422 naming the field); the writes are ``core.spend.api_commands``
(permission, change and audit entry in one transaction). A POST may carry ``Idempotency-Key``
(1 to 255 printable ASCII characters): the same key and body within 24 hours answers the first
create again (201, ``Idempotent-Replayed: true``) and makes nothing; the same key with another
body is a 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.accounts.service import find_account, shown_id
from core.api.auth import Caller
from core.api.body import read_body
from core.api.errors import APIJSONResponse, RequestError
from core.api.spend_body import MAX_ID, MAX_SPEND_BODY_BYTES, cap_body, cap_patch, new_rule, rule_fields
from core.clock import Clock
from core.customer_keys import SPEND_WRITE, USAGE_READ
from core.db import unit_of_work
from core.errors import BillingError, NotFound, ValidationError
from core.spend import api_commands
from core.spend.alerts import list_rules
from core.spend.api_shapes import cap_json, credits_text, iso, rule_json
from core.spend.caps import CapStatus, cap_statuses
from core.spend.change_log import Change

Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[..., Handler]  # guarded(handler, scope=...) from core.api.routes

READ_SCOPES = (USAGE_READ, SPEND_WRITE)
MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_HEADER = "Idempotency-Key"
# The core's field names, as the API's bodies name them.
API_FIELDS = {
    "scope_value": "value",
    "email_to": "channels.email",
    "notify_in_app": "channels.in_app",
    "webhook_id": "channels.webhook_id",
    "rule": "name",
}


def cap_status_json(status: CapStatus) -> dict[str, Any]:
    return {
        **cap_json(status.cap),
        "spent": credits_text(status.spent_nanos),
        "spent_nanos": status.spent_nanos,
        "remaining": credits_text(status.remaining_nanos),
        "remaining_nanos": status.remaining_nanos,
        "resets_at": iso(status.resets_at),
    }


def _id(request: Request, name: str, what: str) -> int:
    """A path id; anything that is not one of ours is answered as an id that does not exist."""
    raw = request.path_params[name]
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 10 and 0 < int(raw) <= MAX_ID:
        return int(raw)
    shown = raw[:40] if isinstance(raw, str) and raw.isascii() and raw.isprintable() else "?"
    raise NotFound(f"{what} {shown} does not exist", field=name)


def _idempotency_key(request: Request) -> str | None:
    values = request.headers.getlist(IDEMPOTENCY_HEADER)
    if not values:
        return None
    value = values[0].strip()
    if (
        len(values) > 1
        or not 0 < len(value) <= MAX_IDEMPOTENCY_KEY
        or not (value.isascii() and value.isprintable())
    ):
        raise RequestError(
            422,
            "invalid",
            f"send one {IDEMPOTENCY_HEADER} of 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters "
            "(a UUID, made once per intended create and resent with every retry)",
            IDEMPOTENCY_HEADER,
        )
    return value


def _api_error(error: BillingError) -> BillingError:
    """The core's error with the field named as in the API's bodies (an unknown webhook in a
    body is a 422 on ``channels.webhook_id``, not a 404 of the route)."""
    if isinstance(error, NotFound) and error.field == "webhook_id":
        return ValidationError(error.message, code="unknown_webhook", field="channels.webhook_id")
    if error.field in API_FIELDS:
        error.field = API_FIELDS[error.field]
    return error


def spend_routes(engine_provider: Callable[[], Engine], *, clock: Clock, guarded: Guard) -> list[Route]:
    """The caps and alert-rule routes; ``guarded`` decides the caller and the scope."""

    def account_of(request: Request) -> str:
        caller: Caller = request.state.caller
        return caller.account_for(request.path_params["account_id"])

    def change(request: Request, *, idempotent: bool = False) -> Change:
        caller: Caller = request.state.caller
        key = _idempotency_key(request) if idempotent else None
        return Change(actor=caller.actor, at=clock(), via=caller.via, idempotency_key=key)

    def write(command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            with unit_of_work(engine_provider(), write=True) as session:
                return command(session, *args, **kwargs)
        except BillingError as error:
            raise _api_error(error) from None

    def known_account(session: Any, account_id: str) -> None:
        if find_account(session, account_id) is None:
            raise NotFound(f"account {shown_id(account_id)} does not exist", field="account_id")

    # --- Caps -------------------------------------------------------------------------------------

    def caps_payload(account_id: str) -> dict[str, Any]:
        at = clock()
        with unit_of_work(engine_provider()) as session:
            known_account(session, account_id)
            statuses = cap_statuses(session, account_id, at=at)
        return {"account_id": account_id, "caps": [cap_status_json(s) for s in statuses], "as_of": iso(at)}

    async def get_caps(request: Request) -> Response:
        return APIJSONResponse(await run_in_threadpool(caps_payload, account_of(request)))

    async def post_cap(request: Request) -> Response:
        account_id = account_of(request)
        body = cap_body(await read_body(request, limit=MAX_SPEND_BODY_BYTES))
        answer, replayed = await run_in_threadpool(
            write,
            api_commands.create_cap,
            change(request, idempotent=True),
            account_id=account_id,
            scope=body.scope,
            scope_value=body.value,
            period=body.period,
            limit=body.limit,
            mode=body.mode,
        )
        return _created(request, answer, replayed)

    async def patch_cap(request: Request) -> Response:
        account_id = account_of(request)
        cap_id = _id(request, "cap_id", "cap")
        changes = cap_patch(await read_body(request, limit=MAX_SPEND_BODY_BYTES))
        answer = await run_in_threadpool(
            write, api_commands.update_cap, change(request), account_id=account_id, cap_id=cap_id, **changes
        )
        return APIJSONResponse(answer)

    async def delete_cap(request: Request) -> Response:
        account_id = account_of(request)
        cap_id = _id(request, "cap_id", "cap")
        await run_in_threadpool(
            write, api_commands.delete_cap, change(request), account_id=account_id, cap_id=cap_id
        )
        return Response(status_code=204)

    # --- Alert rules ------------------------------------------------------------------------------

    def rules_payload(account_id: str) -> dict[str, Any]:
        with unit_of_work(engine_provider()) as session:
            known_account(session, account_id)
            rules = list_rules(session, account_id)
        return {"account_id": account_id, "alert_rules": [rule_json(r) for r in rules]}

    async def get_rules(request: Request) -> Response:
        return APIJSONResponse(await run_in_threadpool(rules_payload, account_of(request)))

    async def post_rule(request: Request) -> Response:
        account_id = account_of(request)
        rule, paused = new_rule(
            rule_fields(await read_body(request, limit=MAX_SPEND_BODY_BYTES), patch=False)
        )
        answer, replayed = await run_in_threadpool(
            write,
            api_commands.create_rule,
            change(request, idempotent=True),
            account_id=account_id,
            rule=rule,
            paused=paused,
        )
        return _created(request, answer, replayed)

    async def patch_rule(request: Request) -> Response:
        account_id = account_of(request)
        rule_id = _id(request, "rule_id", "alert rule")
        changes = rule_fields(await read_body(request, limit=MAX_SPEND_BODY_BYTES), patch=True)
        answer = await run_in_threadpool(
            write,
            api_commands.update_rule,
            change(request),
            account_id=account_id,
            rule_id=rule_id,
            changes=changes,
        )
        return APIJSONResponse(answer)

    async def delete_rule(request: Request) -> Response:
        account_id = account_of(request)
        rule_id = _id(request, "rule_id", "alert rule")
        await run_in_threadpool(
            write, api_commands.delete_rule, change(request), account_id=account_id, rule_id=rule_id
        )
        return Response(status_code=204)

    caps_path = "/api/v1/accounts/{account_id}/caps"
    rules_path = "/api/v1/accounts/{account_id}/alert-rules"
    return [
        Route(caps_path, guarded(get_caps, scope=READ_SCOPES), methods=["GET"]),
        Route(caps_path, guarded(post_cap, scope=SPEND_WRITE), methods=["POST"]),
        Route(caps_path + "/{cap_id}", guarded(patch_cap, scope=SPEND_WRITE), methods=["PATCH"]),
        Route(caps_path + "/{cap_id}", guarded(delete_cap, scope=SPEND_WRITE), methods=["DELETE"]),
        Route(rules_path, guarded(get_rules, scope=READ_SCOPES), methods=["GET"]),
        Route(rules_path, guarded(post_rule, scope=SPEND_WRITE), methods=["POST"]),
        Route(rules_path + "/{rule_id}", guarded(patch_rule, scope=SPEND_WRITE), methods=["PATCH"]),
        Route(rules_path + "/{rule_id}", guarded(delete_rule, scope=SPEND_WRITE), methods=["DELETE"]),
    ]


def _created(request: Request, answer: dict[str, Any], replayed: bool) -> Response:
    response = APIJSONResponse(answer, status_code=201)
    response.headers["Location"] = f"{request.url.path}/{answer['id']}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
