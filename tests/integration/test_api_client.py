"""The Python client against the API: chunking, safe retries, read getters, server token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from core.api import TokenNotConfigured, create_api_app, server_token
from core.client import MeterlineAPIError, MeterlineClient
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import IngestBatch, UsageEvent
from core.ledger import check_ledger
from tests.core.metering.catalog_setup import event, seed_catalog

TOKEN = "client-token"


@pytest.fixture
def app_client(engine: Engine, now: datetime) -> Iterator[TestClient]:
    seed_catalog(engine, now - timedelta(days=60))
    with TestClient(create_api_app(engine, TOKEN, clock=fixed_clock(now))) as test_client:
        yield test_client


def forwarding(app_client: TestClient, *, fail_first: int = 0, lose_answers: int = 0) -> httpx.MockTransport:
    """Forward to the app; the first ``fail_first`` requests get a 503 without reaching it, and the
    next ``lose_answers`` reach it but their answers are lost (a timeout after the commit)."""
    calls = {"n": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= fail_first:
            return httpx.Response(
                503, json={"error": {"code": "unavailable", "message": "busy", "field": None}}
            )
        path = request.url.raw_path.decode()  # with its query string
        response = app_client.request(
            request.method, path, content=request.content, headers=dict(request.headers)
        )
        if calls["n"] <= fail_first + lose_answers:
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(response.status_code, content=response.content, headers=response.headers)

    return httpx.MockTransport(handle)


def count(engine: Engine, model: type) -> int:
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_client_chunks_to_5000_and_offsets_rejections(app_client: TestClient, engine: Engine) -> None:
    events = [event(f"e{i}", quantity=i) for i in range(7_000)]
    events[6_500]["quantity"] = -1
    with MeterlineClient("http://meterline", TOKEN, transport=forwarding(app_client)) as client:
        summary = client.send_events(events)
    assert summary["accepted"] == 6_999
    assert len(summary["batch_ids"]) == 2
    assert [(r["index"], r["code"]) for r in summary["rejected"]] == [(6_500, "must_be_non_negative")]
    assert count(engine, UsageEvent) == 6_999


def test_client_retry_after_lost_answer_counts_events_once(app_client: TestClient, engine: Engine) -> None:
    transport = forwarding(app_client, fail_first=1, lose_answers=1)
    with MeterlineClient("http://meterline", TOKEN, transport=transport, backoff_s=0) as client:
        summary = client.send_events([event("e1"), event("e2")])
    # The first try was refused, the second stored both but its answer was lost, the third saw duplicates.
    assert summary["accepted"] == 0 and summary["duplicates"] == ["e1", "e2"]
    assert count(engine, UsageEvent) == 2 and count(engine, IngestBatch) == 1
    with unit_of_work(engine) as session:
        assert check_ledger(session).ok


def test_client_raises_the_api_error_for_a_refused_request(app_client: TestClient) -> None:
    with (
        MeterlineClient("http://meterline", "wrong", transport=forwarding(app_client)) as client,
        pytest.raises(MeterlineAPIError) as raised,
    ):
        client.accounts()
    assert (raised.value.status, raised.value.code) == (401, "unauthorized")


def test_client_getters(app_client: TestClient) -> None:
    with MeterlineClient("http://meterline", TOKEN, transport=forwarding(app_client)) as client:
        assert [a["id"] for a in client.accounts()] == ["acc_a", "acc_b"]
        assert "input_tokens" in [m["name"] for m in client.meters()]
        assert client.balance("acc_a")["balance_credits"] == "100.000000000"


def test_server_token_prefers_the_environment(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERLINE_API_TOKEN", "from-env")
    assert server_token(engine) == "from-env"


def test_demo_token_is_generated_once_and_survives_restarts(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("METERLINE_API_TOKEN", raising=False)
    monkeypatch.delenv("METERLINE_ENV", raising=False)
    first = server_token(engine)
    assert len(first) > 20
    assert server_token(engine) == first


def test_production_refuses_to_generate_a_token(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERLINE_API_TOKEN", raising=False)
    monkeypatch.setenv("METERLINE_ENV", "production")
    with pytest.raises(TokenNotConfigured, match="METERLINE_API_TOKEN"):
        server_token(engine)


def test_client_authorize_names_the_api_key_and_reads_the_binding_cap(
    app_client: TestClient, engine: Engine, now: datetime
) -> None:
    from core.accounts import Actor
    from core.spend.caps import set_cap

    with unit_of_work(engine, write=True) as session:
        cap = set_cap(
            session,
            account_id="acc_a",
            scope="api_key",
            scope_value="ci",
            period="day",
            limit="5",
            mode="hard",
            actor=Actor.system("tests"),
            at=now,
        )
    with MeterlineClient("http://meterline", TOKEN, transport=forwarding(app_client)) as client:
        ci = client.authorize("acc_a", api_key="ci", estimated_cost="6")
        other = client.authorize("acc_a", api_key="prod", estimated_cost=6 * 10**9)
        with pytest.raises(MeterlineAPIError) as raised:
            client.authorize("acc_a", api_key="k" * 129)
    assert (ci["allowed"], ci["reason"]) == (False, "hard_cap_reached")
    assert ci["limit"] == {
        "cap_id": cap.cap_id,
        "scope": "api_key",
        "value": "ci",
        "period": "day",
        "limit": "5.000000000",
        "spent": "0.000000000",
        "resets_at": "2026-11-21T00:00:00Z",
    }
    assert (other["allowed"], other["limit"]) == (True, None)
    assert (raised.value.status, raised.value.field) == (422, "api_key")
