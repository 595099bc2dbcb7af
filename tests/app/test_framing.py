"""Who may frame the portal: ``frame-ancestors`` (and ``X-Frame-Options`` when nobody may) on every
response of the real one-port app: Streamlit's pages and static files, the portal-session start
link, the API; the sandbox checkout never. Also the embed look's configuration, checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit
from starlette.testclient import TestClient
from streamlit.runtime import Runtime

from app.embed import embed_css
from app.framing import embed_origins, frame_headers
from tests.app.test_server import load_server

LISTED = "https://app.example.com"
STATIC = Path(streamlit.__file__).parent / "static" / "static" / "css"


def _paths() -> list[str]:
    asset = next(STATIC.glob("*.css")).name
    return ["/", "/usage", f"/static/css/{asset}", "/portal/start?token=x", "/api/v1/openapi.json"]


@pytest.mark.parametrize(
    ("listed", "policy", "frame_options"),
    [
        (f"{LISTED}, http://127.0.0.1:8600", f"frame-ancestors {LISTED} http://127.0.0.1:8600", None),
        ("", "frame-ancestors 'none'", "DENY"),
    ],
)
def test_every_response_says_who_may_frame_it(
    portal_url: str, monkeypatch: pytest.MonkeyPatch, listed: str, policy: str, frame_options: str | None
) -> None:
    monkeypatch.setenv("METERLINE_API_TOKEN", "test-token")
    monkeypatch.setenv("METERLINE_JOBS", "off")
    monkeypatch.setenv("METERLINE_EMBED_ORIGINS", listed)
    server = load_server()
    try:
        with TestClient(server.app, follow_redirects=False) as client:
            for path in _paths():
                answer = client.get(path, headers={"Accept": "text/html"})
                assert answer.status_code < 500, path
                assert answer.headers["content-security-policy"] == policy, path
                assert answer.headers.get("x-frame-options") == frame_options, path
            index = client.get("/", headers={"Accept": "text/html"})
            assert index.status_code == 200 and "<head>" in index.text  # Streamlit's page itself
            assert index.headers["referrer-policy"] == "same-origin"
            checkout = client.get("/payments/sandbox/checkout/x", headers={"Accept": "text/html"})
            assert checkout.headers["content-security-policy"] == "frame-ancestors 'none'"
            assert checkout.headers["x-frame-options"] == "DENY"
    finally:
        Runtime._instance = None
        server.api_token.clear()


def test_only_origins_are_listed() -> None:
    raw = "https://a.example.com  https://*.b.example:8443/, http://localhost:3000 javascript:x 'none' ;x https://c.example/path"
    assert embed_origins({"METERLINE_EMBED_ORIGINS": raw}) == (
        "https://a.example.com",
        "https://*.b.example:8443",
        "http://localhost:3000",
    )
    assert embed_origins({}) == ()
    assert frame_headers("/payments/sandbox/x", ("https://a.example.com",))["x-frame-options"] == "DENY"


def test_the_embed_look_takes_only_a_colour_and_a_font_list() -> None:
    good = embed_css(
        {"METERLINE_EMBED_PRIMARY_COLOR": "#7b1fa2", "METERLINE_EMBED_FONT": "Inter, sans-serif"}
    )
    assert "#7b1fa2" in good and "font-family: Inter, sans-serif" in good
    hostile = embed_css(
        {"METERLINE_EMBED_PRIMARY_COLOR": "red;}</style><script>", "METERLINE_EMBED_FONT": "x}</style>"}
    )
    assert "script" not in hostile and "</style>" not in hostile and "font-family" not in hostile
