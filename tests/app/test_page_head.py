"""The history script and the stylesheet go into the head of every page the portal serves, and
nowhere else (Starlette's TestClient; a stand-in for Streamlit serves its page compressed, as
Streamlit does)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from app.history import ONE_ENTRY_PER_STEP
from app.page_head import PageHeadMiddleware, head_extras

PAGE = "<!DOCTYPE html><html><head><title>Streamlit</title></head><body>" + "x" * 2000 + "</body></html>"
HTML = {"Accept": "text/html,application/xhtml+xml", "Accept-Encoding": "gzip"}


def _streamlit_stand_in() -> list[Route]:
    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE, headers={"ETag": '"streamlit-index"'})

    async def health(request: Request) -> Response:
        return HTMLResponse("<head>ok</head>")

    async def api(request: Request) -> Response:
        return JSONResponse({"head": "<head>"})

    return [Route("/_stcore/health", health), Route("/api/usage", api), Route("/{path:path}", page)]


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = Starlette(
        routes=_streamlit_stand_in(),
        middleware=[Middleware(PageHeadMiddleware), Middleware(GZipMiddleware, minimum_size=500)],
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/", "/usage?account=acc_brightpath", "/not-found?path=/a/b"])
def test_every_page_gets_the_script_and_the_stylesheet_atop_its_head(client: TestClient, path: str) -> None:
    answer = client.get(path, headers=HTML)
    assert answer.status_code == 200
    assert answer.content.startswith(b"<!DOCTYPE html><html><head>" + head_extras() + b"<title>")
    assert head_extras().startswith(ONE_ENTRY_PER_STEP)
    assert b"<style>\n/* The portal's look" in head_extras() and head_extras().endswith(b"</style>")
    assert answer.content.count(ONE_ENTRY_PER_STEP) == 1
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert "etag" not in answer.headers  # it named the page without the script


def test_other_answers_are_left_as_they_are(client: TestClient) -> None:
    assert client.get("/_stcore/health", headers=HTML).content == b"<head>ok</head>"
    assert client.get("/api/usage", headers=HTML).json() == {"head": "<head>"}
    assert ONE_ENTRY_PER_STEP not in client.get("/", headers={"Accept": "*/*"}).content  # not a page load
    compressed = client.get("/", headers={"Accept": "*/*", "Accept-Encoding": "gzip"})
    assert compressed.headers["content-encoding"] == "gzip"
