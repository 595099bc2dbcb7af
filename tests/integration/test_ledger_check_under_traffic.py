"""`meterline ledger check` tells the truth while usage flows (DESIGN invariant 9).

Under READ COMMITTED each of the check's queries sees a different moment, so with writers
committing it reports grants, balances and batches that disagree although every commit
was whole. ``run_ledger_check`` reads one snapshot; this test keeps four writers busy
ingesting (and granting, so deficits get repaid) while it checks again and again.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.db import unit_of_work
from core.ledger import LedgerCheckReport, grant_credits, run_ledger_check
from core.metering import ingest_events
from core.money import credits_to_nanos
from tests.core.metering.catalog_setup import event, seed_catalog

ACCOUNTS = ("acc_a", "acc_b", "acc_c", "acc_d")
WRITERS = 4
CHECKS = 30
CHECK_FOR_S = 60.0  # a bound on the checking, should the writers stall
EVENTS_PER_BATCH = 40
MAX_BATCHES_PER_WRITER = 400  # a bound, in case the checks are slow: the writers stop when they end


def _events(writer: int, batch: int) -> list[dict]:
    # 100,000 input tokens cost 0.2 credits: the 20-credit grants run out within the test,
    # so usage burns grants, then drives balances negative, then new grants repay them.
    return [
        event(
            f"w{writer}-b{batch}-e{i}",
            account_id=ACCOUNTS[(writer + i) % len(ACCOUNTS)],
            quantity=100_000 + 17 * i,
            dimensions={"model": f"m{i % 3}"},
        )
        for i in range(EVENTS_PER_BATCH)
    ]


def test_ledger_check_reports_no_false_problem_while_writers_commit(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60), accounts=ACCOUNTS, grant_credits_each=20)
    stop = threading.Event()
    start = threading.Barrier(WRITERS + 1)
    errors: list[BaseException] = []
    batches = [0] * WRITERS

    def write(writer: int) -> None:
        try:
            start.wait()
            for batch in range(MAX_BATCHES_PER_WRITER):
                if stop.is_set():
                    return
                with unit_of_work(engine, write=True) as session:
                    result = ingest_events(session, _events(writer, batch), at=now)
                assert result.accepted == EVENTS_PER_BATCH
                batches[writer] += 1
                if batch % 7 == writer:
                    with unit_of_work(engine, write=True) as session:
                        grant_credits(
                            session,
                            account_id=ACCOUNTS[writer],
                            amount_nanos=credits_to_nanos(3),
                            source="goodwill",
                            at=now,
                        )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    reports: list[LedgerCheckReport] = []
    try:
        start.wait()
        # At least CHECKS checks, and on until one of them saw batches the first did not (a check
        # can be much quicker than a writer's first batch: 30 checks alone could all see none).
        deadline = time.monotonic() + CHECK_FOR_S
        while time.monotonic() < deadline:
            reports.append(run_ledger_check(engine))
            if len(reports) >= CHECKS and reports[-1].batches_checked > reports[0].batches_checked:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors

    false_alarms = [(i, report.problems[:3]) for i, report in enumerate(reports) if not report.ok]
    assert not false_alarms, f"{len(false_alarms)} of {len(reports)} checks: problems {false_alarms[:3]}"
    # The checks really ran while the ledger moved: later checks saw batches the first did not.
    assert reports[-1].batches_checked > reports[0].batches_checked
    final = run_ledger_check(engine)
    assert final.ok, final.problems
    assert final.batches_checked == sum(batches)
