"""Invariant 1 under random sequences of grants, usage and expiry, on real databases."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.accounts import create_account
from core.db import unit_of_work
from core.ledger import (
    balance_view,
    check_ledger,
    expire_due_grants,
    grant_credits,
    lock_accounts,
    post_usage,
)

_accounts = itertools.count()

operation = st.one_of(
    st.tuples(
        st.just("grant"),
        st.integers(1, 10**12),
        st.sampled_from(["purchased", "promotional", "goodwill"]),
        st.one_of(st.none(), st.integers(1, 48)),
    ),
    st.tuples(st.just("usage"), st.integers(0, 2 * 10**12)),
    st.tuples(st.just("wait"), st.integers(1, 30)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(operation, min_size=1, max_size=12))
def test_balance_equals_sum_of_entries_whatever_happens(engine, now, operations):
    account_id = f"acc_prop_{next(_accounts)}"
    clock = now
    expected = 0
    with unit_of_work(engine, write=True) as s:
        create_account(s, account_id=account_id, name="Property", at=clock)
    for op in operations:
        with unit_of_work(engine, write=True) as s:
            if op[0] == "grant":
                _, amount, source, hours = op
                expires = None if hours is None else clock + timedelta(hours=hours)
                grant_credits(
                    s, account_id=account_id, amount_nanos=amount, source=source, at=clock, expires_at=expires
                )
                expected += amount
            elif op[0] == "usage":
                account = lock_accounts(s, [account_id])[account_id]
                post_usage(s, account=account, amount_nanos=op[1], at=clock, reference="batch:0")
                expected -= op[1]
            else:
                clock += timedelta(hours=op[1])
                account = lock_accounts(s, [account_id])[account_id]
                expire_due_grants(s, at=clock, account=account)
        with unit_of_work(engine) as s:
            view = balance_view(s, account_id, at=clock)
            # Expiry removes what was left; everything else moved exactly as asked.
            assert view.balance_nanos <= expected
            expected = view.balance_nanos
            assert sum(g.remaining_nanos for g in view.grants) + view.deficit_nanos == view.balance_nanos
            assert view.deficit_nanos <= 0
            # A negative balance only exists while no open grant has credits left.
            assert view.deficit_nanos == 0 or view.grants == []
    with unit_of_work(engine) as s:
        report = check_ledger(s)
        # Usage here references no ingest batch (the batch checks are exercised by metering tests).
        assert [p for p in report.problems if not p.startswith("batch")] == []
