"""Property-based fuzzing of POST /api/v1/events (SQLite and PostgreSQL).

Over arbitrary JSON bodies, and over event lists mixing valid events with hostile values
(huge and fractional numbers, lone surrogates, NUL, calendar-edge timestamps, wrong types),
the API never answers 5xx; when it answers 200 every index of the request is accounted for
exactly once (accepted and stored, duplicate, or rejected); and the ledger check holds
afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from core.api import create_api_app
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import UsageEvent
from core.ledger import check_ledger
from tests.core.metering.catalog_setup import seed_catalog

TOKEN = "test-token-fuzz"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
hostile_strings = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["bad-\ud800", "\udfff", "nul\x00", "", " ", "x" * 200, "\u202e", "é"]),
)
hostile_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**62, 2**63, 10**18, 10**18 + 1, 10**16]),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e16", "2.9999999999999999", "9007199254740993.0", "1e-400", "-0.0", "1" * 400]),
)
hostile_timestamps = st.one_of(
    st.sampled_from(
        [
            "9999-12-31T23:00:00-05:00",
            "0001-01-01T00:30:00+01:00",
            "2026-11-20T11:00:00Z",
            "2026-11-20T11:00:00",
            "2026-02-30T00:00:00Z",
            "2026-11-20T11:00:00.1234567Z",
            "2026-11-21T11:00:00+23:59",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    hostile_strings,
)


@st.composite
def hostile_event(draw: st.DrawFn) -> Any:
    event: dict[str, Any] = {
        "event_id": draw(st.one_of(st.sampled_from(["e1", "e2", "e3"]), hostile_strings, json_values)),
        "account_id": draw(st.one_of(st.sampled_from(["acc_a", "acc_b", "acc_missing"]), hostile_strings)),
        "meter": draw(st.sampled_from(["input_tokens", "requests", "unpriced", "nope", ""])),
        "quantity": draw(st.one_of(hostile_numbers, json_values)),
        "timestamp": draw(hostile_timestamps),
    }
    if draw(st.booleans()):
        event["dimensions"] = draw(
            st.one_of(
                st.dictionaries(hostile_strings, st.one_of(hostile_strings, json_values), max_size=3),
                json_values,
            )
        )
    for key in draw(st.sets(st.sampled_from(sorted(event)), max_size=2)):
        del event[key]
    return event


def _encode(value: Any) -> str:
    """JSON text in which every ``Decimal`` is written as a bare JSON number (``1e16``, not "1e16")."""
    numbers: dict[str, str] = {}

    def placeholders(item: Any) -> Any:
        if isinstance(item, Decimal):
            marker = f"@@number{len(numbers)}@@"
            numbers[marker] = str(item)
            return marker
        if isinstance(item, dict):
            return {key: placeholders(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [placeholders(inner) for inner in item]
        return item

    text = json.dumps(placeholders(value))
    for marker, number in numbers.items():
        text = text.replace(json.dumps(marker), number)
    return text


def _with_raw_numbers(event: Any) -> Any:
    """Replace quantities drawn as numeric strings ("1e16") by Decimals written bare."""
    if isinstance(event, dict) and isinstance(event.get("quantity"), str):
        try:
            return {**event, "quantity": Decimal(event["quantity"])}
        except ArithmeticError:
            return event
    return event


@pytest.fixture
def client(engine: Engine, now: datetime) -> Iterator[TestClient]:
    seed_catalog(engine, now - timedelta(days=60))
    with TestClient(create_api_app(engine, TOKEN, clock=fixed_clock(now))) as test_client:
        yield test_client


def _stored_ids(engine: Engine) -> set[tuple[str, str]]:
    with unit_of_work(engine) as session:
        return {(a, e) for a, e in session.execute(select(UsageEvent.account_id, UsageEvent.event_id))}


def _check(client: TestClient, engine: Engine, body: str, events: list[Any] | None) -> None:
    before = _stored_ids(engine)
    response = client.post("/api/v1/events", content=body.encode("utf-8", "surrogatepass"), headers=AUTH)
    assert response.status_code < 500, response.text
    answer = response.json()
    if response.status_code != 200:
        assert set(answer["error"]) == {"code", "message", "field"}
        assert _stored_ids(engine) == before  # refused as a whole: nothing stored
        return
    assert events is not None
    rejected = [r["index"] for r in answer["rejected"]]
    assert len(rejected) == len(set(rejected)) and all(0 <= i < len(events) for i in rejected)
    assert answer["accepted"] + len(answer["duplicates"]) + len(rejected) == len(events)
    added = _stored_ids(engine) - before
    assert len(added) == answer["accepted"]
    for index, event in enumerate(events):
        if index not in rejected and not (
            isinstance(event, dict) and event.get("event_id") in answer["duplicates"]
        ):
            assert (event["account_id"], event["event_id"]) in _stored_ids(engine)
    with unit_of_work(engine) as session:
        report = check_ledger(session)
    assert report.ok, report.problems


@FUZZ
@given(document=json_values)
def test_arbitrary_json_body_never_5xx(client: TestClient, engine: Engine, document: Any) -> None:
    events = document.get("events") if isinstance(document, dict) else None
    _check(client, engine, json.dumps(document), events if isinstance(events, list) else None)


@FUZZ
@given(events=st.lists(st.one_of(hostile_event(), json_values), max_size=8))
def test_hostile_events_are_each_accounted_for_once(
    client: TestClient, engine: Engine, events: list[Any]
) -> None:
    events = [_with_raw_numbers(event) for event in events]
    _check(client, engine, _encode({"events": events}), events)
