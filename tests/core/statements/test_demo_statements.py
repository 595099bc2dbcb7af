"""Statements over the seeded demo story: every month of every account balances exactly, months
chain (one's closing balance is the next one's opening), the last closes on the account's balance,
and the usage lines add up to the ledger's usage debits; CSV and PDF say the same figures."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.db import unit_of_work
from core.db.models import Account, LedgerEntry
from core.display import credits_change_number, credits_number
from core.ledger import reasons
from core.statements import company, statement, statement_csv, statement_pdf
from core.statements.build import account_statement_months
from tests.conftest import NOW
from tests.core.demo.conftest import Seeded
from tests.core.demo.conftest import seeded as demo_seeded
from tests.core.statements.helpers import credits, csv_identity, csv_rows, pdf_text

pytestmark = pytest.mark.xdist_group("demo_seed")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    yield from demo_seeded.__wrapped__(request, tmp_path_factory)  # type: ignore[attr-defined]


def test_every_month_of_every_demo_account_balances_and_chains(seeded: Seeded) -> None:
    with unit_of_work(seeded.engine) as session:
        accounts = session.scalars(select(Account).order_by(Account.id)).all()
        assert len(accounts) == 4
        for account in accounts:
            months = account_statement_months(session, account.id, at=NOW)
            assert len(months) >= 3  # 80 days of history
            made = [statement(session, account.id, month.key, at=NOW) for month in reversed(months)]
            assert all(s.balanced for s in made)
            assert made[0].opening_nanos == 0
            for earlier, later in itertools.pairwise(made):
                assert later.opening_nanos == earlier.closing_nanos
            assert made[-1].closing_nanos == account.balance_nanos
            assert not made[-1].closed and all(s.closed for s in made[:-1])
            for month_statement in made:
                usage_debits = session.scalar(
                    select(func.coalesce(func.sum(LedgerEntry.amount_nanos), 0)).where(
                        LedgerEntry.account_id == account.id,
                        LedgerEntry.reason == reasons.USAGE,
                        LedgerEntry.effective_at >= month_statement.month.start,
                        LedgerEntry.effective_at < month_statement.month.end,
                    )
                )
                usage_lines = month_statement.section("usage")
                assert sum(line.amount_nanos for line in usage_lines) == usage_debits
                assert all(line.description != "Usage not itemised by meter" for line in usage_lines)
                opening, moved, closing = csv_identity(csv_rows(statement_csv(month_statement)))
                assert opening == credits(month_statement.opening_nanos)
                assert closing == credits(month_statement.closing_nanos) == opening + moved


def test_a_demo_statement_pdf_states_the_ledgers_figures(seeded: Seeded) -> None:
    with unit_of_work(seeded.engine) as session:
        account = session.scalars(select(Account).order_by(Account.id)).first()
        assert account is not None
        month = account_statement_months(session, account.id, at=NOW)[1]  # the last closed month
        made = statement(session, account.id, month.key, at=NOW)
    text = " ".join(pdf_text(statement_pdf(made, company({}))).split())
    assert f"Statement of credits: {month.label}" in text
    assert account.name in text
    for figure in (
        credits_number(made.opening_nanos),
        credits_change_number(made.additions_nanos),
        credits_change_number(-made.deductions_nanos),
        credits_number(made.closing_nanos),
    ):
        assert figure in text, figure
    for line in made.lines:
        assert credits_change_number(line.amount_nanos) in text
    assert Decimal(made.closing_nanos) == Decimal(
        made.opening_nanos + made.additions_nanos - made.deductions_nanos
    )
