"""``POST /api/v1/portal-sessions`` and ``DELETE /api/v1/portal-sessions/{id}`` (server token only).

The company's backend mints a portal session for one account and gets a single-use start link to
put in an iframe of its own product; it may end the session early. See ``core.portal_sessions``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.api.body import read_body
from core.api.errors import APIJSONResponse, RequestError
from core.clock import Clock
from core.db import unit_of_work
from core.metering.exact_json import NotJSON, loads_exact
from core.portal_sessions import (
    create_portal_session,
    end_portal_session,
    parse_request,
    start_link,
)
from core.sessions import session_secret

MAX_PORTAL_BODY_BYTES = 16 * 1024
Handler = Callable[[Request], Awaitable[Response]]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public_base(request: Request) -> str:
    """Where browsers reach the portal: ``METERLINE_PUBLIC_URL``, else the address this request
    was sent to."""
    configured = os.environ.get("METERLINE_PUBLIC_URL", "").strip().rstrip("/")
    return configured or str(request.base_url).rstrip("/")


def portal_session_routes(
    engine_provider: Callable[[], Engine], *, clock: Clock, guarded: Callable[[Handler], Handler]
) -> list[Route]:
    """The two routes, wrapped by the API's ``guarded`` (server token, error answers)."""

    def mint(document: object, base: str) -> dict[str, object]:
        request = parse_request(document)
        engine = engine_provider()
        secret = session_secret(engine)
        with unit_of_work(engine, write=True) as session:
            minted = create_portal_session(session, request, secret=secret, at=clock())
        return {
            "id": minted.id,
            "url": start_link(base, minted.token),
            "expires_at": _stamp(minted.expires_at),
        }

    async def post_portal_session(request: Request) -> Response:
        body = await read_body(request, limit=MAX_PORTAL_BODY_BYTES)
        if not body.strip():
            raise RequestError(400, "bad_json", 'the body is empty; send {"account_id": ..., "role": ...}')
        try:
            document = loads_exact(body)
        except NotJSON as error:
            raise RequestError(400, "bad_json", f"the body is not valid JSON: {error}") from None
        answer = await run_in_threadpool(mint, document, public_base(request))
        return APIJSONResponse(answer, status_code=201, headers={"cache-control": "no-store"})

    def end(session_id: str) -> dict[str, object]:
        with unit_of_work(engine_provider(), write=True) as session:
            view = end_portal_session(session, session_id, at=clock())
        assert view.ended_at is not None
        return {"id": view.id, "ended_at": _stamp(view.ended_at)}

    async def delete_portal_session(request: Request) -> Response:
        return APIJSONResponse(await run_in_threadpool(end, request.path_params["session_id"]))

    return [
        Route("/api/v1/portal-sessions", guarded(post_portal_session), methods=["POST"]),
        Route("/api/v1/portal-sessions/{session_id}", guarded(delete_portal_session), methods=["DELETE"]),
    ]
