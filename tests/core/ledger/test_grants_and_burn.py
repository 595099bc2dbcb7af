"""Ledger service on real databases: grants, burn order, deficit, expiry, check."""

from __future__ import annotations

from datetime import timedelta

from core.accounts import create_account
from core.db import unit_of_work
from core.ledger import balance_view, check_ledger, grant_credits, lock_accounts, post_usage
from core.money import credits_to_nanos


def test_usage_burns_promotional_before_purchased_and_goes_negative(engine, now):
    with unit_of_work(engine, write=True) as s:
        create_account(s, account_id="acc_a", name="A", at=now)
        grant_credits(s, account_id="acc_a", amount_nanos=credits_to_nanos(10), source="purchased", at=now)
        grant_credits(
            s,
            account_id="acc_a",
            amount_nanos=credits_to_nanos(5),
            source="promotional",
            at=now,
            expires_at=now + timedelta(days=3),
        )
    with unit_of_work(engine, write=True) as s:
        account = lock_accounts(s, ["acc_a"])["acc_a"]
        post_usage(s, account=account, amount_nanos=credits_to_nanos(7), at=now, reference="batch:1")
    with unit_of_work(engine) as s:
        view = balance_view(s, "acc_a", at=now)
        assert view.balance_nanos == credits_to_nanos(8)
        assert [(g.source, g.remaining_nanos) for g in view.grants] == [("purchased", credits_to_nanos(8))]
    with unit_of_work(engine, write=True) as s:
        account = lock_accounts(s, ["acc_a"])["acc_a"]
        post_usage(s, account=account, amount_nanos=credits_to_nanos(10), at=now, reference="batch:2")
    with unit_of_work(engine, write=True) as s:
        assert balance_view(s, "acc_a", at=now).deficit_nanos == -credits_to_nanos(2)
        grant_credits(s, account_id="acc_a", amount_nanos=credits_to_nanos(5), source="purchased", at=now)
    with unit_of_work(engine) as s:
        view = balance_view(s, "acc_a", at=now)
        assert view.balance_nanos == credits_to_nanos(3)
        assert view.deficit_nanos == 0
        # Balances and grants agree with their entries; the debits name batches that hold
        # no events, which the check must report (invariant 5).
        report = check_ledger(s)
        assert sorted(report.problems) == [
            "batch 1 account acc_a: events rated 0, ledger debited 7000000000",
            "batch 2 account acc_a: events rated 0, ledger debited 10000000000",
        ]
