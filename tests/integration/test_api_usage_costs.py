"""The Usage & Cost API (SQLite and PostgreSQL): UTC buckets of 1 minute, hour or day, grouping,
cursor pages, totals equal to the portal's Usage page (``usage_frame`` / ``usage_totals``, what
pages/usage.py draws), the balance route, and 422 naming the parameter for every bad query."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from starlette.testclient import TestClient

from core.accounts import create_account
from core.api import create_api_app
from core.clock import fixed_clock
from core.db import unit_of_work
from core.ledger import grant_credits
from core.metering import ingest_events
from core.money import NANOS_PER_CREDIT
from core.usage import usage_frame, usage_totals
from tests.core.metering.catalog_setup import seed_catalog

TOKEN = "usage-token"
SERVER = {"Authorization": f"Bearer {TOKEN}"}
MODELS = ("atlas", "atlas-mini", None)
NY = "acc_ny"


def _events(account_id: str, hours: tuple[int, ...]) -> list[dict[str, Any]]:
    """Two meters over Nov 1-19 (the price of input_tokens changes on Nov 15), with every dimension."""
    events: list[dict[str, Any]] = []
    for day in range(1, 20):
        for n, hour in enumerate(hours):
            model = MODELS[(day + n) % 3]
            dimensions = {"project": "web" if n % 2 else "batch", "api_key": f"k{day % 2}"}
            if model:
                dimensions["model"] = model
            stamp = datetime(2026, 11, day, hour, 7 * n, tzinfo=UTC).isoformat()
            events.append(
                {
                    "event_id": f"{account_id}-t-{day}-{hour}",
                    "account_id": account_id,
                    "meter": "input_tokens",
                    "quantity": 1_000 * day * (hour + 1),
                    "timestamp": stamp,
                    "dimensions": dimensions,
                }
            )
            events.append(
                {
                    "event_id": f"{account_id}-r-{day}-{hour}",
                    "account_id": account_id,
                    "meter": "requests",
                    "quantity": day + n,
                    "timestamp": stamp,
                    "dimensions": {"model": model} if model else {},
                }
            )
    return events


@pytest.fixture
def client(engine: Engine, now: datetime) -> Iterator[TestClient]:
    seed_catalog(engine, now - timedelta(days=60), grant_credits_each=1_000)
    with unit_of_work(engine, write=True) as session:
        create_account(
            session, account_id=NY, name="NY", at=now, timezone="America/New_York", rate_card_key="standard"
        )
        grant_credits(
            session, account_id=NY, amount_nanos=1_000 * NANOS_PER_CREDIT, source="promotional", at=now
        )
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(
            session, _events("acc_a", (3, 14)) + _events(NY, (2, 4, 23)), at=now, source="seed"
        )
    assert not result.rejected and result.accepted == 19 * 2 * 2 + 19 * 3 * 2
    with TestClient(create_api_app(engine, TOKEN, clock=fixed_clock(now))) as test_client:
        yield test_client


def pages(client: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a query, following next_page."""
    answers = []
    page = None
    for _ in range(100):
        query = {**params, **({"page": page} if page else {})}
        response = client.get(path, params=query, headers=SERVER)
        assert response.status_code == 200, response.text
        answers.append(response.json())
        page = response.json()["next_page"]
        if page is None:
            return answers
    raise AssertionError("too many pages")


def results(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for a in answers for b in a["buckets"] for r in b["results"]]


def buckets(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for a in answers for b in a["buckets"]]


def portal_totals(engine: Engine, account_id: str, start: date, end: date, granularity: str = "day") -> dict:
    """What the Usage page shows for local days start..end: spend and events (``usage_totals``), and
    the quantity per meter (by the meter's name; the page labels it with its display name)."""
    with unit_of_work(engine) as session:
        frame = usage_frame(session, account_id, start=start, end=end, granularity=granularity)  # type: ignore[arg-type]
    totals = usage_totals(frame)
    assert sum(m.quantity for m in totals.meters) == int(frame["quantity"].sum())
    meters = {str(k): int(v) for k, v in frame.groupby("meter_key")["quantity"].sum().items()}
    return {"amount": totals.amount_nanos, "meters": meters, "events": totals.events}


def api_totals(answers: list[dict[str, Any]]) -> dict:
    quantities: Counter[str] = Counter()
    for r in results(answers):
        quantities[r["meter"]] += r["quantity"]
    return {
        "amount": sum(r["amount_nanos"] for r in results(answers)),
        "meters": dict(quantities),
        "events": sum(r["events"] for r in results(answers)),
    }


@pytest.mark.parametrize("bucket", ["1d", "1h"])
def test_usage_totals_over_a_month_equal_the_portal(client: TestClient, engine: Engine, bucket: str) -> None:
    answers = pages(
        client,
        "/api/v1/usage",
        account_id="acc_a",
        start="2026-11-01T00:00:00Z",
        end="2026-12-01T00:00:00Z",
        bucket=bucket,
        limit=PAGE[bucket],
    )
    expected = portal_totals(engine, "acc_a", date(2026, 11, 1), date(2026, 11, 30))
    assert expected["amount"] > 0 and len(expected["meters"]) == 2
    assert api_totals(answers) == expected
    costs = pages(
        client,
        "/api/v1/costs",
        account_id="acc_a",
        start="2026-11-01T00:00:00Z",
        end="2026-12-01T00:00:00Z",
        bucket=bucket,
        limit=PAGE[bucket],
    )
    assert sum(r["amount_nanos"] for r in results(costs)) == expected["amount"]
    # Every bucket of the month, once, in order, each as wide as asked.
    starts = [b["start"] for b in buckets(answers)]
    width = timedelta(days=1) if bucket == "1d" else timedelta(hours=1)
    assert len(starts) == 30 * (24 if bucket == "1h" else 1) == len(set(starts))
    first = datetime(2026, 11, 1, tzinfo=UTC)
    assert starts == [(first + i * width).isoformat().replace("+00:00", "Z") for i in range(len(starts))]


PAGE = {"1d": 7, "1h": 168, "1m": 1440}


@pytest.mark.parametrize("dimension", ["model", "project", "api_key"])
def test_costs_grouped_by_a_dimension_equal_the_portal_by_that_dimension(
    client: TestClient, engine: Engine, dimension: str
) -> None:
    answers = pages(
        client,
        "/api/v1/costs",
        account_id="acc_a",
        start="2026-11-01T00:00:00Z",
        end="2026-12-01T00:00:00Z",
        bucket="1d",
        group_by=[dimension],
        limit=31,
    )
    assert len(answers) == 1
    by_api: Counter[str] = Counter()
    for r in results(answers):
        assert set(r) == {dimension, "amount", "amount_nanos"}  # costs: the group and the money only
        by_api[r[dimension] or "(none)"] += r["amount_nanos"]
        assert Decimal(r["amount"]).scaleb(9) == r["amount_nanos"] and len(r["amount"].split(".")[1]) == 9
    with unit_of_work(engine) as session:
        frame = usage_frame(
            session, "acc_a", start=date(2026, 11, 1), end=date(2026, 11, 30), group_by=dimension
        )  # type: ignore[arg-type]
    by_portal = {str(g): int(v) for g, v in frame.groupby("group")["amount_nanos"].sum().items()}
    assert dict(by_api) == by_portal


def test_usage_is_split_by_meter_and_costs_only_by_group_by(client: TestClient) -> None:
    day = {"account_id": "acc_a", "start": "2026-11-16T00:00:00Z", "end": "2026-11-17T00:00:00Z"}
    usage = client.get("/api/v1/usage", params=day, headers=SERVER).json()
    (bucket,) = usage["buckets"]
    assert [(r["meter"], r["unit"]) for r in bucket["results"]] == [
        ("input_tokens", "token"),
        ("requests", "request"),
    ]
    # Nov 16: 1,000 × 16 × (4 + 15) tokens at 2.00 per million; 16 + 17 requests at 0.01.
    assert [r["quantity"] for r in bucket["results"]] == [304_000, 33]
    assert [r["amount"] for r in bucket["results"]] == ["0.608000000", "0.330000000"]
    costs = client.get("/api/v1/costs", params=day, headers=SERVER).json()
    assert costs["buckets"][0]["results"] == [{"amount": "0.938000000", "amount_nanos": 938_000_000}]
    by_model = client.get(
        "/api/v1/usage", params={**day, "group_by": ["model", "project"]}, headers=SERVER
    ).json()
    rows = by_model["buckets"][0]["results"]
    assert {tuple(sorted(r)) for r in rows} == {
        ("amount", "amount_nanos", "events", "meter", "model", "project", "quantity", "unit")
    }
    assert sum(r["amount_nanos"] for r in rows) == 938_000_000
    assert by_model["group_by"] == ["model", "project"]


def test_every_report_says_when_its_figures_were_read(client: TestClient, now: datetime) -> None:
    day = {"account_id": "acc_a", "start": "2026-11-16T00:00:00Z", "end": "2026-11-17T00:00:00Z"}
    for path in ("/api/v1/usage", "/api/v1/costs"):
        answer = client.get(path, params=day, headers=SERVER).json()
        assert datetime.fromisoformat(answer["as_of"]) == now, path


def test_minute_buckets_read_raw_events_and_agree_with_the_hours(client: TestClient) -> None:
    window = {"account_id": "acc_a", "start": "2026-11-19T00:00:00Z", "end": "2026-11-20T00:00:00Z"}
    minutes = pages(client, "/api/v1/costs", **window, bucket="1m", limit=1440)
    hours = pages(client, "/api/v1/costs", **window, bucket="1h")
    assert len(buckets(minutes)) == 1440 and len(buckets(hours)) == 24
    busy = [b for b in buckets(minutes) if b["results"]]
    assert [b["start"] for b in busy] == ["2026-11-19T03:00:00Z", "2026-11-19T14:07:00Z"]
    assert busy[1]["end"] == "2026-11-19T14:08:00Z"
    assert (
        sum(r["amount_nanos"] for r in results(minutes)) == sum(r["amount_nanos"] for r in results(hours)) > 0
    )


def test_an_account_in_new_york_gets_utc_buckets_with_the_portal_totals(
    client: TestClient, engine: Engine
) -> None:
    # The portal's local days Nov 2..18 in New York are [Nov 2 04:00Z, Nov 19 05:00Z) (DST ends Nov 1).
    hours = pages(
        client,
        "/api/v1/usage",
        account_id=NY,
        start="2026-11-02T05:00:00Z",
        end="2026-11-19T05:00:00Z",
        bucket="1h",
    )
    assert api_totals(hours) == portal_totals(engine, NY, date(2026, 11, 2), date(2026, 11, 18), "hour")
    # Day buckets are UTC days (from the hourly rollup: the daily one holds New York days).
    days = pages(
        client,
        "/api/v1/usage",
        account_id=NY,
        start="2026-11-02T00:00:00Z",
        end="2026-11-19T00:00:00Z",
        limit=31,
    )
    same = pages(
        client,
        "/api/v1/usage",
        account_id=NY,
        start="2026-11-02T00:00:00Z",
        end="2026-11-19T00:00:00Z",
        bucket="1h",
    )
    assert api_totals(days) == api_totals(same)
    first = buckets(days)[0]
    assert (first["start"], first["end"]) == ("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z")
    # Nov 2 UTC holds the events stamped 02:00, 04:00 and 23:00 UTC on Nov 2: 1,000 × 2 × (3 + 5 + 24) tokens.
    tokens = [r for r in first["results"] if r["meter"] == "input_tokens"]
    assert sum(r["quantity"] for r in tokens) == 64_000


def test_pages_chain_and_a_foreign_or_tampered_cursor_is_refused(client: TestClient) -> None:
    query = {
        "account_id": "acc_a",
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-11-08T00:00:00Z",
        "limit": "3",
    }
    answers = pages(client, "/api/v1/costs", **query)
    assert [len(a["buckets"]) for a in answers] == [3, 3, 1]
    assert [a["has_more"] for a in answers] == [True, True, False]
    cursor = answers[0]["next_page"]

    def refused(**params: Any) -> dict[str, Any]:
        response = client.get("/api/v1/costs", params=params, headers=SERVER)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "page"
        return response.json()["error"]

    assert "another query" in refused(**{**query, "end": "2026-11-09T00:00:00Z"}, page=cursor)["message"]
    assert "another query" in refused(**{**query, "account_id": "acc_b"}, page=cursor)["message"]
    usage = client.get("/api/v1/usage", params={**query, "page": cursor}, headers=SERVER)
    assert usage.status_code == 422  # a costs cursor is not a usage cursor
    body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for at in (body["at"] + 60, body["at"] - 10 * 86_400, 10**30, "x"):
        forged = base64.urlsafe_b64encode(json.dumps({**body, "at": at}).encode()).decode()
        refused(**query, page=forged)
    for garbage in ("!!!", "e30", "bm90IGpzb24", "a" * 199):
        refused(**query, page=garbage)
    # A smaller limit on the next page is fine: the cursor names where it starts, not its size.
    second = client.get(
        "/api/v1/costs", params={**query, "limit": "1", "page": cursor}, headers=SERVER
    ).json()
    assert [b["start"] for b in second["buckets"]] == ["2026-11-04T00:00:00Z"]


GOOD = {"account_id": "acc_a", "start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}


BAD_QUERIES: list[tuple[dict[str, Any], str]] = [
    ({"start": None}, "start"),
    ({"end": ""}, "end"),
    ({"start": "2026-11-01"}, "start"),
    ({"start": "2026-11-01T00:00:00"}, "start"),  # no offset
    ({"start": "2026-13-01T00:00:00Z"}, "start"),
    ({"start": "0001-01-01T00:00:00+01:00"}, "start"),  # before the calendar once in UTC
    ({"end": "9999-12-31T23:00:00-23:00"}, "end"),  # after it
    ({"start": "2026-11-01T00:00:00.5Z"}, "start"),
    ({"start": "2026-11-01T00:30:00Z", "bucket": "1h"}, "start"),
    ({"start": "2026-11-01T00:00:00+05:00"}, "start"),  # midnight at +05:00 is 19:00 UTC
    ({"end": "2026-11-01T00:00:00Z"}, "end"),
    ({"end": "2026-10-01T00:00:00Z"}, "end"),
    ({"end": "2026-11-03T00:00:00Z", "bucket": "1m"}, "end"),
    ({"start": "2025-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "end"),
    ({"bucket": "1w"}, "bucket"),
    ({"bucket": ["1d", "1h"]}, "bucket"),
    ({"group_by": ["model", "region"]}, "group_by"),
    ({"group_by": ["model"] * 17}, "group_by"),
    ({"limit": "0"}, "limit"),
    ({"limit": "32"}, "limit"),
    ({"limit": "99999999999999999999999"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "٣"}, "limit"),  # an Arabic-Indic digit: not ASCII
    ({"page": "%%%"}, "page"),
    ({"account_id": "a" * 65}, "account_id"),
    ({"account_id": "acc\x00a"}, "account_id"),
    ({"groupby": "model"}, "groupby"),
    ({"start": "x" * 500}, "start"),
]


def test_a_bad_query_is_422_naming_the_parameter(client: TestClient) -> None:
    answers = {}
    for path in ("/api/v1/usage", "/api/v1/costs"):
        for params, field in BAD_QUERIES:
            query = {key: value for key, value in {**GOOD, **params}.items() if value is not None}
            response = client.get(path, params=query, headers=SERVER)
            got = (
                response.status_code,
                response.json()["error"]["field"] if response.status_code >= 400 else None,
            )
            answers[(path, repr(params))] = (got, (422, field))
    assert {case: got for case, (got, _) in answers.items()} == {
        case: want for case, (_, want) in answers.items()
    }


def test_costs_take_the_json_and_focus_formats_only(client: TestClient) -> None:
    assert client.get("/api/v1/costs", params={**GOOD, "format": "json"}, headers=SERVER).status_code == 200
    # format=focus takes account_id and month, not the bucket report's range.
    focus = client.get("/api/v1/costs", params={**GOOD, "format": "focus"}, headers=SERVER)
    assert focus.status_code == 422 and focus.json()["error"]["field"] != "format"
    for value in ("csv", "FOCUS", ["json", "json"]):
        response = client.get("/api/v1/costs", params={**GOOD, "format": value}, headers=SERVER)
        assert response.status_code == 422 and response.json()["error"]["field"] == "format"
    assert client.get("/api/v1/usage", params={**GOOD, "format": "json"}, headers=SERVER).status_code == 422


_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ["2026-11-01T00:00:00Z", "9999-12-31T23:59:00+00:00", "0001-01-01T00:00:00Z", "", "1d", "1m"]
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=_TEXT, end=_TEXT, bucket=_TEXT, limit=_TEXT, page=_TEXT)
def test_no_query_reaches_a_5xx(
    client: TestClient, start: str, end: str, bucket: str, limit: str, page: str
) -> None:
    for path in ("/api/v1/usage", "/api/v1/costs"):
        response = client.get(
            path,
            params={
                "account_id": "acc_a",
                "start": start,
                "end": end,
                "bucket": bucket,
                "limit": limit,
                "page": page,
            },
            headers=SERVER,
        )
        assert response.status_code in (200, 422), response.text


def test_far_future_ranges_answer_empty_buckets(client: TestClient) -> None:
    far = {"account_id": "acc_a", "start": "9999-12-24T00:00:00Z", "end": "9999-12-31T00:00:00Z"}
    answer = client.get("/api/v1/costs", params=far, headers=SERVER).json()
    assert len(answer["buckets"]) == 7 and not results([answer])
    last = client.get(
        "/api/v1/usage",
        params={
            "account_id": "acc_a",
            "start": "9999-12-31T22:00:00Z",
            "end": "9999-12-31T23:59:00Z",
            "bucket": "1m",
            "limit": "200",
        },
        headers=SERVER,
    )
    assert last.status_code == 200 and last.json()["buckets"][-1]["end"] == "9999-12-31T23:59:00Z"
    assert len(last.json()["buckets"]) == 119 and last.json()["next_page"] is None


def test_the_balance_route_answers_as_the_server_balance_route(
    client: TestClient, engine: Engine, now: datetime
) -> None:
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
    answer = client.get("/api/v1/balance", params={"account_id": "acc_a"}, headers=SERVER).json()
    assert answer == client.get("/api/v1/accounts/acc_a/balance", headers=SERVER).json()
    assert answer["as_of"] == "2026-11-20T12:00:00Z"
    assert [(g["source"], g["expires_at"]) for g in answer["grants"]] == [
        ("promotional", None),
        ("purchased", "2026-12-20T12:00:00Z"),
    ]
    assert answer["grants"][1]["remaining_credits"] == "5.000000000"
