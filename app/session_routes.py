"""HTTP pieces of portal sessions, beside the API on the one port (no Streamlit imports).

- ``POST /session/demo`` puts a demo-mode session token the portal minted into an
  HttpOnly cookie, after checking its signature; ``POST /session/end`` removes it and
  records the session as ended (see ``core.sessions``). Both are same-origin only (the
  ``Origin`` header must be this server), so another site cannot sign a visitor in or out.
- Deep links through OIDC sign-in: ``st.login`` sends the browser to ``/auth/login`` from the
  page it was on; the middleware keeps that page's path (``Referer``, same origin only) in a
  short-lived cookie and, when Streamlit's ``/oauth2callback`` sends the browser home,
  sends it back to that page instead.
- A page load of a path of several segments (``/a/b/c``) that no route serves would get
  Streamlit's single-page app with its relative asset links broken (a blank page): it is
  sent to ``/not-found?path=...``, which the portal's router answers with a friendly page.
  Routes others add (``/payments/...``) are found in the app's router and left alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import Engine
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.sessions import SESSION_COOKIE, end_session, read_token, session_secret

NEXT_COOKIE = "meterline_next"
NEXT_MAX_AGE_S = 600
MAX_BODY_BYTES = 4096
MAX_NEXT_LENGTH = 2000
LOGIN_PATH = "/auth/login"
CALLBACK_PATH = "/oauth2callback"
NOT_FOUND_PATH = "/not-found"
# The home page's own name: Streamlit serves the default page at "/" only, and would answer its
# name with the home page under a "Page not found" flash; the address is sent home instead.
HOME_ALIASES = frozenset({"/overview"})
# Paths that are not portal pages: never a sign-in return target, never "not found" here.
SERVER_PREFIXES = (
    "/api/",
    "/_stcore/",
    "/static/",
    "/media/",
    "/component/",
    "/app/static/",
    "/auth/",
    "/session/",
    "/oauth2callback",
    "/.well-known/",
    "/payments/",  # the sandbox's checkout and 3-D Secure pages (core.api.payments)
    "/portal/",  # a portal session's start link (app/portal_routes.py)
)


def _same_host(url: str, headers: Headers) -> bool:
    """True when ``url`` is on the host this request was sent to (the scheme may differ behind a
    TLS-terminating proxy; another site always differs in host)."""
    parts = urlsplit(url)
    return bool(parts.scheme in ("http", "https") and parts.netloc) and parts.netloc == headers.get("host")


def same_origin(request: Request) -> bool:
    """True when the request comes from a page of this server (``Origin`` names this host)."""
    return _same_host(request.headers.get("origin", ""), request.headers)


def safe_local_path(value: str | None) -> str | None:
    """``value`` if it is a path on this server a person may be sent back to, else None.

    Refuses anything that could leave the site (``//host``, ``/\\host``, a scheme), control
    characters, overlong values and the server's own non-page paths.
    """
    if not value or len(value) > MAX_NEXT_LENGTH or not value.startswith("/"):
        return None
    if value.startswith(("//", "/\\")) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    if parts.path.startswith(SERVER_PREFIXES) or parts.path == NOT_FOUND_PATH:
        return None
    return value


def _is_production() -> bool:
    return os.environ.get("METERLINE_ENV", "").strip().lower() == "production"


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def session_routes(
    engine_provider: Callable[[], Engine], *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> list[BaseRoute]:
    """``POST /session/demo`` and ``POST /session/end``."""

    async def token_from(request: Request) -> str:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return ""
        return body.decode("ascii", "replace").strip()

    async def start_demo_session(request: Request) -> Response:
        if _is_production():
            return Response("demo sign-in is turned off in production", status_code=403)
        if not same_origin(request):
            return Response("same-origin requests only", status_code=403)
        token = await token_from(request)
        now = clock()
        browser = read_token(session_secret(engine_provider()), token, now=now)
        if browser is None:
            return Response("not a valid session token", status_code=400)
        response = Response(status_code=204)
        _cookie(response, request, SESSION_COOKIE, token, int((browser.expires_at - now).total_seconds()))
        return response

    async def end_browser_session(request: Request) -> Response:
        if not same_origin(request):
            return Response("same-origin requests only", status_code=403)
        now = clock()
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            engine = engine_provider()
            browser = read_token(session_secret(engine), token, now=now)
            if browser is not None:
                end_session(engine, browser.sid, until=browser.expires_at, now=now)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return [
        Route("/session/demo", start_demo_session, methods=["POST"]),
        Route("/session/end", end_browser_session, methods=["POST"]),
    ]


SPA_MOUNT_NAME = "static-assets"  # Streamlit's mount at "/" that answers any path with its app


def _served_by_a_route(scope: Scope) -> bool:
    """True when a route of the app (ours, or Streamlit's own but its single-page-app mount)
    answers this path: such a path is not a portal page, whatever its depth."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", None) or []
    for route in routes:
        if getattr(route, "name", None) == SPA_MOUNT_NAME:
            continue
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return True
    return False


class PortalPathsMiddleware:
    """Deep links through OIDC sign-in, and a friendly answer for paths of several segments."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        if path == LOGIN_PATH:
            await self._remember_page(scope, receive, send, headers)
        elif path == CALLBACK_PATH:
            await self._return_to_page(scope, receive, send, headers)
        elif path.rstrip("/") in HOME_ALIASES and "text/html" in headers.get("accept", ""):
            query = scope.get("query_string", b"").decode("latin-1")
            home = "/" + (f"?{query}" if query else "")
            await Response(status_code=302, headers={"location": home})(scope, receive, send)
        elif self._is_deep_unknown_page(path, headers) and not _served_by_a_route(scope):
            target = f"{NOT_FOUND_PATH}?path={quote(path[:MAX_NEXT_LENGTH], safe='/')}"
            await Response(status_code=302, headers={"location": target})(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @staticmethod
    def _is_deep_unknown_page(path: str, headers: Headers) -> bool:
        """A browser navigation to ``/a/b...``: no portal page has more than one segment."""
        if path.startswith(SERVER_PREFIXES) or "text/html" not in headers.get("accept", ""):
            return False
        return "/" in path.strip("/")

    async def _remember_page(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        referer = headers.get("referer", "")
        parts = urlsplit(referer)
        scheme = scope.get("scheme", "http")
        target = None
        if _same_host(referer, headers):
            target = safe_local_path(parts.path + (f"?{parts.query}" if parts.query else ""))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and target and target != "/":
                cookie = Response()
                cookie.set_cookie(
                    NEXT_COOKIE,
                    quote(target, safe=""),
                    max_age=NEXT_MAX_AGE_S,
                    path="/",
                    httponly=True,
                    samesite="lax",
                    secure=scheme == "https",
                )
                MutableHeaders(scope=message).append("set-cookie", cookie.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _return_to_page(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        request = Request(scope)
        raw = request.cookies.get(NEXT_COOKIE)
        target = safe_local_path(unquote(raw)) if raw else None

        async def send_to_page(message: Message) -> None:
            if message["type"] == "http.response.start" and raw is not None:
                response_headers = MutableHeaders(scope=message)
                sent_home = message["status"] in (302, 303, 307) and response_headers.get("location") == "/"
                if target and sent_home:
                    response_headers["location"] = target
                cleared = Response()
                cleared.delete_cookie(NEXT_COOKIE, path="/")
                response_headers.append("set-cookie", cleared.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, send_to_page)
