"""A burst to POST /api/v1/authorize inside one snapshot's second stops within its stated bound.

Each allowed request reserves its estimated cost (a default without one) in the process until a
snapshot read ``ingestion_lag_s`` after it is installed, so one process allows at most the
headroom plus one estimate: sequentially, from several threads at once, past a hard cap on the
account or a project; reservations release once a snapshot has caught up; a soft cap is not a
limit; a request without a project is checked against the account's and its meter's caps only.
Counts, never timings: the lag is set to an hour (nothing is released by a reload during the
test) and to 0 when the test says the usage has arrived.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from core.accounts import Actor
from core.api import create_api_app
from core.clock import fixed_clock
from core.db import unit_of_work
from core.metering import ingest_events
from core.spend import authorize as authorize_module
from core.spend.authorize import Authorizer, decide
from core.spend.caps import set_cap
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.spend_setup import CREDIT, requests_event, spend

TOKEN = "overshoot-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOUR_S = 3600.0
DEFAULT_ESTIMATE = 3 * CREDIT // 10  # 0.3: does not divide the 1-credit headroom


@dataclass
class Api:
    app: Any
    client: TestClient
    authorizer: Authorizer


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=40))  # acc_a, acc_b: 100 credits each
    return engine


@pytest.fixture
def api(seeded: Engine, now: datetime) -> Iterator[Api]:
    app = create_api_app(seeded, TOKEN, clock=fixed_clock(now))
    authorizer: Authorizer = app.state.spend.authorizer
    authorizer.refresh_s = 60.0  # the test installs snapshots itself
    authorizer.ingestion_lag_s = HOUR_S  # a reload during the test releases nothing
    authorizer.default_estimate_nanos = DEFAULT_ESTIMATE
    with TestClient(app) as client:
        yield Api(app, client, authorizer)


def cap(
    engine: Engine, now: datetime, limit: str, *, scope: str = "account", value: str = "", mode: str = "hard"
) -> None:
    with unit_of_work(engine, write=True) as session:
        set_cap(
            session,
            account_id="acc_a",
            scope=scope,
            scope_value=value,
            limit=limit,
            mode=mode,
            actor=Actor.system("tests"),
            at=now,
        )


def ask(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/authorize", json={"account_id": "acc_a", **body}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def estimate_of(body: dict[str, Any]) -> int:
    """The nano-credits a request holds once allowed: its estimate, else the default."""
    cost = body.get("estimated_cost")
    return DEFAULT_ESTIMATE if cost is None else int(Decimal(cost) * CREDIT)


def burst(client: TestClient, bodies: list[dict[str, Any]]) -> int:
    """Send every body; the estimated total of those allowed."""
    return sum(estimate_of(body) for body in bodies if ask(client, **body)["allowed"])


def headroom(client: TestClient, **scope: str) -> int:
    """The headroom authorize reports now (an explicit zero estimate reserves nothing)."""
    return ask(client, estimated_cost=0, **scope)["remaining_nanos"]


def test_a_sequential_burst_without_estimates_stops_within_one_estimate_past_the_headroom(
    seeded: Engine, api: Api, now: datetime
) -> None:
    cap(seeded, now, "10")
    spend(seeded, "e1", 9, now - timedelta(hours=1))  # 1 credit of headroom
    assert headroom(api.client) == CREDIT
    allowed = burst(api.client, [{} for _ in range(300)])
    assert CREDIT <= allowed <= CREDIT + DEFAULT_ESTIMATE  # 4 x 0.3 = 1.2: the last one ran past
    answer = ask(api.client)
    assert (answer["allowed"], answer["reason"], answer["remaining_nanos"]) == (False, "hard_cap_reached", 0)
    assert api.authorizer.held_nanos("acc_a") == allowed


def test_a_burst_with_estimates_never_passes_the_headroom(seeded: Engine, api: Api, now: datetime) -> None:
    cap(seeded, now, "1", scope="project", value="web")
    bodies = [{"project": "web", "estimated_cost": cost} for cost in ("0.15", "0.4", "0.07") * 100]
    allowed = burst(api.client, bodies)
    assert CREDIT - CREDIT * 4 // 10 < allowed <= CREDIT  # refused only once the next did not fit
    assert headroom(api.client, project="web") == CREDIT - allowed


def test_a_burst_from_several_threads_stays_within_the_bound(seeded: Engine, api: Api, now: datetime) -> None:
    cap(seeded, now, "10")
    spend(seeded, "e1", 9, now - timedelta(hours=1))
    assert headroom(api.client) == CREDIT  # the snapshot is loaded: the threads race on check and reserve
    totals: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def gateway(index: int) -> None:
        try:
            with TestClient(api.app) as client:
                start.wait()
                bodies: list[dict[str, Any]] = [
                    {} if i % 2 else {"estimated_cost": "0.05"} for i in range(100)
                ]
                totals.append(burst(client, bodies))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=gateway, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(totals) == 4
    assert CREDIT - DEFAULT_ESTIMATE < sum(totals) <= CREDIT + DEFAULT_ESTIMATE
    assert api.authorizer.held_nanos("acc_a") == sum(totals)


def test_eight_threads_calling_the_authorizer_directly_stay_within_the_bound(
    seeded: Engine, api: Api, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No HTTP in between, and each decision takes a millisecond: without one lock around check
    and reserve, the threads would all decide against the same room and overshoot together."""
    cap(seeded, now, "10")
    spend(seeded, "e1", 9, now - timedelta(hours=1))
    api.authorizer.max_age_s = HOUR_S  # the snapshot loaded below stays the one every thread uses
    assert headroom(api.client) == CREDIT

    def slow_decide(*args: Any, **kwargs: Any) -> Any:
        decision = decide(*args, **kwargs)
        time.sleep(0.001)  # between the check and the reservation
        return decision

    monkeypatch.setattr(authorize_module, "decide", slow_decide)
    totals: list[int] = []
    start = threading.Barrier(8)

    def gateway() -> None:
        start.wait()
        allowed = 0
        for i in range(60):
            cost = None if i % 3 else CREDIT // 100
            decision = api.authorizer.authorize("acc_a", cost_nanos=cost)
            assert decision is not None
            if decision.allowed:
                allowed += DEFAULT_ESTIMATE if cost is None else cost
        totals.append(allowed)

    threads = [threading.Thread(target=gateway) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(totals) == 8
    assert CREDIT <= sum(totals) <= CREDIT + DEFAULT_ESTIMATE
    assert api.authorizer.held_nanos("acc_a") == sum(totals)


def test_reservations_are_released_once_a_snapshot_has_caught_up(
    seeded: Engine, api: Api, now: datetime
) -> None:
    cap(seeded, now, "10")
    spend(seeded, "e1", 9, now - timedelta(hours=1))
    assert burst(api.client, [{"estimated_cost": "0.25"}] * 2) == CREDIT // 2
    assert headroom(api.client) == CREDIT // 2  # 1 credit less the 0.5 held
    # The gateway serves both requests and their usage (0.5 credits) is ingested.
    with unit_of_work(seeded, write=True) as session:
        ingest_events(session, [requests_event("served", 50, now - timedelta(minutes=5))], at=now)
    api.authorizer.refresh(["acc_a"])  # read before the lag has passed: the hold stays (counted twice)
    assert headroom(api.client) == 0
    assert api.authorizer.held_nanos("acc_a") == CREDIT // 2
    api.authorizer.ingestion_lag_s = 0.0  # the lag has passed: the next snapshot includes the usage
    api.authorizer.refresh(["acc_a"])
    assert api.authorizer.held_nanos("acc_a") == 0
    assert headroom(api.client) == CREDIT // 2  # 10 - 9.5 spent, nothing held
    assert burst(api.client, [{"estimated_cost": "0.25"}] * 5) == CREDIT // 2


def test_a_soft_cap_does_not_limit_a_burst_that_a_hard_cap_bounds(
    seeded: Engine, api: Api, now: datetime
) -> None:
    cap(seeded, now, "1", scope="project", value="docs", mode="soft")
    cap(seeded, now, "1", scope="project", value="web")
    docs = burst(api.client, [{"project": "docs", "estimated_cost": "0.1"}] * 50)
    web = burst(api.client, [{"project": "web", "estimated_cost": "0.1"}] * 50)
    assert (docs, web) == (5 * CREDIT, CREDIT)  # the soft cap only notifies; the hard one holds


def test_a_request_without_a_project_is_checked_against_the_account_and_meter_caps_only(
    seeded: Engine, api: Api, now: datetime
) -> None:
    cap(seeded, now, "60")
    cap(seeded, now, "1", scope="project", value="web")
    cap(seeded, now, "50", scope="meter", value="requests")
    # Without a project the project's cap is not consulted (key_1 has no cap of its own).
    assert burst(api.client, [{"estimated_cost": "0.1", "api_key": "key_1"}] * 20) == 2 * CREDIT
    # Those holds count against the account, not against the project they did not name.
    web = ask(api.client, project="web", estimated_cost="1")
    assert (web["allowed"], web["remaining_nanos"]) == (True, CREDIT)
    assert ask(api.client, project="web", estimated_cost="0.000000001")["reason"] == "hard_cap_reached"
    # A meter named without a project: the meter's cap and the account's apply.
    assert ask(api.client, meter="requests", estimated_cost="47")["allowed"] is True
    assert ask(api.client, meter="requests", estimated_cost="3.000000001")["reason"] == "hard_cap_reached"
    # 60 - 2 - 1 - 47 = 10 left under the account cap for anything else.
    assert ask(api.client, estimated_cost="10")["allowed"] is True
    refused = ask(api.client, estimated_cost="0.000000001", api_key="key_2")
    assert (refused["allowed"], refused["reason"], refused["remaining_nanos"]) == (
        False,
        "hard_cap_reached",
        0,
    )


def test_the_api_description_says_what_a_request_without_a_project_or_key_is_checked_against() -> None:
    from core.api.openapi import openapi_document

    operation = openapi_document()["paths"]["/api/v1/authorize"]["post"]
    assert "without `project` is held to no project's cap" in operation["description"]
    assert "one without `api_key` to no key's" in operation["description"]
    assert "headroom plus one estimate" in operation["description"]
