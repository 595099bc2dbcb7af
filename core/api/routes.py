"""HTTP routes of the metering API (Starlette), served by Streamlit's ``st.App`` on its port.

    POST /api/v1/events                         ingest up to 5,000 events (8 MiB body)
    GET  /api/v1/accounts                       id, name, status of every account
    GET  /api/v1/meters                         name, unit, dimensions of every meter
    GET  /api/v1/accounts/{account_id}/balance  balance, open grants, as-of time
    GET  /api/v1/openapi.json                   this API as an OpenAPI 3.1 document (no token)
    POST /api/v1/authorize                      may an account spend now? (core/spend/api.py)
    POST /api/v1/portal-sessions                a single-use link into the portal for one account
    DELETE /api/v1/portal-sessions/{id}         end that portal session (core/api/portal_routes.py)
    GET  /api/v1/usage, /costs, /balance        the customer routes (core/api/customer_routes.py)
    *    /api/v1/accounts/{id}/caps, /alert-rules  caps and alert rules (core/api/spend_routes.py)
    *    /api/...                               anything else: JSON 404 (no such path) or 405 (wrong method)

Every other route needs the server token (``Authorization: Bearer …``); the customer routes also
take a customer API key with the route's scope, for its own account (``core.api.auth``). Errors
are ``{"error": {"code", "message", "field"}}``; bad input is never a 500.

Status of ``POST /api/v1/events``: **200 whenever the request itself was valid and the
batch was processed**, even when some or all events were rejected: the body says, per
event, what happened (``accepted``, ``duplicates``, ``rejected`` with index, field and
code). A client retries only on a network error, 5xx or 503 (the batch is then wholly in
or wholly out, and resending the same ids is safe); rejected events must be fixed, not
retried. A request refused as a whole gets 400 (bad JSON), 401 (token), 413 (body over
8 MiB) or 422 (no ``events`` list, more than 5,000 events).

Database work is synchronous and runs in Starlette's threadpool, never on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from core.accounts import all_accounts
from core.api.auth import Authenticator
from core.api.body import parse_events, read_body
from core.api.customer_routes import balance_answer, customer_routes
from core.api.errors import APIJSONResponse, RequestError, billing_error_response, error_response
from core.api.openapi import openapi_document
from core.api.portal_routes import portal_session_routes
from core.api.rate_limit import TokenBucketLimiter, rate_per_minute
from core.api.spend_routes import spend_routes
from core.clock import Clock, system_clock
from core.db import unit_of_work
from core.db.models import Meter
from core.errors import BillingError
from core.ledger import balance_view
from core.metering import ingest_events
from core.spend.api import authorize_route
from core.spend.runtime import SpendRuntime

log = logging.getLogger("meterline.api")

Handler = Callable[[Request], Awaitable[Response]]


def api_routes(
    engine_provider: Callable[[], Engine],
    *,
    token_provider: Callable[[], str],
    clock: Clock = system_clock,
    after_ingest: Callable[[list[Any]], object] | None = None,
    spend: SpendRuntime | None = None,
    key_limiter: TokenBucketLimiter | None = None,
) -> list[BaseRoute]:
    """The API's routes; ``engine_provider`` and ``token_provider`` are called per request.

    ``after_ingest`` runs with a batch's raw events once it has committed (the auto-recharge
    check); it must be quick and never raise. ``spend`` is the caller's spend runtime, so that
    its lifespan can write the authorize refusals still tallied at shutdown (one is made if not).
    ``key_limiter`` rate-limits customer API keys (default: ``METERLINE_CUSTOMER_KEY_RATE_PER_MINUTE``).
    """
    authenticator = Authenticator(
        engine_provider,
        token_provider,
        clock=clock,
        limiter=key_limiter or TokenBucketLimiter(rate_per_minute()),
    )

    def guarded(handler: Handler, *, scope: str | tuple[str, ...] | None = None) -> Handler:
        """``handler`` behind the caller check: the server token, or (with ``scope``) a customer API
        key holding it; the caller is ``request.state.caller``."""

        async def endpoint(request: Request) -> Response:
            try:
                request.state.caller = await authenticator.caller(request, scope=scope)
                return await handler(request)
            except RequestError as error:
                return error.response()
            except BillingError as error:
                return billing_error_response(error)
            except OperationalError:
                log.exception("database unavailable during %s", request.url.path)
                return error_response(
                    503, "unavailable", "the database is busy or unavailable; retry shortly"
                )
            except Exception:
                log.exception("unexpected error in %s", request.url.path)
                return error_response(500, "internal", "unexpected server error; the batch was not stored")

        return endpoint

    if spend is None:
        spend = SpendRuntime(engine_provider, clock=clock)  # authorize snapshots, post-ingestion alerts

    def ingest(body: bytes) -> dict[str, object]:
        raw_events = parse_events(body)  # parsing 8 MiB of JSON would stall the event loop too
        with unit_of_work(engine_provider(), write=True) as session:
            # The clock, not a time: ingestion reads it again once the accounts are locked.
            result = ingest_events(session, raw_events, clock=clock, source="api")
        if result.batch_id is not None:
            # The batch is committed: whatever follows must not turn the answer into an error
            # (a 500 would say "not stored" about stored events).
            try:
                spend.after_ingest(raw_events)  # alerts and authorize catch up off this thread
                if after_ingest is not None:
                    after_ingest(raw_events)
            except Exception:
                log.exception("post-ingestion hook failed after batch %s committed", result.batch_id)
        return result.to_dict()

    async def post_events(request: Request) -> Response:
        body = await read_body(request, advice="send smaller batches")
        return APIJSONResponse(await run_in_threadpool(ingest, body))

    def accounts_payload() -> dict[str, object]:
        with unit_of_work(engine_provider()) as session:
            accounts = all_accounts(session)
        return {"accounts": [{"id": a.account_id, "name": a.name, "status": a.status} for a in accounts]}

    async def get_accounts(request: Request) -> Response:
        return APIJSONResponse(await run_in_threadpool(accounts_payload))

    def meters_payload() -> dict[str, object]:
        with unit_of_work(engine_provider()) as session:
            meters = session.execute(
                select(Meter.name, Meter.unit, Meter.dimensions).order_by(Meter.name)
            ).all()
        return {"meters": [{"name": n, "unit": u, "dimensions": list(d or [])} for n, u, d in meters]}

    async def get_meters(request: Request) -> Response:
        return APIJSONResponse(await run_in_threadpool(meters_payload))

    def balance_payload(account_id: str) -> dict[str, object]:
        with unit_of_work(engine_provider()) as session:
            return balance_answer(balance_view(session, account_id, at=clock()))

    async def get_balance(request: Request) -> Response:
        account_id = request.path_params["account_id"]
        return APIJSONResponse(await run_in_threadpool(balance_payload, account_id))

    routes: list[BaseRoute] = [
        Route("/api/v1/events", guarded(post_events), methods=["POST"]),
        Route("/api/v1/accounts", guarded(get_accounts), methods=["GET"]),
        Route("/api/v1/meters", guarded(get_meters), methods=["GET"]),
        Route("/api/v1/accounts/{account_id}/balance", guarded(get_balance), methods=["GET"]),
        authorize_route(spend, guarded),
        *customer_routes(engine_provider, clock=clock, guarded=guarded),
        *spend_routes(engine_provider, clock=clock, guarded=guarded),
        *portal_session_routes(engine_provider, clock=clock, guarded=guarded),
        # Public, like any API description: it reads no data. A sync endpoint runs in the threadpool.
        Route("/api/v1/openapi.json", lambda request: JSONResponse(openapi_document()), methods=["GET"]),
    ]
    # Keep it last: it answers every /api/ request no route above took.
    return [*routes, api_fallback_route(routes)]


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def api_fallback_route(routes: list[BaseRoute]) -> Route:
    """Every ``/api/...`` request no route in ``routes`` took: JSON 405 when the path is one of
    theirs (with ``Allow``), else JSON 404, never the portal's HTML (the page server answers any
    other path with its single-page app). Not an operation of the API: ``include_in_schema`` is off,
    so the OpenAPI document does not describe it. Must come after ``routes``.
    """

    def allowed_methods(scope: Scope) -> list[str]:
        allowed: set[str] = set()
        for route in routes:
            if isinstance(route, Route) and route.methods:
                for method in route.methods:
                    # PARTIAL: the path is this route's, the method is not (FULL never reaches here).
                    if route.matches({**scope, "method": method})[0] is Match.FULL:
                        allowed.add(method)
        return sorted(allowed)

    async def fallback(request: Request) -> Response:
        allowed = allowed_methods(request.scope)
        if allowed:
            response = error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.url.path[:200]}; use {', '.join(allowed)}",
            )
            response.headers["Allow"] = ", ".join(allowed)
            return response
        path = request.url.path[:200]  # echo a bounded piece of what was asked for
        return error_response(404, "not_found", f"no API endpoint at {path}; see GET /api/v1/openapi.json")

    return Route("/api/{rest:path}", fallback, methods=ALL_METHODS, include_in_schema=False)
