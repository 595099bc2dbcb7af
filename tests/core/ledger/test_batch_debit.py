"""One usage debit for several accounts at once: the same entries as one account at a time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select

from core.accounts import create_account
from core.db import unit_of_work
from core.db.models import LedgerEntry
from core.ledger import balance_view, check_ledger, grant_credits, lock_accounts, post_usage_batch, reasons
from core.money import credits_to_nanos


def test_batch_debit_expires_due_grants_first_and_burns_each_account(engine: Engine, now) -> None:
    with unit_of_work(engine, write=True) as s:
        for account_id in ("acc_a", "acc_b", "acc_c"):
            create_account(s, account_id=account_id, name=account_id, at=now)
        grant_credits(s, account_id="acc_a", amount_nanos=credits_to_nanos(10), source="purchased", at=now)
        grant_credits(
            s,
            account_id="acc_a",
            amount_nanos=credits_to_nanos(5),
            source="promotional",
            at=now,
            expires_at=now + timedelta(hours=1),
        )
        grant_credits(s, account_id="acc_b", amount_nanos=credits_to_nanos(2), source="goodwill", at=now)
    later = now + timedelta(hours=2)  # acc_a's promotional grant has expired by then
    with unit_of_work(engine, write=True) as s:
        accounts = lock_accounts(s, ["acc_a", "acc_b", "acc_c"])
        postings = post_usage_batch(
            s,
            accounts=accounts,
            amounts={"acc_b": credits_to_nanos(3), "acc_a": credits_to_nanos(4), "acc_c": 0},
            at=later,
            reference="batch:9",
        )
        assert set(postings) == {"acc_a", "acc_b"}  # nothing to post for a zero amount
    with unit_of_work(engine) as s:
        reasons_a = [
            (e.reason, e.amount_nanos)
            for e in s.scalars(
                select(LedgerEntry).where(LedgerEntry.account_id == "acc_a").order_by(LedgerEntry.id)
            )
        ]
        assert reasons_a[-2:] == [
            (reasons.GRANT_EXPIRED, -credits_to_nanos(5)),
            (reasons.USAGE, -credits_to_nanos(4)),
        ]
        assert balance_view(s, "acc_a", at=later).balance_nanos == credits_to_nanos(6)
        view_b = balance_view(s, "acc_b", at=later)
        assert (view_b.balance_nanos, view_b.deficit_nanos) == (-credits_to_nanos(1), -credits_to_nanos(1))
        assert balance_view(s, "acc_c", at=later).balance_nanos == 0
        report = check_ledger(s)
        # The balances and grants agree with their entries (batch 9 holds no events: reported).
        assert all(problem.startswith("batch 9 ") for problem in report.problems)
        assert report.accounts_checked == 3
