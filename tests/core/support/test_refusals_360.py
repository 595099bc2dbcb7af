"""Account 360 lists the account's authorize refusals of the last 7 days, newest first, 50 at most."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.db import unit_of_work
from core.spend.refusals import RefusalCount, RefusalKey, add_refusals
from core.support import SUPPORT, Agent, account_360
from tests.core.metering.catalog_setup import seed_catalog

SAM = Agent("sam@meterline.example", SUPPORT)


def _refusal(
    account_id: str, at: datetime, reason: str, project: str = "", meter: str = "", count: int = 1
) -> tuple[RefusalKey, RefusalCount]:
    minute = at.replace(second=0, microsecond=0)
    return RefusalKey(account_id, minute, reason, project, meter), RefusalCount(count, at, 1_500_000_000, 0)


def test_the_360_view_lists_recent_refusals_newest_first(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=40))
    with unit_of_work(engine, write=True) as session:
        add_refusals(
            session,
            dict(
                [
                    _refusal("acc_a", now - timedelta(hours=2), "insufficient_credits", count=4),
                    _refusal("acc_a", now - timedelta(minutes=5), "hard_cap_reached", "web", "requests", 12),
                    _refusal("acc_a", now - timedelta(days=6), "account_suspended"),
                    _refusal("acc_a", now - timedelta(days=8), "hard_cap_reached"),  # older than 7 days
                    _refusal("acc_b", now - timedelta(minutes=1), "hard_cap_reached"),  # another account
                ]
            ),
        )
    with unit_of_work(engine) as session:
        view = account_360(session, SAM, "acc_a", at=now)
    assert [(r.reason_label, r.project, r.meter, r.count) for r in view.refusals] == [
        ("hard cap reached", "web", "requests", 12),
        ("insufficient credits", "", "", 4),
        ("account suspended", "", "", 1),
    ]
    newest = view.refusals[0]
    assert newest.minute == (now - timedelta(minutes=5)).replace(second=0, microsecond=0)
    assert (newest.last_cost_nanos, newest.last_remaining_nanos) == (1_500_000_000, 0)
    with unit_of_work(engine) as session:
        assert [r.count for r in account_360(session, SAM, "acc_b", at=now).refusals] == [1]
        assert account_360(session, SAM, "acc_a", at=now + timedelta(days=8)).refusals == []


def test_the_360_view_shows_at_most_50_refusals(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=40))
    with unit_of_work(engine, write=True) as session:
        add_refusals(
            session,
            dict(_refusal("acc_a", now - timedelta(minutes=m), "hard_cap_reached") for m in range(60)),
        )
    with unit_of_work(engine) as session:
        refusals = account_360(session, SAM, "acc_a", at=now).refusals
    assert len(refusals) == 50
    assert refusals[0].minute == now.replace(second=0, microsecond=0)
    assert [r.minute for r in refusals] == sorted((r.minute for r in refusals), reverse=True)
