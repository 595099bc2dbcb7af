"""The session routes and the portal-paths middleware, over HTTP (Starlette's TestClient).

A stand-in for Streamlit answers ``/auth/login`` (off to the provider), ``/oauth2callback``
(back home, as Streamlit does) and every other path with its single-page app.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from app.session_routes import NEXT_COOKIE, PortalPathsMiddleware, safe_local_path, session_routes
from core.db import unit_of_work
from core.sessions import SESSION_COOKIE, mint_token, read_token, session_ended, session_secret

ORIGIN = "http://testserver"


def _streamlit_stand_in() -> list[Route]:
    async def login(request: Request) -> Response:
        return RedirectResponse("https://idp.example/authorize?state=s", status_code=302)

    async def callback(request: Request) -> Response:
        return RedirectResponse("/", status_code=302)

    async def spa(request: Request) -> Response:
        return HTMLResponse("<html>the portal</html>")

    async def widget(request: Request) -> Response:
        return HTMLResponse("a route of someone's")

    return [
        Route("/auth/login", login),
        Route("/oauth2callback", callback),
        Route("/widgets/{kind}/{id}", widget),
        Route("/{path:path}", spa, name="static-assets"),  # as Streamlit names its app's mount
    ]


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("METERLINE_ENV", raising=False)
    monkeypatch.delenv("METERLINE_SESSION_SECRET", raising=False)
    app = Starlette(
        routes=[*session_routes(lambda: engine), *_streamlit_stand_in()],
        middleware=[Middleware(PortalPathsMiddleware)],
    )
    with TestClient(app, base_url=ORIGIN, follow_redirects=False) as test_client:
        yield test_client


def _token(engine: Engine, email: str = "maya@startup.example") -> str:
    return mint_token(session_secret(engine), email, now=datetime.now(UTC))


def test_a_valid_token_becomes_an_httponly_cookie(client: TestClient, engine: Engine) -> None:
    token = _token(engine)
    answer = client.post("/session/demo", content=token, headers={"Origin": ORIGIN})
    assert answer.status_code == 204
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}={token};")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Max-Age=6" in cookie  # about seven days, in seconds (604,7xx)


def test_a_forged_token_or_another_site_is_refused(client: TestClient, engine: Engine) -> None:
    token = _token(engine)
    body, mac = token.split(".")
    assert (
        client.post("/session/demo", content=f"{body}x.{mac}", headers={"Origin": ORIGIN}).status_code == 400
    )
    assert (
        client.post("/session/demo", content=token, headers={"Origin": "https://evil.example"}).status_code
        == 403
    )
    assert client.post("/session/demo", content=token).status_code == 403  # no Origin at all
    assert client.post("/session/demo", content="x" * 10_000, headers={"Origin": ORIGIN}).status_code == 400


def test_no_demo_session_in_production(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _token(engine)
    monkeypatch.setenv("METERLINE_ENV", "production")
    answer = client.post("/session/demo", content=token, headers={"Origin": ORIGIN})
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_ending_removes_the_cookie_and_records_the_session(client: TestClient, engine: Engine) -> None:
    token = _token(engine)
    client.cookies.set(SESSION_COOKIE, token)
    answer = client.post("/session/end", headers={"Origin": ORIGIN})
    assert answer.status_code == 204
    assert answer.headers["set-cookie"].startswith(f'{SESSION_COOKIE}="";')
    browser = read_token(session_secret(engine), token, now=datetime.now(UTC))
    assert browser is not None
    with unit_of_work(engine) as session:
        assert session_ended(session, browser.sid)


def test_a_deep_link_survives_oidc_sign_in(client: TestClient) -> None:
    page = "/balance?range=7d&account=acc_brightpath"
    login = client.get("/auth/login?provider=x", headers={"Referer": ORIGIN + page})
    assert login.status_code == 302 and login.headers["location"].startswith("https://idp.example/")
    assert f"{NEXT_COOKIE}={quote(page, safe='')}" in login.headers["set-cookie"]

    client.cookies.set(NEXT_COOKIE, quote(page, safe=""))
    back = client.get("/oauth2callback?state=s&code=c")
    assert back.status_code == 302
    assert back.headers["location"] == page
    assert back.headers["set-cookie"].startswith(f'{NEXT_COOKIE}="";')  # used once


@pytest.mark.parametrize(
    "referer",
    [
        "https://evil.example/balance",
        ORIGIN + "/",
        ORIGIN + "/api/v1/accounts",
        ORIGIN + "//evil.example/x",
        "",
    ],
)
def test_only_a_page_of_this_site_is_remembered(client: TestClient, referer: str) -> None:
    login = client.get("/auth/login?provider=x", headers={"Referer": referer} if referer else {})
    assert NEXT_COOKIE not in login.headers.get("set-cookie", "")


def test_a_tampered_return_cookie_cannot_send_anyone_off_site(client: TestClient) -> None:
    client.cookies.set(NEXT_COOKIE, quote("//evil.example/phish", safe=""))
    back = client.get("/oauth2callback?state=s&code=c")
    assert back.headers["location"] == "/"


@pytest.mark.parametrize("path", ["/a/b/c", "/balance/extra", "/x/"])
def test_a_path_of_several_segments_goes_to_the_not_found_page(client: TestClient, path: str) -> None:
    answer = client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
    if path == "/x/":
        assert answer.status_code == 200  # one segment: the portal's router answers it
        return
    assert answer.status_code == 302
    assert answer.headers["location"] == f"/not-found?path={quote(path, safe='/')}"


@pytest.mark.parametrize(
    ("path", "home"), [("/overview", "/"), ("/overview/?account=acc_a", "/?account=acc_a")]
)
def test_the_home_pages_own_name_goes_home_with_its_query(client: TestClient, path: str, home: str) -> None:
    answer = client.get(path, headers={"Accept": "text/html"})
    assert answer.status_code == 302 and answer.headers["location"] == home
    assert (
        client.get("/overview", headers={"Accept": "application/json"}).status_code == 200
    )  # not a page load


def test_server_paths_and_assets_pass_through(client: TestClient) -> None:
    for path in ("/static/js/app.js", "/_stcore/health", "/api/v1/x/y", "/widgets/a/1"):
        assert client.get(path, headers={"Accept": "text/html"}).status_code == 200
    assert client.get("/a/b/c", headers={"Accept": "image/png"}).status_code == 200  # not a page load


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("/balance?range=7d", True),
        ("/", True),
        ("//evil.example", False),
        ("/\\evil.example", False),
        ("https://evil.example/", False),
        ("balance", False),
        ("/auth/logout", False),
        ("/x\r\nSet-Cookie: a=b", False),
        ("/" + "a" * 3000, False),
    ],
)
def test_safe_local_path(value: str, safe: bool) -> None:
    assert (safe_local_path(value) == value) is safe
