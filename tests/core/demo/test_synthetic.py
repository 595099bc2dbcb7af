"""``meterline demo seed --accounts N``: synthetic accounts through the real commands, found by search."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select

from core.db import unit_of_work
from core.db.models import Account, UsageEvent
from core.demo.synthetic import api_key, seed_synthetic_accounts
from core.ledger import check_ledger
from core.support import search_accounts


def test_synthetic_accounts_have_members_grants_and_usage_and_a_second_run_adds_more(
    engine: Engine, now: datetime
) -> None:
    first = seed_synthetic_accounts(engine, count=3, now=now, days=2)
    second = seed_synthetic_accounts(engine, count=2, now=now, days=2)
    assert (first.accounts, first.events, second.events) == (3, 12, 8)
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 5
        assert session.scalar(select(func.count()).select_from(UsageEvent)) == 20
        assert check_ledger(session).ok
        by_key = search_accounts(session, api_key(4, 1)[:-2])
        by_email = search_accounts(session, "owner@syn000001")
    assert [(h.account_id, h.matched) for h in by_key] == [("acc_syn_000004", "API key")]
    assert [(h.account_id, h.matched) for h in by_email] == [("acc_syn_000001", "email")]
