"""Authorize refusals: counted in memory on the request path, written in bulk by the authorizer.

Through the HTTP route a refusal is tallied and, after a flush, stored per (account, minute,
reason, project, meter) with its count and the last request's figures; flushes add up; allowed
requests write nothing; a failed flush keeps the tally (bounded); the thread writes by itself,
stays while something waits to be written, and stops once idle; the periodic jobs delete
rows older than 30 days.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, update
from starlette.testclient import TestClient

from core.accounts import Actor
from core.api import create_api_app
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import REFUSAL_REASONS, Account, AuthorizeRefusal
from core.jobs import run_due_jobs
from core.spend.authorize import REASONS, Authorizer, Decision
from core.spend.caps import set_cap
from core.spend.refusals import RefusalCount, RefusalKey, RefusalTally, add_refusals
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.spend_setup import CREDIT, spend

TOKEN = "refusals-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Row = tuple[str, datetime, str, str, str, int, datetime, int, int]


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=40), accounts=("acc_a", "acc_b", "acc_c"))  # 100 credits each
    with unit_of_work(engine, write=True) as session:
        set_cap(
            session,
            account_id="acc_a",
            scope="account",
            scope_value="",
            limit="10",
            mode="hard",
            actor=Actor.system("tests"),
            at=now,
        )
        session.execute(update(Account).where(Account.id == "acc_c").values(status="suspended"))
    spend(engine, "e1", 10, now - timedelta(hours=1))  # acc_a: its $10 cap is reached
    return engine


@pytest.fixture
def app_and_authorizer(seeded: Engine, now: datetime) -> Iterator[tuple[TestClient, Authorizer]]:
    app = create_api_app(seeded, TOKEN, clock=fixed_clock(now))
    authorizer: Authorizer = app.state.spend.authorizer
    authorizer.refresh_s = 60.0  # the test flushes; the thread would race it every half second
    with TestClient(app) as client:
        yield client, authorizer


def ask(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/authorize", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def stored(engine: Engine) -> list[Row]:
    with unit_of_work(engine) as session:
        rows = session.scalars(
            select(AuthorizeRefusal).order_by(
                AuthorizeRefusal.account_id, AuthorizeRefusal.minute, AuthorizeRefusal.project
            )
        ).all()
        return [
            (
                r.account_id,
                r.minute,
                r.reason,
                r.project,
                r.meter,
                r.count,
                r.last_at,
                r.last_cost_nanos,
                r.last_remaining_nanos,
            )
            for r in rows
        ]


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def refused(reason: str = "hard_cap_reached", remaining_nanos: int = 0) -> Decision:
    return Decision(False, reason, remaining_nanos, None)


def test_the_reasons_stored_are_the_reasons_authorize_gives() -> None:
    assert set(REFUSAL_REASONS) == set(REASONS)


def test_refusals_through_the_route_are_tallied_then_stored_with_their_counts(
    seeded: Engine, app_and_authorizer: tuple[TestClient, Authorizer], now: datetime
) -> None:
    client, authorizer = app_and_authorizer
    for _ in range(3):
        answer = ask(client, account_id="acc_a", project="web", meter="requests", estimated_cost="0.5")
        assert answer["reason"] == "hard_cap_reached"
    for _ in range(2):
        assert ask(client, account_id="acc_a")["reason"] == "hard_cap_reached"
    assert ask(client, account_id="acc_c", estimated_cost=7)["reason"] == "account_suspended"
    assert ask(client, account_id="acc_b", estimated_cost="1")["allowed"] is True

    assert authorizer.pending_refusals() == 3  # keys, in memory: nothing written yet
    assert stored(seeded) == []
    assert authorizer.flush() == 3
    assert authorizer.pending_refusals() == 0
    minute = now.replace(second=0, microsecond=0)
    assert stored(seeded) == [
        ("acc_a", minute, "hard_cap_reached", "", "", 2, now, 0, 0),
        ("acc_a", minute, "hard_cap_reached", "web", "requests", 3, now, CREDIT // 2, 0),
        ("acc_c", minute, "account_suspended", "", "", 1, now, 7, 0),
    ]


def test_a_second_flush_adds_to_the_stored_counts(
    seeded: Engine, app_and_authorizer: tuple[TestClient, Authorizer], now: datetime
) -> None:
    client, authorizer = app_and_authorizer
    ask(client, account_id="acc_a", project="web")
    assert authorizer.flush() == 1
    for _ in range(4):
        ask(client, account_id="acc_a", project="web", estimated_cost="2")
    assert authorizer.flush() == 1
    assert authorizer.flush() == 0  # nothing new
    [row] = stored(seeded)
    assert row[2:6] == ("hard_cap_reached", "web", "", 5)
    assert row[7] == 2 * CREDIT  # the last refused request's estimate


def test_allowed_requests_record_nothing(
    seeded: Engine, app_and_authorizer: tuple[TestClient, Authorizer]
) -> None:
    client, authorizer = app_and_authorizer
    for _ in range(5):
        assert ask(client, account_id="acc_b", project="web", estimated_cost="1")["allowed"] is True
    assert authorizer.pending_refusals() == 0
    assert authorizer.flush() == 0
    assert stored(seeded) == []


def test_the_api_writes_what_is_left_when_it_shuts_down(seeded: Engine, now: datetime) -> None:
    app = create_api_app(seeded, TOKEN, clock=fixed_clock(now))
    app.state.spend.authorizer.refresh_s = 60.0
    with TestClient(app) as client:
        ask(client, account_id="acc_c")
        assert stored(seeded) == []
    assert [row[5] for row in stored(seeded)] == [1]  # the lifespan flushed on the way out


def test_counts_from_two_processes_add_up_and_keep_the_latest_figures(seeded: Engine, now: datetime) -> None:
    earlier, later = now, now + timedelta(seconds=20)
    first = Authorizer(lambda: seeded, clock=fixed_clock(later), refresh_s=60.0)  # the test flushes
    second = Authorizer(lambda: seeded, clock=fixed_clock(earlier), refresh_s=60.0)
    first.note_refusal("acc_a", refused(remaining_nanos=5), project=None, meter=None, cost_nanos=100)
    second.note_refusal("acc_a", refused(remaining_nanos=9), project=None, meter=None, cost_nanos=300)
    second.note_refusal("acc_a", refused(remaining_nanos=8), project=None, meter=None, cost_nanos=200)
    assert first.flush() == 1
    assert second.flush() == 1  # written last, but its refusals came first
    [row] = stored(seeded)
    assert row[5:] == (3, later, 100, 5)


def test_a_failing_flush_keeps_the_tally_for_the_next_one(
    seeded: Engine, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    broken = create_engine("sqlite:////nonexistent-folder/refusals.db")
    target = {"engine": broken}
    authorizer = Authorizer(lambda: target["engine"], clock=fixed_clock(now), refresh_s=60.0)
    authorizer.note_refusal("acc_a", refused(), project="web", meter=None, cost_nanos=1)
    authorizer.note_refusal("acc_a", refused(), project="web", meter=None, cost_nanos=2)
    assert authorizer.flush() == 0
    assert "kept for the next try" in caplog.text
    assert authorizer.pending_refusals() == 1
    authorizer.note_refusal("acc_a", refused(), project="web", meter=None, cost_nanos=3)  # meanwhile
    target["engine"] = seeded
    assert authorizer.flush() == 1
    [row] = stored(seeded)
    assert (row[3], row[5], row[7]) == ("web", 3, 3)
    broken.dispose()


def test_a_tally_put_back_keeps_the_newest_minutes_within_its_bound() -> None:
    tally = RefusalTally(max_keys=3)
    start = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    taken = {
        RefusalKey("acc_a", start + timedelta(minutes=m), "hard_cap_reached", "", ""): RefusalCount(
            1, start + timedelta(minutes=m), 0, 0
        )
        for m in range(3)
    }
    with tally.lock:
        tally.note(RefusalKey("acc_a", start + timedelta(minutes=9), "hard_cap_reached", "", ""), start, 0, 0)
        tally.note(RefusalKey("acc_a", start, "hard_cap_reached", "", ""), start + timedelta(seconds=5), 4, 0)
    assert tally.put_back(taken) == 1  # 4 keys: the oldest minute goes
    kept = tally.snapshot()
    assert sorted(key.minute.minute for key in kept) == [1, 2, 9]
    with tally.lock:  # full: a new key is not counted (and the next take says so)
        tally.note(RefusalKey("acc_b", start, "hard_cap_reached", "", ""), start, 0, 0)
        tally.note(RefusalKey("acc_a", start + timedelta(minutes=9), "hard_cap_reached", "", ""), start, 0, 0)
    counts, dropped = tally.take()
    assert (len(counts), dropped) == (3, 1)
    assert counts[RefusalKey("acc_a", start + timedelta(minutes=9), "hard_cap_reached", "", "")].count == 2


def test_a_tally_put_back_merges_with_what_was_counted_meanwhile() -> None:
    tally = RefusalTally()
    at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    key = RefusalKey("acc_a", at, "insufficient_credits", "", "")
    with tally.lock:
        tally.note(key, at + timedelta(seconds=30), 7, 1)
    assert tally.put_back({key: RefusalCount(5, at + timedelta(seconds=10), 3, 2)}) == 0
    assert tally.snapshot() == {key: RefusalCount(6, at + timedelta(seconds=30), 7, 1)}


def test_the_thread_writes_by_itself_retries_a_failure_and_stops_once_idle(
    seeded: Engine, now: datetime
) -> None:
    broken = create_engine("sqlite:////nonexistent-folder/refusals.db")
    target = {"engine": broken}
    authorizer = Authorizer(lambda: target["engine"], clock=fixed_clock(now), refresh_s=0.05)
    authorizer.note_refusal("acc_b", refused("insufficient_credits"), project=None, meter=None, cost_nanos=0)
    time.sleep(0.3)  # a few failed cycles: the tally is kept and the thread stays to retry
    assert authorizer.pending_refusals() == 1
    assert authorizer._thread is not None and authorizer._thread.is_alive()
    target["engine"] = seeded
    assert wait_until(lambda: len(stored(seeded)) == 1)
    assert wait_until(lambda: authorizer._thread is None)  # nothing asked, nothing left: it stopped
    authorizer.note_refusal("acc_b", refused("insufficient_credits"), project=None, meter=None, cost_nanos=0)
    assert wait_until(lambda: [row[5] for row in stored(seeded)] == [2])  # started again for it
    broken.dispose()


def test_the_periodic_jobs_delete_refusals_older_than_30_days(seeded: Engine, now: datetime) -> None:
    def count(days_ago: float) -> tuple[RefusalKey, RefusalCount]:
        minute = (now - timedelta(days=days_ago)).replace(second=0, microsecond=0)
        return RefusalKey("acc_a", minute, "hard_cap_reached", "", ""), RefusalCount(1, minute, 0, 0)

    with unit_of_work(seeded, write=True) as session:
        add_refusals(session, dict([count(45), count(30.01), count(29.99), count(1)]))
    assert run_due_jobs(seeded, clock=fixed_clock(now)).ran
    remaining = sorted(now - row[1] for row in stored(seeded))
    assert [round(age / timedelta(days=1), 2) for age in remaining] == [1.0, 29.99]


def test_a_full_tally_is_written_in_one_flush(seeded: Engine, now: datetime) -> None:
    authorizer = Authorizer(lambda: seeded, clock=fixed_clock(now), refresh_s=60.0)
    for index in range(3_000):
        authorizer.note_refusal("acc_a", refused(), project=f"p{index}", meter=None, cost_nanos=index)
    assert authorizer.flush() == 3_000
    rows = stored(seeded)
    assert len(rows) == 3_000 and sum(row[5] for row in rows) == 3_000
