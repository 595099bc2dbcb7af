"""Read endpoints for the company's backend: accounts, meters, balance."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from core.api import create_api_app
from core.clock import fixed_clock
from core.db import unit_of_work
from core.ledger import grant_credits
from core.money import NANOS_PER_CREDIT
from tests.core.metering.catalog_setup import event, seed_catalog

TOKEN = "read-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(engine: Engine, now: datetime) -> Iterator[TestClient]:
    seed_catalog(engine, now - timedelta(days=60))
    with TestClient(create_api_app(engine, TOKEN, clock=fixed_clock(now))) as test_client:
        yield test_client


def test_accounts_lists_id_name_status(client: TestClient) -> None:
    response = client.get("/api/v1/accounts", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "accounts": [
            {"id": "acc_a", "name": "acc_a", "status": "active"},
            {"id": "acc_b", "name": "acc_b", "status": "active"},
        ]
    }


def test_meters_lists_name_unit_dimensions(client: TestClient) -> None:
    meters = client.get("/api/v1/meters", headers=AUTH).json()["meters"]
    assert {"name": "input_tokens", "unit": "token", "dimensions": ["model", "project", "api_key"]} in meters
    assert [m["name"] for m in meters] == ["input_tokens", "requests", "unpriced"]


def test_balance_shows_grants_and_follows_usage(client: TestClient, engine: Engine, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        grant_credits(
            session,
            account_id="acc_a",
            amount_nanos=5 * NANOS_PER_CREDIT,
            source="purchased",
            at=now,
            expires_at=now + timedelta(days=30),
            cost_basis_cents=500,
        )
    client.post("/api/v1/events", json={"events": [event("e1", quantity=500_000)]}, headers=AUTH)  # 1.00

    answer = client.get("/api/v1/accounts/acc_a/balance", headers=AUTH).json()
    assert answer["balance_nanos"] == 104 * NANOS_PER_CREDIT
    assert answer["balance_credits"] == "104.000000000"
    assert answer["as_of"] == "2026-11-20T12:00:00Z"
    assert [(g["source"], g["remaining_credits"]) for g in answer["grants"]] == [
        ("promotional", "99.000000000"),
        ("purchased", "5.000000000"),
    ]
    assert answer["grants"][1]["expires_at"] == "2026-12-20T12:00:00Z"


def test_balance_of_unknown_account_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/accounts/acc_ghost/balance", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "account_id"


@pytest.mark.parametrize("path", ["/api/v1/accounts", "/api/v1/meters", "/api/v1/accounts/acc_a/balance"])
def test_read_endpoints_need_the_token(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
