"""Unknown API paths and wrong methods: the JSON error shape with 404 / 405, never HTML."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core.api import api_routes

TOKEN = "fallback-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _unused_engine() -> Engine:
    raise AssertionError("an unknown path must not touch the database")


@pytest.fixture
def client() -> TestClient:
    return TestClient(Starlette(routes=api_routes(_unused_engine, token_provider=lambda: TOKEN)))


def assert_error(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == code
    return body["error"]


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v1/accounts/acc_x/usage", "/api/v2/events", "/api/", "/api/v1/events/"]
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_api_path_is_a_json_404(client: TestClient, path: str, method: str) -> None:
    error = assert_error(client.request(method, path, headers=AUTH), 404, "not_found")
    assert "openapi.json" in str(error["message"])


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/v1/events", "POST"),
        ("DELETE", "/api/v1/events", "POST"),
        ("POST", "/api/v1/accounts", "GET, HEAD"),
        ("PUT", "/api/v1/accounts/acc_x/balance", "GET, HEAD"),
        ("POST", "/api/v1/openapi.json", "GET, HEAD"),
    ],
)
def test_wrong_method_is_a_json_405_with_allow(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path, headers=AUTH)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow


def test_known_routes_still_answer(client: TestClient) -> None:
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/v1/accounts").status_code == 401  # the token check, not the fallback


def test_a_huge_unknown_path_is_echoed_bounded(client: TestClient) -> None:
    error = assert_error(client.get("/api/" + "x" * 5000), 404, "not_found")
    assert len(str(error["message"])) < 300
