"""Hostile input through POST /api/v1/events (SQLite and PostgreSQL): each bad event is a
rejection naming its index, field and code; the valid events of the same request are kept;
nothing reaches a 5xx. Every case here answered 500 and lost the batch before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from core.api import create_api_app
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import UsageEvent, UsageRollupHourly
from core.ledger import check_ledger
from core.metering.settings import MAX_BATCH_AMOUNT_NANOS, MAX_QUANTITY, TOTAL_CEILING
from tests.core.metering.catalog_setup import seed_catalog

TOKEN = "test-token-hostile"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
VALID = 1_000


@pytest.fixture
def client(engine: Engine, now: datetime) -> Iterator[TestClient]:
    seed_catalog(engine, now - timedelta(days=60))
    with TestClient(create_api_app(engine, TOKEN, clock=fixed_clock(now))) as test_client:
        yield test_client


def _valid_events(count: int) -> list[str]:
    return [
        f'{{"event_id":"ok-{i}","account_id":"acc_a","meter":"requests","quantity":1,'
        f'"timestamp":"2026-11-20T11:00:00Z"}}'
        for i in range(count)
    ]


def _post_raw(client: TestClient, hostile: list[str]) -> dict[str, object]:
    """POST valid events with the hostile ones (raw JSON text) in the middle; return the body."""
    valid = _valid_events(VALID)
    items = valid[: VALID // 2] + hostile + valid[VALID // 2 :]
    response = client.post("/api/v1/events", content=f'{{"events":[{",".join(items)}]}}', headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _stored(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.count()).select_from(UsageEvent)) or 0)


def _assert_ledger_ok(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        report = check_ledger(session)
    assert report.ok, report.problems


def _raw(
    event_id: str,
    *,
    meter: str = "input_tokens",
    quantity: str = "1",
    timestamp: str = "2026-11-20T11:00:00Z",
) -> str:
    return (
        f'{{"event_id":"{event_id}","account_id":"acc_a","meter":"{meter}","quantity":{quantity},'
        f'"timestamp":"{timestamp}"}}'
    )


@pytest.mark.parametrize(
    ("hostile", "field", "code"),
    [
        # Rated amount past int64 nanos: 1e16 tokens at 2.00 per million = 2e19 nanos.
        (_raw("big", quantity="1e16"), "quantity", "amount_too_large"),
        (_raw("huge", meter="unpriced", quantity=str(10**19)), "quantity", "too_large"),
        (_raw("digits", meter="unpriced", quantity="1" * 5000), "quantity", "too_large"),
        # 41 to 4,300 digits: an int from the compiled parser, a Decimal from the standard library.
        (_raw("long", meter="unpriced", quantity="9" * 60), "quantity", "too_large"),
        (_raw("long-neg", meter="unpriced", quantity="-" + "9" * 60), "quantity", "must_be_non_negative"),
        (_raw("edge-late", timestamp="9999-12-31T23:00:00-05:00"), "timestamp", "out_of_range"),
        (_raw("edge-early", timestamp="0001-01-01T00:30:00+01:00"), "timestamp", "out_of_range"),
        (_raw("bad-\\ud800"), "event_id", "invalid_character"),
        (
            '{"event_id":"dim","account_id":"acc_a","meter":"input_tokens","quantity":1,'
            '"timestamp":"2026-11-20T11:00:00Z","dimensions":{"model":"x\\udfff"}}',
            "dimensions.model",
            "invalid_character",
        ),
        (
            '{"event_id":"dimkey","account_id":"acc_a","meter":"input_tokens","quantity":1,'
            '"timestamp":"2026-11-20T11:00:00Z","dimensions":{"\\ud800":"x"}}',
            "dimensions",
            "invalid_character",
        ),
        (_raw("frac", quantity="2.9999999999999999"), "quantity", "not_an_integer"),
        (_raw("tiny", quantity="1e-400"), "quantity", "not_an_integer"),
        (_raw("negexp", quantity="-1e999999999"), "quantity", "must_be_non_negative"),
    ],
)
def test_hostile_event_is_rejected_and_the_rest_of_the_batch_kept(
    client: TestClient, engine: Engine, hostile: str, field: str, code: str
) -> None:
    answer = _post_raw(client, [hostile])

    assert answer["accepted"] == VALID
    (rejection,) = answer["rejected"]  # type: ignore[misc]
    assert rejection["index"] == VALID // 2
    assert (rejection["field"], rejection["code"]) == (field, code)
    assert rejection["message"]
    assert _stored(engine) == VALID
    _assert_ledger_ok(engine)


def test_lone_surrogate_id_is_not_echoed_back(client: TestClient) -> None:
    answer = _post_raw(client, [_raw("bad-\\ud800")])
    (rejection,) = answer["rejected"]  # type: ignore[misc]
    assert rejection["event_id"] is None


def test_two_events_of_2_to_the_62_are_each_over_the_quantity_ceiling(
    client: TestClient, engine: Engine
) -> None:
    # Their hourly sum would pass 2**63 - 1 (PostgreSQL NumericValueOutOfRange, a 500 before).
    big = str(2**62)
    answer = _post_raw(
        client, [_raw("a", meter="unpriced", quantity=big), _raw("b", meter="unpriced", quantity=big)]
    )

    assert answer["accepted"] == VALID
    assert [(r["index"], r["field"], r["code"]) for r in answer["rejected"]] == [  # type: ignore[union-attr]
        (VALID // 2, "quantity", "too_large"),
        (VALID // 2 + 1, "quantity", "too_large"),
    ]
    _assert_ledger_ok(engine)


def test_events_whose_sum_passes_a_rollup_ceiling_in_one_batch_reject_the_rest(
    client: TestClient, engine: Engine
) -> None:
    hostile = [_raw(f"q-{i}", meter="unpriced", quantity=str(MAX_QUANTITY)) for i in range(6)]
    answer = _post_raw(client, hostile)

    fit = TOTAL_CEILING // MAX_QUANTITY  # 4 events of 1e18 fill a row's 4e18
    assert answer["accepted"] == VALID + fit
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [  # type: ignore[union-attr]
        (VALID // 2 + i, "total_too_large") for i in range(fit, 6)
    ]
    _assert_ledger_ok(engine)


def test_a_stored_total_near_its_ceiling_rejects_what_would_pass_it(
    client: TestClient, engine: Engine
) -> None:
    # Fill one hourly rollup row over several requests: the database refuses the row past the
    # ceiling, and ingestion turns that into a rejection of the event that would pass it.
    per_event = MAX_QUANTITY
    accepted = 0
    for request in range(5):
        answer = _post_raw(client, [_raw(f"fill-{request}", meter="unpriced", quantity=str(per_event))])
        accepted += 1 if not answer["rejected"] else 0
    assert accepted == TOTAL_CEILING // per_event  # 4 fit, the 5th is refused
    with unit_of_work(engine) as session:
        largest = session.scalar(select(func.max(UsageRollupHourly.quantity)))
    assert largest == TOTAL_CEILING
    _assert_ledger_ok(engine)


def test_a_batch_past_its_amount_ceiling_keeps_the_events_that_fit(
    client: TestClient, engine: Engine
) -> None:
    # Each event is rated 4e17 nanos (2e14 tokens at 2.00 per million); two fit under 1e18.
    per_event_tokens = MAX_BATCH_AMOUNT_NANOS // 5 * 1_000_000 // 2_000_000_000 * 2
    hostile = [_raw(f"rich-{i}", quantity=str(per_event_tokens)) for i in range(4)]
    answer = _post_raw(client, hostile)
    codes = [r["code"] for r in answer["rejected"]]  # type: ignore[union-attr]
    assert codes == ["batch_amount_too_large"] * (4 - MAX_BATCH_AMOUNT_NANOS // (per_event_tokens * 2_000))
    assert answer["accepted"] == VALID + 4 - len(codes)
    _assert_ledger_ok(engine)


def test_quantities_are_exact_not_floats(client: TestClient, engine: Engine) -> None:
    answer = _post_raw(client, [_raw("exact", meter="unpriced", quantity="9007199254740993.0")])
    assert answer["rejected"] == []
    with unit_of_work(engine) as session:
        quantity = session.scalar(select(UsageEvent.quantity).where(UsageEvent.event_id == "exact"))
    assert quantity == 9_007_199_254_740_993


@pytest.mark.parametrize("body", ['{"events":[{"quantity":NaN}]}', '{"events":[{"quantity":Infinity}]}'])
def test_nan_and_infinity_are_not_json(client: TestClient, body: str) -> None:
    response = client.post("/api/v1/events", content=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"


def test_deeply_nested_body_is_bad_json_not_500(client: TestClient) -> None:
    response = client.post("/api/v1/events", content="[" * 100_000 + "]" * 100_000, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"


def test_body_that_is_not_utf8_is_bad_json(client: TestClient) -> None:
    response = client.post("/api/v1/events", content=b'{"events":[{"event_id":"\xff\xfe"}]}', headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"


def test_same_event_id_with_forged_separator_is_a_conflict_not_a_duplicate(client: TestClient) -> None:
    # Under the old hash, fields were joined with \x1f: these two differ but encoded the same.
    first = {
        "event_id": "sep",
        "account_id": "acc_a",
        "meter": "input_tokens",
        "quantity": 1,
        "timestamp": "2026-11-20T11:00:00Z",
        "dimensions": {"model": "a\x1fproject\x1fb"},
    }
    second = {**first, "dimensions": {"model": "a", "project": "b"}}
    assert client.post("/api/v1/events", json={"events": [first]}, headers=AUTH).json()["accepted"] == 1
    answer = client.post("/api/v1/events", json={"events": [second]}, headers=AUTH).json()
    assert answer["duplicates"] == []
    assert [(r["field"], r["code"]) for r in answer["rejected"]] == [("event_id", "conflict")]
