"""The one-port server: st.App with the API routes on the portal's engine; the demo token is printed."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from types import ModuleType

import pytest
from starlette.testclient import TestClient
from streamlit.runtime import Runtime

from app.resources import get_engine


def load_server() -> ModuleType:
    """Import app/server.py afresh (it prints the token at import), with an empty token cache."""
    previous = sys.modules.pop("app.server", None)
    if previous is not None:
        previous.api_token.clear()
    get_engine.clear()
    return importlib.import_module("app.server")


def test_api_routes_answer_on_the_portal_app(portal_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERLINE_API_TOKEN", "test-token")
    server = load_server()
    with TestClient(server.app) as client:
        refused = client.get("/api/v1/accounts")
        assert refused.status_code == 401
        answer = client.get("/api/v1/accounts", headers={"Authorization": "Bearer test-token"})
        assert answer.status_code == 200
        assert {a["id"] for a in answer.json()["accounts"]} == {"acc_acme", "acc_borealis", "acc_globex"}
        assert client.get("/_stcore/health").status_code == 200
        # The lifespan runs the periodic jobs (grant expiry) beside the server...
        assert "meterline-jobs" in {thread.name for thread in threading.enumerate()}
    # ...and stops them with it.
    deadline = time.monotonic() + 5
    while "meterline-jobs" in {t.name for t in threading.enumerate()} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "meterline-jobs" not in {thread.name for thread in threading.enumerate()}
    # st.App starts Streamlit's process-wide Runtime; drop it so the next app (or AppTest) can start one.
    Runtime._instance = None
    server.api_token.clear()


def test_one_start_banner_with_url_token_sign_in_and_how_to_stop(
    portal_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("METERLINE_API_TOKEN", raising=False)
    monkeypatch.delenv("METERLINE_ENV", raising=False)
    monkeypatch.setenv("METERLINE_SUPPORT_EMAILS", "support@meterline.example")
    monkeypatch.setenv("METERLINE_JOBS", "off")
    server = load_server()
    token = server.api_token()
    assert token.startswith("mtl_demo_")
    try:
        with TestClient(server.app):
            pass  # the lifespan prints the banner as the server starts
    finally:
        Runtime._instance = None
    out = capsys.readouterr().out
    assert out.count("Meterline is running at http://localhost:") == 1
    assert f"API token:       {token}  (demo token; set METERLINE_API_TOKEN to choose your own)" in out
    assert "Sign-in:         demo mode" in out
    assert "Support agents:  support@meterline.example" in out  # what make run sets, said once
    assert "Stop:            Ctrl+C" in out
    server.api_token.clear()
    get_engine.clear()


def test_the_portal_answers_unknown_paths_without_a_blank_page(
    portal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the real one-port app: API paths answer JSON, deep page paths go to the not-found page,
    the session routes are mounted."""
    monkeypatch.setenv("METERLINE_API_TOKEN", "test-token")
    monkeypatch.setenv("METERLINE_JOBS", "off")
    server = load_server()
    try:
        with TestClient(server.app, follow_redirects=False) as client:
            missing = client.get("/api/v1/nope", headers={"Accept": "text/html"})
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
            wrong = client.delete("/api/v1/events")
            assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
            deep = client.get("/a/b/c", headers={"Accept": "text/html"})
            assert deep.status_code == 302 and deep.headers["location"] == "/not-found?path=/a/b/c"
            assert client.get("/_stcore/health").status_code == 200
            assert client.post("/session/demo", content="x").status_code == 403  # same-origin only
    finally:
        Runtime._instance = None
        server.api_token.clear()
