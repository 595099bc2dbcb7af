"""The data version of an account moves with everything the portal shows, and only then."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.db import unit_of_work
from core.ledger import grant_credits
from core.metering import ingest_events
from core.money import NANOS_PER_CREDIT
from core.usage.version import data_version
from tests.core.metering.catalog_setup import event, seed_catalog


def _version(engine: Engine, account_id: str = "acc_a") -> tuple[int, int]:
    with unit_of_work(engine) as session:
        return data_version(session, account_id)


def test_version_moves_with_usage_and_credits_and_only_then(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60))
    start = _version(engine)
    assert _version(engine) == start  # reading changes nothing

    with unit_of_work(engine, write=True) as session:
        ingest_events(session, [event("priced")], at=now)
    after_usage = _version(engine)
    assert after_usage[0] > start[0] and after_usage[1] > start[1]
    assert _version(engine, "acc_b") == _version(engine, "acc_b")  # other accounts untouched

    with unit_of_work(engine, write=True) as session:  # unpriced usage: no ledger entry, still new data
        ingest_events(session, [event("free", meter="unpriced", quantity=5)], at=now)
    after_unpriced = _version(engine)
    assert after_unpriced[0] > after_usage[0] and after_unpriced[1] == after_usage[1]

    with unit_of_work(engine, write=True) as session:
        grant_credits(session, account_id="acc_a", amount_nanos=NANOS_PER_CREDIT, source="goodwill", at=now)
    after_grant = _version(engine)
    assert after_grant[1] > after_unpriced[1]

    with unit_of_work(engine, write=True) as session:  # a resend is a duplicate: nothing new to show
        ingest_events(session, [event("priced")], at=now)
    assert _version(engine) == after_grant


def test_unknown_account_has_version_zero(engine: Engine) -> None:
    assert _version(engine, "acc_nobody") == (0, 0)


def test_stamp_is_the_version_and_the_local_date(engine: Engine, now: datetime) -> None:
    from core.usage.version import data_stamp

    seed_catalog(engine, now - timedelta(days=60), timezone="Asia/Tokyo")
    with unit_of_work(engine) as session:
        version, today = data_stamp(session, "acc_a", now)
        assert version == data_version(session, "acc_a")
        assert today == (now + timedelta(hours=9)).date()  # Tokyo is UTC+9
        assert data_stamp(session, "acc_nobody", now) == ((0, 0), None)
