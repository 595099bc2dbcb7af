"""Receipts of paid top-ups (figures, card, payment id, issuer; no tax line: none is recorded), and
statements and receipts for account names no font can draw whole."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from core.db import unit_of_work
from core.db.models import TopUp
from core.errors import NotFound
from core.money import credits_to_nanos
from core.payments import start_checkout
from core.statements import (
    company,
    receipt,
    receipt_file_name,
    receipt_number,
    receipt_pdf,
    statement_csv,
    statement_pdf,
)
from core.statements.build import EntryFact, build_statement
from core.statements.months import month_of
from core.statements.pdftext import core_font, document_font, printable
from tests.core.payments.helpers import (
    ACCOUNT,
    OWNER,
    PAGE_URL,
    paid_checkout_without_events,
    provider,
    top_up_row,
)
from tests.core.statements.helpers import csv_rows, pdf_text

ISSUER = company(
    {"METERLINE_COMPANY_NAME": "Acme Billing Ltd", "METERLINE_COMPANY_ADDRESS": "1 Main St|Springfield"}
)
HOSTILE = [
    "Café 北京 🚀 Ünïcødé",
    "\u202eevil\u202c name \u200d👩‍👩‍👧",
    "Zalgo z\u0335\u0321a\u0336l\u0334g\u0338o",
    "x" * 200,
    '=HYPERLINK("http://evil")',
    "line\nbreak\ttab",
    "漢字かなカナ한국어العربية עברית",
]


def test_a_paid_top_up_has_a_receipt_with_its_figures(engine: Engine, now: datetime) -> None:
    _payments, top_up_id, _session, intent_id = paid_checkout_without_events(
        engine, now, cents=2_550, delivery="sync"
    )
    row = top_up_row(engine, top_up_id)
    assert row.state == "credited"
    with unit_of_work(engine) as session:
        made = receipt(session, ACCOUNT, top_up_id)
    assert made.number == receipt_number(top_up_id) == f"ML-{top_up_id:08d}"
    assert receipt_file_name(made) == f"receipt_ML-{top_up_id:08d}.pdf"
    assert (made.amount_cents, made.credits_nanos, made.payment_id) == (
        2_550,
        credits_to_nanos("25.50"),
        intent_id,
    )
    assert made.billing_email == OWNER.email
    text = " ".join(pdf_text(receipt_pdf(made, ISSUER, base_url="http://portal.test")).split())
    for expected in (
        "Acme Billing Ltd",
        "1 Main St",
        "Springfield",
        f"Receipt ML-{top_up_id:08d}",
        "Paying Co (acc_pay)",
        OWNER.email,
        "$25.50",
        "25.50 credits",
        "$1.00",
        intent_id,
        "Nov 20, 2026",
    ):
        assert expected in text, expected
    if row.card_last4:
        assert f"ending in {row.card_last4}" in text
    if row.receipt_url:
        assert "Provider's receipt" in text
    assert "tax" not in text.lower()  # the payments model records no tax: no tax line


def test_a_refunded_top_up_keeps_its_receipt_and_says_what_was_refunded(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, _session, intent_id = paid_checkout_without_events(engine, now, delivery="sync")
    provider(payments).refund(intent_id, 1_000)
    with unit_of_work(engine) as session:
        made = receipt(session, ACCOUNT, top_up_id)
    text = " ".join(pdf_text(receipt_pdf(made, ISSUER)).split())
    assert "$25.00" in text and "Refunded since $10.00" in text


def test_only_a_paid_top_up_of_the_account_has_a_receipt(engine: Engine, now: datetime) -> None:
    payments, top_up_id, _session, _intent = paid_checkout_without_events(engine, now, delivery="sync")
    unpaid = start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=1_000,
        save_card=False,
        request_key="another",
        page_url=PAGE_URL,
        clock=payments.clock,
    )
    with unit_of_work(engine) as session:
        assert session.get(TopUp, unpaid.top_up_id).state != "credited"  # type: ignore[union-attr]
        for account_id, wanted in (
            (ACCOUNT, unpaid.top_up_id),
            ("acc_other", top_up_id),
            (ACCOUNT, 10**30),
            (ACCOUNT, -1),
        ):
            with pytest.raises(NotFound):
                receipt(session, account_id, wanted)


def _statement(name: str):  # type: ignore[no-untyped-def]
    month = month_of(datetime(2026, 11, 1).date(), "Asia/Tokyo")
    at = datetime(2026, 11, 10, tzinfo=UTC)
    entry = EntryFact(1, at, "grant_issued", "grant:1", 1, "goodwill", name, credits_to_nanos("3.5"))
    return build_statement(
        account_id="acc_odd",
        account_name=name,
        month=month,
        issued_at=at + timedelta(days=1),
        opening_nanos=0,
        entries=[entry],
        purchases={},
        usage=[],
    )


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("font", ["document", "core"])
def test_any_account_name_makes_a_readable_statement_and_receipt(name: str, font: str) -> None:
    chosen = document_font() if font == "document" else core_font()
    made = _statement(name)
    text = " ".join(pdf_text(statement_pdf(made, ISSUER, font=chosen)).split())
    assert "acc_odd" in text and "+3.50" in text and "3.50 credits" in text
    shown = " ".join(printable(name, chosen).split())
    assert shown[:9] in text  # right-to-left runs may come back reordered; the start reads as drawn
    rows = csv_rows(statement_csv(made))
    assert rows[1]["description"].endswith(name.replace("=", "'=", 1)[-20:]) or name in rows[1]["description"]
    the_receipt = replace(
        _receipt_of(name),
        account_name=name,
    )
    receipt_text = " ".join(pdf_text(receipt_pdf(the_receipt, ISSUER, font=chosen)).split())
    assert "$12.00" in receipt_text and "acc_odd" in receipt_text


def _receipt_of(name: str):  # type: ignore[no-untyped-def]
    from core.statements.receipts import Receipt

    return Receipt(
        number="ML-00000007",
        top_up_id=7,
        account_id="acc_odd",
        account_name=name,
        billing_email="owner@odd.test",
        timezone="Asia/Tokyo",
        paid_at=datetime(2026, 11, 3, tzinfo=UTC),
        amount_cents=1_200,
        currency="usd",
        credits_nanos=credits_to_nanos(12),
        card_brand="visa",
        card_last4="4242",
        payment_id="pi_odd",
        provider="sandbox",
        provider_receipt_url="/payments/sandbox/receipt/ch_1",
        refunded_cents=0,
        state="credited",
    )


def test_the_core_font_writes_what_it_lacks_plainly() -> None:
    font = core_font()
    assert printable("$20.00 → 20.00 credits", font) == "$20.00 -> 20.00 credits"
    assert printable("北京\x00\ud800", font) == "???"
    assert printable("Zoë – “x”", font) == "Zoë – “x”"
