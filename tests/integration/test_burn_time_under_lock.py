"""The moment a batch burns is read once the account lock is held (DESIGN invariant 9).

A grant committed while a request waits for the account lock is in effect for that
request: its usage burns the grant instead of going to the deficit. Before, the API read
the clock when the request arrived, so such a grant (``effective_at`` later than the
batch's time) was skipped. Deterministic on both databases: the test holds the lock,
waits until the request has started (the barrier is its first clock read), commits a
grant, then lets the request through.
"""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta

from sqlalchemy import Engine
from starlette.testclient import TestClient

from core.api import create_api_app
from core.db import unit_of_work
from core.ledger import balance_view, check_ledger, grant_credits, lock_accounts
from core.money import NANOS_PER_CREDIT
from tests.core.metering.catalog_setup import event, seed_catalog

TOKEN = "test-token-lock"


def test_grant_committed_while_the_batch_waits_for_the_lock_is_burned(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60), accounts=("acc_a",), grant_credits_each=0)
    ticks = itertools.count()
    request_started = threading.Event()

    def clock() -> datetime:
        moment = now + timedelta(seconds=next(ticks))  # every read is later than the one before
        if threading.current_thread() is not threading.main_thread():
            request_started.set()
        return moment

    app = create_api_app(engine, TOKEN, clock=clock)
    answers: list[dict[str, object]] = []
    # 10 credits: 5M tokens at 2.00 per million.
    body = {"events": [event("e1", quantity=5_000_000, timestamp=(now - timedelta(minutes=5)).isoformat())]}

    with TestClient(app) as client:

        def post() -> None:
            response = client.post("/api/v1/events", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
            answers.append(response.json())

        with unit_of_work(engine, write=True) as holder:
            lock_accounts(holder, ["acc_a"])  # the account lock (SQLite: the database write lock)
            worker = threading.Thread(target=post)
            worker.start()
            assert request_started.wait(30), "the request never started"
            grant_credits(
                holder,
                account_id="acc_a",
                amount_nanos=50 * NANOS_PER_CREDIT,
                source="promotional",
                at=clock(),
            )
        worker.join(60)

    assert answers and answers[0]["accepted"] == 1, answers
    with unit_of_work(engine) as session:
        view = balance_view(session, "acc_a", at=clock())
        assert check_ledger(session).ok
    assert view.balance_nanos == 40 * NANOS_PER_CREDIT
    assert view.deficit_nanos == 0
    assert [g.remaining_nanos for g in view.grants] == [40 * NANOS_PER_CREDIT]
