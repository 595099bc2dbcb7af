"""``GET /portal/start?token=…``: the start link of a portal session (no Streamlit imports).

The company's backend minted the session (``POST /api/v1/portal-sessions``) and put this link in
an iframe of its own product. The first open uses the start token (``core.portal_sessions``),
keeps the session's *browser token* in a cookie and sends the frame to the session's first page
with the browser token in the address (``/?portal=…``): cookies in a third-party frame are often
refused, and the address still carries the session then. Any later open of the same link is
refused with a page that says so; an ended or expired session gets the "ended" page offering its
``return_url``.

The cookie is ``SameSite=None; Secure`` when the request came over HTTPS (``X-Forwarded-Proto``
behind a proxy), so a browser sends it inside the company's frame; ``Lax`` over plain HTTP,
where ``SameSite=None`` cookies are refused anyway. It lasts until the session expires.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.api.html_page import page
from core.clock import Clock, system_clock
from core.db import unit_of_work
from core.portal_sessions import (
    PORTAL_COOKIE,
    PORTAL_PARAM,
    START_PATH,
    PortalView,
    StartOutcome,
    browser_token,
    start_portal_session,
)
from core.sessions import session_secret

COMPANY_VARIABLE = "METERLINE_EMBED_COMPANY_NAME"
NO_STORE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


def company_name(return_url: str | None) -> str:
    """Whom "Return to …" names: ``METERLINE_EMBED_COMPANY_NAME``, else the return address's host."""
    configured = os.environ.get(COMPANY_VARIABLE, "").strip()
    if configured:
        return configured[:80]
    host = urlsplit(return_url).hostname if return_url else None
    return host or "the site you came from"


def over_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _return_link(view: PortalView | None) -> str:
    if view is None or not view.return_url:
        return ""
    name = html.escape(company_name(view.return_url))
    # A new tab: inside the company's frame, the company's own page would open in the frame.
    return (
        f'<p><a href="{html.escape(view.return_url, quote=True)}" target="_blank" '
        f'rel="noopener noreferrer">Return to {name}</a></p>'
    )


def refusal_page(outcome: StartOutcome, view: PortalView | None) -> HTMLResponse:
    """The page for a start link that starts nothing."""
    if outcome in ("ended", "expired"):
        title, status = "This session has ended", 410
        company = html.escape(company_name(view.return_url if view else None))
        text = f"This session has ended. Return to {company}."
    elif outcome == "used":
        title, status = "This link was already used", 409
        text = (
            "This sign-in link works once, and it has been opened already. "
            f"Open the page again from {html.escape(company_name(view.return_url if view else None))} "
            "to get a new one."
        )
    else:
        title, status = "This link is not valid", 404
        text = "This sign-in link is not valid. Open the page again from the site you came from."
    body = f"<p>{text}</p>{_return_link(view)}"
    return HTMLResponse(page(title, body), status_code=status, headers=NO_STORE)


def portal_start_routes(
    engine_provider: Callable[[], Engine], *, clock: Clock = system_clock
) -> list[BaseRoute]:
    """``GET /portal/start``."""

    def use(token: str | None, at: datetime) -> tuple[StartOutcome, PortalView | None, str | None]:
        engine = engine_provider()
        secret = session_secret(engine)
        with unit_of_work(engine, write=True) as session:
            outcome, view = start_portal_session(session, token, secret=secret, at=at)
        return outcome, view, browser_token(secret, view) if outcome == "started" and view else None

    async def start(request: Request) -> Response:
        now = clock()
        outcome, view, token = await run_in_threadpool(use, request.query_params.get("token"), now)
        if outcome != "started" or view is None or token is None:
            return refusal_page(outcome, view)
        response = RedirectResponse(
            "/?" + urlencode({PORTAL_PARAM: token}), status_code=303, headers=NO_STORE
        )
        secure = over_https(request)
        response.set_cookie(
            PORTAL_COOKIE,
            token,
            max_age=max(1, int((view.expires_at - now).total_seconds())),
            path="/",
            httponly=True,
            samesite="none" if secure else "lax",
            secure=secure,
        )
        return response

    return [Route(START_PATH, start, methods=["GET"])]
