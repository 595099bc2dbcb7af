"""The Python client with a customer API key: usage and cost pages followed to the end, the balance,
and a 429 waited out as long as Retry-After says (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from core import client as client_module
from core.accounts import Actor
from core.api import create_api_app
from core.api.rate_limit import TokenBucketLimiter
from core.client import MeterlineAPIError, MeterlineClient
from core.clock import fixed_clock
from core.customer_keys import create_customer_key
from core.db import unit_of_work
from tests.core.metering.catalog_setup import event, seed_catalog

TOKEN = "reports-token"


class Ticker:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def forwarding(app_client: TestClient) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        response = app_client.request(
            request.method, str(request.url.copy_with(scheme=None, host=None)), headers=dict(request.headers)
        )
        return httpx.Response(response.status_code, content=response.content, headers=response.headers)

    return httpx.MockTransport(handle)


@pytest.fixture
def setup(engine: Engine, now: datetime) -> Iterator[tuple[TestClient, str, Ticker]]:
    seed_catalog(engine, now - timedelta(days=60))
    with unit_of_work(engine, write=True) as session:
        made = create_customer_key(
            session,
            actor=Actor.system("t"),
            account_id="acc_a",
            name="client",
            scopes=["usage:read", "balance:read"],
            at=now,
        )
    ticker = Ticker()
    app = create_api_app(
        engine, TOKEN, clock=fixed_clock(now), key_limiter=TokenBucketLimiter(5, monotonic=ticker)
    )
    with TestClient(app) as app_client:
        stamps = ["2026-11-17T10:00:00Z", "2026-11-19T11:00:00Z", "2026-11-20T11:00:00Z"]
        events = [event(f"e{i}", timestamp=stamp) for i, stamp in enumerate(stamps)]
        assert (
            app_client.post(
                "/api/v1/events", json={"events": events}, headers={"Authorization": f"Bearer {TOKEN}"}
            ).json()["accepted"]
            == 3
        )
        assert made.secret is not None
        yield app_client, made.secret, ticker


def test_pages_are_followed_and_the_balance_read_with_a_customer_key(
    setup: tuple[TestClient, str, Ticker],
) -> None:
    app_client, secret, _ = setup
    with MeterlineClient("http://meterline", secret, transport=forwarding(app_client)) as client:
        pages = list(
            client.costs_pages(
                start=datetime(2026, 11, 14, tzinfo=UTC), end="2026-11-21T00:00:00Z", bucket="1d", limit=3
            )
        )
        usage = client.usage(start="2026-11-20T00:00:00Z", end="2026-11-21T00:00:00Z", group_by=["model"])
        balance = client.balance()
    assert [len(p["buckets"]) for p in pages] == [3, 3, 1]
    assert sum(r["amount_nanos"] for p in pages for b in p["buckets"] for r in b["results"]) == 3 * 2 * 10**9
    assert usage["buckets"][0]["results"][0]["quantity"] == 1_000_000
    assert balance["account_id"] == "acc_a" and balance["balance_credits"] == "94.000000000"


def test_a_rate_limited_call_waits_retry_after_then_succeeds(
    setup: tuple[TestClient, str, Ticker], monkeypatch: pytest.MonkeyPatch
) -> None:
    app_client, secret, ticker = setup
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the limiter's clock moves instead of the test waiting
        waits.append(seconds)
        ticker.seconds += seconds

    monkeypatch.setattr(client_module.time, "sleep", sleep)
    with MeterlineClient("http://meterline", secret, transport=forwarding(app_client), backoff_s=0) as client:
        for _ in range(6):
            client.balance()
    assert waits == [12.0]  # 5 a minute: the sixth call waited for the next token
    ticker.seconds += 60  # a full bucket again
    with MeterlineClient(
        "http://meterline", secret, transport=forwarding(app_client), max_attempts=1
    ) as client:
        for _ in range(5):
            client.balance()
        with pytest.raises(MeterlineAPIError) as refused:
            client.balance()
    assert refused.value.status == 429 and refused.value.code == "rate_limited"


def test_the_focus_csv_comes_as_the_api_answers_it(setup: tuple[TestClient, str, Ticker]) -> None:
    app_client, secret, _ = setup
    with MeterlineClient("http://meterline", secret, transport=forwarding(app_client)) as client:
        body = client.focus_csv("2026-11")
        with pytest.raises(MeterlineAPIError) as refused:
            client.focus_csv("2026-13")
    assert (
        body
        == app_client.get(
            "/api/v1/costs?format=focus&month=2026-11", headers={"Authorization": f"Bearer {secret}"}
        ).content
    )
    header, *rows = body.decode().splitlines()
    assert "BilledCost" in header.split(",")
    assert sum(1 for row in rows if ",Usage," in row) == 3  # one row per UTC day with usage
    assert refused.value.status == 422 and refused.value.field == "month"
