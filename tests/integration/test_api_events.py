"""POST /api/v1/events through Starlette's TestClient, on SQLite and PostgreSQL: the happy
path, per-event rejections, and every way a request is refused as a whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from core.api import create_api_app
from core.api.body import MAX_BODY_BYTES
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import UsageEvent
from core.ledger import check_ledger
from tests.core.metering.catalog_setup import event, seed_catalog

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(engine: Engine, now: datetime) -> Iterator[TestClient]:
    seed_catalog(engine, now - timedelta(days=60))
    with TestClient(create_api_app(engine, TOKEN, clock=fixed_clock(now))) as test_client:
        yield test_client


def assert_error(response, status: int, code: str, field: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    assert error["code"] == code and error["field"] == field and error["message"]


def stored(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.count()).select_from(UsageEvent)) or 0)


def test_posted_events_are_accepted_and_resend_is_duplicate(client: TestClient, engine: Engine) -> None:
    body = {"events": [event("e1"), event("e2", dimensions={"model": "atlas", "project": "web"})]}
    first = client.post("/api/v1/events", json=body, headers=AUTH)
    again = client.post("/api/v1/events", json=body, headers=AUTH)

    assert first.status_code == 200
    assert first.json()["accepted"] == 2 and isinstance(first.json()["batch_id"], int)
    assert again.status_code == 200
    assert again.json() == {"batch_id": None, "accepted": 0, "duplicates": ["e1", "e2"], "rejected": []}
    assert stored(engine) == 2
    with unit_of_work(engine) as session:
        assert check_ledger(session).ok


def test_partly_rejected_batch_answers_200_with_reasons(client: TestClient, engine: Engine) -> None:
    body = {"events": [event("ok"), event("neg", quantity=-1), event("frac", quantity=2.5)]}
    response = client.post("/api/v1/events", json=body, headers=AUTH)
    assert response.status_code == 200
    answer = response.json()
    assert answer["accepted"] == 1
    assert answer["rejected"] == [
        {
            "index": 1,
            "event_id": "neg",
            "field": "quantity",
            "code": "must_be_non_negative",
            "message": "quantity cannot be negative",
        },
        {
            "index": 2,
            "event_id": "frac",
            "field": "quantity",
            "code": "not_an_integer",
            "message": "quantity must be a whole number, not 2.5",
        },
    ]


def test_wholly_rejected_batch_still_answers_200(client: TestClient, engine: Engine) -> None:
    response = client.post("/api/v1/events", json={"events": [event("x", meter="nope")]}, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["accepted"] == 0 and response.json()["batch_id"] is None
    assert response.json()["rejected"][0]["code"] == "unknown_meter"


def test_conflicting_resend_is_reported_per_event(client: TestClient) -> None:
    client.post("/api/v1/events", json={"events": [event("e1", quantity=1)]}, headers=AUTH)
    response = client.post("/api/v1/events", json={"events": [event("e1", quantity=2)]}, headers=AUTH)
    [rejection] = response.json()["rejected"]
    assert (rejection["field"], rejection["code"]) == ("event_id", "conflict")


def test_missing_token_is_401(client: TestClient) -> None:
    response = client.post("/api/v1/events", json={"events": []})
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_token_is_401(client: TestClient, engine: Engine) -> None:
    response = client.post(
        "/api/v1/events", json={"events": [event("e1")]}, headers={"Authorization": "Bearer nope"}
    )
    assert_error(response, 401, "unauthorized")
    basic = client.post("/api/v1/events", json={"events": []}, headers={"Authorization": f"Basic {TOKEN}"})
    assert_error(basic, 401, "unauthorized")
    assert stored(engine) == 0


def test_bad_json_is_400(client: TestClient) -> None:
    response = client.post("/api/v1/events", content=b'{"events": [', headers=AUTH)
    assert_error(response, 400, "bad_json")
    assert_error(client.post("/api/v1/events", content=b"", headers=AUTH), 400, "bad_json")
    assert_error(client.post("/api/v1/events", content=b"\xff\xfe", headers=AUTH), 400, "bad_json")


def test_missing_events_key_is_422(client: TestClient) -> None:
    assert_error(client.post("/api/v1/events", json={"event": []}, headers=AUTH), 422, "required", "events")
    assert_error(client.post("/api/v1/events", json=[event("e1")], headers=AUTH), 422, "not_an_object")
    assert_error(
        client.post("/api/v1/events", json={"events": {}}, headers=AUTH), 422, "not_a_list", "events"
    )


def test_too_many_events_is_422(client: TestClient, engine: Engine) -> None:
    body = {"events": [event(f"e{i}", quantity=1) for i in range(5_001)]}
    assert_error(client.post("/api/v1/events", json=body, headers=AUTH), 422, "too_many_events", "events")
    assert stored(engine) == 0


def test_oversized_body_is_413(client: TestClient) -> None:
    padding = "x" * (MAX_BODY_BYTES + 10)
    response = client.post("/api/v1/events", content=json.dumps({"events": [], "pad": padding}), headers=AUTH)
    assert_error(response, 413, "too_large")
    assert response.json()["error"]["message"] == "the body is over 8 MiB; send smaller batches"


def test_oversized_streamed_body_without_length_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"events": [], "pad": "'
        for _ in range(9):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = client.post("/api/v1/events", content=chunks(), headers=AUTH)
    assert_error(response, 413, "too_large")


def test_odd_event_shapes_never_cause_a_500(client: TestClient) -> None:
    body = {
        "events": [None, 3, [], {"event_id": {"a": 1}}, {"quantity": "NaN"}, {"dimensions": {"model": None}}]
    }
    response = client.post("/api/v1/events", json=body, headers=AUTH)
    assert response.status_code == 200
    assert [r["index"] for r in response.json()["rejected"]] == [0, 1, 2, 3, 4, 5]
    deep = b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert client.post("/api/v1/events", content=deep, headers=AUTH).status_code in (400, 422)
