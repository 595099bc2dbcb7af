"""POST /api/v1/authorize on SQLite and PostgreSQL: every reason, 404, 401, 422 naming the field, and
a hard cap reached while usage streams in (authorize flips within a second; usage is still recorded)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from starlette.testclient import TestClient

from core.accounts import Actor
from core.api import create_api_app
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import Account, UsageEvent
from core.spend.api import MAX_AUTHORIZE_BODY_BYTES
from core.spend.caps import cap_statuses, set_cap, set_overdraft
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.spend_setup import CREDIT, requests_event, spend

TOKEN = "authorize-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=40))  # acc_a, acc_b: 100 credits each
    return engine


@pytest.fixture
def client(seeded: Engine, now: datetime) -> Iterator[TestClient]:
    with TestClient(create_api_app(seeded, TOKEN, clock=fixed_clock(now))) as test_client:
        yield test_client


def ask(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/authorize", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def cap(
    engine: Engine,
    now: datetime,
    limit: str,
    *,
    scope: str = "account",
    value: str = "",
    mode: str = "hard",
    period: str = "month",
) -> int:
    with unit_of_work(engine, write=True) as session:
        return set_cap(
            session,
            account_id="acc_a",
            scope=scope,
            scope_value=value,
            period=period,
            limit=limit,
            mode=mode,
            actor=Actor.system("tests"),
            at=now,
        ).cap_id


def test_allowed_with_credits_and_no_cap(client: TestClient) -> None:
    assert ask(client, account_id="acc_a") == {
        "allowed": True,
        "reason": None,
        "remaining": "100.000000000",
        "remaining_nanos": 100 * CREDIT,
        "resets_at": None,
        "limit": None,
        "as_of": "2026-11-20T12:00:00Z",
    }


def test_hard_cap_reached_says_when_it_resets(seeded: Engine, client: TestClient, now: datetime) -> None:
    cap_id = cap(seeded, now, "10")
    spend(seeded, "e1", 10, now - timedelta(hours=1))
    assert ask(client, account_id="acc_a") == {
        "allowed": False,
        "reason": "hard_cap_reached",
        "remaining": "0.000000000",
        "remaining_nanos": 0,
        "resets_at": "2026-12-01T00:00:00Z",
        "limit": {
            "cap_id": cap_id,
            "scope": "account",
            "value": None,
            "period": "month",
            "limit": "10.000000000",
            "spent": "10.000000000",
            "resets_at": "2026-12-01T00:00:00Z",
        },
        "as_of": "2026-11-20T12:00:00Z",
    }


def test_caps_stack_and_a_key_cap_refuses_that_key_only(
    seeded: Engine, client: TestClient, now: datetime
) -> None:
    month = cap(seeded, now, "50")
    week = cap(seeded, now, "20", scope="project", value="web", period="week")
    day = cap(seeded, now, "5", scope="api_key", value="ci", period="day")
    spend(seeded, "e1", 5, now - timedelta(hours=1), project="web", api_key="ci")
    refused = ask(client, account_id="acc_a", project="web", api_key="ci")
    assert refused == {
        "allowed": False,
        "reason": "hard_cap_reached",
        "remaining": "0.000000000",
        "remaining_nanos": 0,
        "resets_at": "2026-11-21T00:00:00Z",
        "limit": {
            "cap_id": day,
            "scope": "api_key",
            "value": "ci",
            "period": "day",
            "limit": "5.000000000",
            "spent": "5.000000000",
            "resets_at": "2026-11-21T00:00:00Z",
        },
        "as_of": "2026-11-20T12:00:00Z",
    }
    # Another key of the same account: the project's week binds (20 - 5 spent).
    other = ask(client, account_id="acc_a", project="web", api_key="prod", estimated_cost="0")
    assert (other["allowed"], other["remaining"], other["resets_at"]) == (
        True,
        "15.000000000",
        "2026-11-23T00:00:00Z",
    )
    assert (other["limit"]["cap_id"], other["limit"]["period"], other["limit"]["spent"]) == (
        week,
        "week",
        "5.000000000",
    )
    # Neither project nor key named: the account's month.
    bare = ask(client, account_id="acc_a", estimated_cost="0")
    assert (bare["limit"]["cap_id"], bare["limit"]["value"], bare["remaining"]) == (
        month,
        None,
        "45.000000000",
    )
    # What an allowed request holds counts against its key's cap.
    assert ask(client, account_id="acc_a", api_key="prod", estimated_cost="44")["allowed"] is True
    held = ask(client, account_id="acc_a", api_key="prod", estimated_cost="0")
    assert (held["remaining"], held["limit"]["spent"]) == ("1.000000000", "49.000000000")


def test_a_soft_cap_never_refuses(seeded: Engine, client: TestClient, now: datetime) -> None:
    cap(seeded, now, "10", mode="soft")
    spend(seeded, "e1", 20, now - timedelta(hours=1))
    assert ask(client, account_id="acc_a")["allowed"] is True


def test_estimated_cost_as_credits_or_nanos_against_the_room_left(
    seeded: Engine, client: TestClient, now: datetime
) -> None:
    cap(seeded, now, "10")
    spend(seeded, "e1", 9, now - timedelta(hours=1))
    assert ask(client, account_id="acc_a", estimated_cost="1.000000001")["reason"] == "hard_cap_reached"
    answer = ask(client, account_id="acc_a", estimated_cost=CREDIT + 1)
    assert (answer["allowed"], answer["reason"], answer["remaining_nanos"]) == (
        False,
        "hard_cap_reached",
        CREDIT,
    )
    assert ask(client, account_id="acc_a", estimated_cost="1")["allowed"] is True  # exactly the room left
    answer = ask(client, account_id="acc_a", estimated_cost=CREDIT)  # that one holds the room now
    assert (answer["allowed"], answer["reason"], answer["remaining_nanos"]) == (False, "hard_cap_reached", 0)


def test_project_and_meter_caps_apply_to_their_own_requests(
    seeded: Engine, client: TestClient, now: datetime
) -> None:
    cap(seeded, now, "5", scope="project", value="web")
    cap(seeded, now, "50", scope="meter", value="requests")
    spend(seeded, "e1", 5, now - timedelta(hours=1), project="web")
    assert ask(client, account_id="acc_a", project="web")["reason"] == "hard_cap_reached"
    assert ask(client, account_id="acc_a", project="api")["allowed"] is True
    assert ask(client, account_id="acc_a")["allowed"] is True
    answer = ask(client, account_id="acc_a", project="api", meter="requests", estimated_cost="45")
    assert (answer["allowed"], answer["remaining"], answer["resets_at"]) == (
        True,
        "45.000000000",
        "2026-12-01T00:00:00Z",
    )
    assert (
        ask(client, account_id="acc_a", meter="requests", estimated_cost="45.01")["reason"]
        == "hard_cap_reached"
    )


def test_insufficient_credits_unless_an_overdraft_allows(
    seeded: Engine, client: TestClient, now: datetime
) -> None:
    spend(seeded, "e1", 150, now - timedelta(hours=1))  # balance -50: usage past the credits is recorded
    answer = ask(client, account_id="acc_a")
    assert (answer["allowed"], answer["reason"], answer["remaining_nanos"]) == (
        False,
        "insufficient_credits",
        0,
    )
    with unit_of_work(seeded, write=True) as session:
        set_overdraft(session, account_id="acc_a", overdraft="80", actor=Actor.system("tests"), at=now)
    time.sleep(1.1)  # snapshots are at most a second old
    answer = ask(client, account_id="acc_a")
    assert (answer["allowed"], answer["remaining"]) == (True, "30.000000000")
    assert ask(client, account_id="acc_a", estimated_cost="30.5")["reason"] == "insufficient_credits"


def test_a_suspended_account_is_refused(seeded: Engine, client: TestClient) -> None:
    with unit_of_work(seeded, write=True) as session:
        session.execute(update(Account).where(Account.id == "acc_b").values(status="suspended"))
    answer = ask(client, account_id="acc_b")
    assert (answer["allowed"], answer["reason"]) == (False, "account_suspended")


def test_unknown_account_is_404_and_a_missing_token_401(client: TestClient) -> None:
    missing = client.post("/api/v1/authorize", json={"account_id": "acc_ghost"}, headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "account_id"
    assert client.post("/api/v1/authorize", json={"account_id": "acc_a"}).status_code == 401
    wrong = client.post(
        "/api/v1/authorize", json={"account_id": "acc_a"}, headers={"Authorization": "Bearer x"}
    )
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "account_id", "required"),
        ({"account_id": 5}, "account_id", "not_a_string"),
        ({"account_id": ""}, "account_id", "required"),
        ({"account_id": "a" * 65}, "account_id", "too_long"),
        ({"account_id": "acc_a", "project": 3}, "project", "not_a_string"),
        ({"account_id": "acc_a", "meter": "no_such_meter"}, "meter", "unknown_meter"),
        ({"account_id": "acc_a", "estimated_cost": 1.5}, "estimated_cost", "not_an_integer"),
        ({"account_id": "acc_a", "estimated_cost": -1}, "estimated_cost", "must_be_non_negative"),
        ({"account_id": "acc_a", "estimated_cost": "-0.5"}, "estimated_cost", "must_be_non_negative"),
        ({"account_id": "acc_a", "estimated_cost": "ten"}, "estimated_cost", "not_a_number"),
        ({"account_id": "acc_a", "estimated_cost": "0.0000000001"}, "estimated_cost", "not_exact"),
        ({"account_id": "acc_a", "estimated_cost": True}, "estimated_cost", "not_a_number"),
        ({"account_id": "acc_a", "estimated_cost": 10**19}, "estimated_cost", "too_large"),
        ({"account_id": "acc_a", "estimated_cost": [1]}, "estimated_cost", "not_a_number"),
        ({"account_id": "acc_a", "api_key": "ci\ud800"}, "api_key", "invalid_character"),
        ({"account_id": "acc_a", "api_key": "k" * 129}, "api_key", "too_long"),
        ({"account_id": "acc_a", "api_key": "k" * 10_000}, "api_key", "too_long"),
        ({"account_id": "acc_a", "api_key": ""}, "api_key", "required"),
        ({"account_id": "acc_a", "api_key": 7}, "api_key", "not_a_string"),
        ({"account_id": "acc_a", "api_key": ["ci"]}, "api_key", "not_a_string"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str, code: str
) -> None:
    # json.dumps escapes a lone surrogate as \ud800, as a hostile client may send it
    content = json.dumps(body).encode()
    response = client.post(
        "/api/v1/authorize", content=content, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert (response.json()["error"]["field"], response.json()["error"]["code"]) == (field, code)


def test_not_json_or_not_an_object(client: TestClient) -> None:
    assert client.post("/api/v1/authorize", content=b"{", headers=AUTH).status_code == 400
    assert client.post("/api/v1/authorize", content=b"", headers=AUTH).status_code == 400
    assert client.post("/api/v1/authorize", json=[1], headers=AUTH).status_code == 422
    big = b'{"account_id": "acc_a", "pad": "' + b"x" * 20_000 + b'"}'
    assert client.post("/api/v1/authorize", content=big, headers=AUTH).status_code == 413


def test_a_body_over_the_limit_is_refused_naming_the_real_limit(client: TestClient) -> None:
    big = b'{"account_id": "acc_a", "pad": "' + b"x" * MAX_AUTHORIZE_BODY_BYTES + b'"}'

    def streamed() -> Iterator[bytes]:  # no Content-Length: the limit is checked while reading
        yield big[:1000]
        yield big[1000:]

    for content in (big, streamed()):
        response = client.post("/api/v1/authorize", content=content, headers=AUTH)
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "too_large"
        assert response.json()["error"]["message"] == "the body is over 16 KiB"


def test_hard_cap_reached_mid_stream_flips_authorize_and_keeps_the_usage(
    seeded: Engine, now: datetime
) -> None:
    """A writer streams $1 batches through the API while the gateway keeps asking; once spend
    reaches the $20 cap authorize says no within a second, and every event sent is recorded."""
    cap(seeded, now, "20")
    app = create_api_app(seeded, TOKEN, clock=fixed_clock(now))
    batches = 40
    crossed_at: list[float] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with TestClient(app) as ingest_client:
                for index in range(batches):
                    event = requests_event(f"s{index}", 100, now - timedelta(minutes=30))  # $1 each
                    response = ingest_client.post("/api/v1/events", json={"events": [event]}, headers=AUTH)
                    assert response.status_code == 200 and response.json()["accepted"] == 1, response.text
                    if index == 19:
                        crossed_at.append(time.monotonic())  # $20 spent: the cap is reached
                    time.sleep(0.02)
        except BaseException as error:
            errors.append(error)
        finally:
            done.set()

    answers: list[tuple[float, bool]] = []
    with TestClient(app) as gateway:
        thread = threading.Thread(target=writer)
        thread.start()
        while not done.is_set() or time.monotonic() - (crossed_at or [time.monotonic()])[0] < 1.5:
            answers.append(
                (time.monotonic(), ask(gateway, account_id="acc_a", estimated_cost="0")["allowed"])
            )
            time.sleep(0.005)
            if done.is_set() and not crossed_at:
                break
        thread.join(30)
    assert not errors, errors
    assert crossed_at, "the writer never reached the cap"
    assert answers[0][1] is True
    refused_from = next(at for at, allowed in answers if not allowed)
    assert refused_from - crossed_at[0] <= 1.0, (
        f"authorize took {refused_from - crossed_at[0]:.2f} s to see the cap"
    )
    assert all(not allowed for at, allowed in answers if at >= refused_from)  # no flapping back
    with unit_of_work(seeded) as session:
        recorded = session.scalar(
            select(func.count()).select_from(UsageEvent).where(UsageEvent.account_id == "acc_a")
        )
        (status,) = cap_statuses(session, "acc_a", at=now)
    assert recorded == batches  # usage past the hard cap is recorded, never dropped
    assert (status.spent_nanos, status.overshoot_nanos) == (40 * CREDIT, 20 * CREDIT)


def test_answers_match_the_openapi_document(seeded: Engine, client: TestClient, now: datetime) -> None:
    from tests.integration.test_openapi import assert_matches

    path = "/api/v1/authorize"
    assert_matches(client.post(path, json={"account_id": "acc_a"}, headers=AUTH), path, "post", status=200)
    cap(seeded, now, "1")
    spend(seeded, "e1", 1, now - timedelta(hours=1))
    time.sleep(1.1)
    refused = client.post(
        path, json={"account_id": "acc_a", "meter": "requests", "estimated_cost": "0.5"}, headers=AUTH
    )
    assert_matches(refused, path, "post", status=200)
    assert refused.json()["reason"] == "hard_cap_reached"
    assert_matches(
        client.post(path, json={"account_id": "acc_ghost"}, headers=AUTH), path, "post", status=404
    )
    assert_matches(client.post(path, json={"account_id": "acc_a"}), path, "post", status=401)
    assert_matches(client.post(path, json={"account_id": 1}, headers=AUTH), path, "post", status=422)
    assert_matches(client.post(path, content=b"{", headers=AUTH), path, "post", status=400)
