"""A month's statement over a history built by hand: every kind of line, the exact identity, the CSV
and the PDF agreeing with the ledger, months on the account's clock, a quiet month, bad months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from core.accounts import create_account
from core.db import unit_of_work
from core.db.models import Account, LedgerEntry
from core.display import exact_credits, format_credits
from core.errors import ValidationError
from core.ledger import expire_due_grants, grant_credits
from core.money import credits_to_nanos
from core.statements import company, statement, statement_csv, statement_pdf
from core.statements.build import account_statement_months
from tests.core.payments.helpers import (
    ACCOUNT,
    paid_checkout_without_events,
    provider,
    spend,
    top_up_row,
)
from tests.core.statements.helpers import credits, csv_identity, csv_rows, pdf_text

ISSUER = company(
    {"METERLINE_COMPANY_NAME": "Acme Billing Ltd", "METERLINE_COMPANY_ADDRESS": "1 Main St|Springfield"}
)


def _history(engine: Engine, now: datetime) -> int:
    """$25 bought by card, 20 promotional credits expiring in a day, 5 goodwill, 15 credits of usage,
    the promotion's rest expired, then $5 of the payment refunded. Returns the top-up's id."""
    payments, top_up_id, _session, intent_id = paid_checkout_without_events(engine, now, delivery="sync")
    assert top_up_row(engine, top_up_id).state == "credited"
    with unit_of_work(engine, write=True) as session:
        grant_credits(
            session,
            account_id=ACCOUNT,
            amount_nanos=credits_to_nanos(20),
            source="promotional",
            at=now + timedelta(minutes=1),
            expires_at=now + timedelta(days=1),
            description="Launch offer",
        )
        grant_credits(
            session,
            account_id=ACCOUNT,
            amount_nanos=credits_to_nanos("5.000000001"),
            source="goodwill",
            at=now + timedelta(minutes=2),
            description="Sorry about the outage",
        )
    spend(engine, credits_to_nanos(7), now + timedelta(minutes=3))
    spend(engine, credits_to_nanos(8), now + timedelta(minutes=4))
    with unit_of_work(engine, write=True) as session:
        assert expire_due_grants(session, at=now + timedelta(days=2)) == 1
    provider(payments).refund(intent_id, 500)
    return top_up_id


def _balance(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return int(session.scalar(select(Account.balance_nanos).where(Account.id == ACCOUNT)) or 0)


def test_every_kind_of_line_and_the_identity_holds_exactly(engine: Engine, now: datetime) -> None:
    top_up_id = _history(engine, now)
    at = now + timedelta(days=3)
    with unit_of_work(engine) as session:
        made = statement(session, ACCOUNT, "2026-11", at=at)
    assert made.balanced and not made.closed
    assert made.opening_nanos == 0
    assert made.closing_nanos == _balance(engine)
    assert made.opening_nanos + made.additions_nanos - made.deductions_nanos == made.closing_nanos
    (purchase,) = made.section("purchases")
    assert (purchase.reference, purchase.amount_cents, purchase.amount_nanos) == (
        f"Top-up #{top_up_id}",
        2_500,
        credits_to_nanos(25),
    )
    grants = {line.kind: line.amount_nanos for line in made.section("grants")}
    assert grants == {
        "promotional_grant": credits_to_nanos(20),
        "goodwill_grant": credits_to_nanos("5.000000001"),
    }
    (usage,) = made.section("usage")
    assert (usage.description, usage.quantity, usage.unit, usage.amount_nanos) == (
        "Units",
        15,
        "units",
        -credits_to_nanos(15),
    )
    (expired,) = made.section("expired")
    assert (expired.description, expired.amount_nanos) == (
        "Promotional credits expired",
        -credits_to_nanos(5),
    )
    refunds = made.section("refunds")
    assert [line.kind for line in refunds] == ["refund"]
    assert refunds[0].reference == f"Top-up #{top_up_id}" and refunds[0].amount_nanos < 0
    assert made.additions_nanos == credits_to_nanos("50.000000001")


def test_csv_and_pdf_agree_with_the_ledger(engine: Engine, now: datetime) -> None:
    top_up_id = _history(engine, now)
    with unit_of_work(engine) as session:
        made = statement(session, ACCOUNT, "2026-11", at=now + timedelta(days=3))
        entries_sum = session.scalar(
            select(func.sum(LedgerEntry.amount_nanos)).where(LedgerEntry.account_id == ACCOUNT)
        )
    rows = csv_rows(statement_csv(made))
    opening, moved, closing = csv_identity(rows)
    assert opening + moved == closing == credits(int(entries_sum))  # exact decimals, every digit
    goodwill = next(row for row in rows if row["row_type"] == "goodwill_grant")
    assert goodwill["amount_credits"] == "5.000000001"
    purchase = next(row for row in rows if row["row_type"] == "purchase")
    assert (purchase["amount_usd"], purchase["amount_credits"], purchase["date"]) == (
        "25.000000000",
        "25.000000000",
        "2026-11-20",
    )
    assert {row["account_id"] for row in rows} == {ACCOUNT}

    text = pdf_text(statement_pdf(made, ISSUER))
    assert "Acme Billing Ltd" in text and "Springfield" in text
    assert "Statement of credits: November 2026" in text
    assert f"Top-up #{top_up_id}" in text and "$25.00" in text
    assert "Launch offer" in text and "Sorry about the outage" in text
    assert "-15.00" in text and "15 units" in text
    assert "Month to date" in text
    exact = [
        exact_credits(n).removesuffix(" credits")
        for n in (made.opening_nanos, made.additions_nanos, made.deductions_nanos, made.closing_nanos)
    ]
    assert exact[:2] == ["0.00", "50.000000001"]
    assert f"{exact[0]} + {exact[1]} - {exact[2]} = {exact[3]} credits" in " ".join(text.split())
    assert format_credits(made.closing_nanos).removesuffix(" credits") in text


def test_months_follow_the_accounts_clock(engine: Engine) -> None:
    # Nov 1, 2026 is the day daylight saving ends in Los Angeles: midnight is 07:00 UTC.
    created = datetime(2026, 10, 20, tzinfo=UTC)
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_la", name="LA Co", at=created, timezone="America/Los_Angeles")
        for minute, amount in ((6 * 60 + 59, "1"), (7 * 60, "2")):
            grant_credits(
                session,
                account_id="acc_la",
                amount_nanos=credits_to_nanos(amount),
                source="goodwill",
                at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=minute),
            )
    at = datetime(2026, 12, 2, tzinfo=UTC)
    with unit_of_work(engine) as session:
        october = statement(session, "acc_la", "2026-10", at=at)
        november = statement(session, "acc_la", "2026-11", at=at)
        months = [m.key for m in account_statement_months(session, "acc_la", at=at)]
    assert months == ["2026-12", "2026-11", "2026-10"]
    assert october.closed and november.closed
    assert [line.amount_nanos for line in october.lines] == [credits_to_nanos(1)]
    assert october.lines[0].day.isoformat() == "2026-10-31"  # type: ignore[union-attr]
    assert [line.amount_nanos for line in november.lines] == [credits_to_nanos(2)]
    assert november.lines[0].day.isoformat() == "2026-11-01"  # type: ignore[union-attr]
    assert november.opening_nanos == october.closing_nanos == credits_to_nanos(1)
    assert november.month.start == datetime(2026, 11, 1, 7, tzinfo=UTC)
    assert october.month.start == datetime(2026, 10, 1, 7, tzinfo=UTC)


def test_a_month_without_activity_carries_the_balance_over(engine: Engine) -> None:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_quiet", name="Quiet", at=datetime(2026, 8, 3, tzinfo=UTC))
        grant_credits(
            session,
            account_id="acc_quiet",
            amount_nanos=credits_to_nanos("12.345"),
            source="promotional",
            at=datetime(2026, 8, 4, tzinfo=UTC),
        )
    with unit_of_work(engine) as session:
        quiet = statement(session, "acc_quiet", "2026-10", at=datetime(2026, 11, 20, tzinfo=UTC))
    assert quiet.lines == () and quiet.balanced
    assert quiet.opening_nanos == quiet.closing_nanos == credits_to_nanos("12.345")
    assert (quiet.additions_nanos, quiet.deductions_nanos) == (0, 0)
    text = pdf_text(statement_pdf(quiet, ISSUER))
    assert text.count("None this month.") == 6
    assert "12.345 + 0.00 - 0.00 = 12.345" in " ".join(text.split())
    rows = csv_rows(statement_csv(quiet))
    assert [row["row_type"] for row in rows] == [
        "opening_balance",
        "total_additions",
        "total_deductions",
        "closing_balance",
    ]


@pytest.mark.parametrize(
    "month", ["2026-13", "2026-00", "26-11", "", "2026-1", "1969-12", "２０２６-11", "2027-01"]
)
def test_a_month_that_cannot_have_a_statement_is_refused_by_field(engine: Engine, month: str) -> None:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_x", name="X", at=datetime(2026, 1, 1, tzinfo=UTC))
    with unit_of_work(engine) as session, pytest.raises(ValidationError) as refused:
        statement(session, "acc_x", month, at=datetime(2026, 12, 7, tzinfo=UTC))
    assert refused.value.field == "month"
