"""Statements on Balance & credits and receipt PDFs on Buy credits: the download buttons, for every
member and for a support agent viewing as the customer, and files that agree with the ledger."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.page import PageContext
from app.resources import get_engine
from app.statements_ui import receipt_pdf_for, statement_csv_for, statement_pdf_for
from core.clock import system_clock
from core.db import unit_of_work
from core.db.models import Account
from core.display import credits_number
from core.errors import NotFound, PermissionDenied
from tests.app.harness import open_page, signed_in, table
from tests.app.seed import ALICE, BOB, VIVIAN
from tests.app.test_buy_credits_page import _buy_with, _save_card, sandbox_events_at_once
from tests.app.test_view_as_customer import _viewing_borealis
from tests.core.statements.helpers import credits, csv_identity, csv_rows, pdf_text

__all__ = ["sandbox_events_at_once"]  # autouse here too: the Buy credits page's sandbox delivers at once

STATEMENT_BUTTONS = {"Statement (PDF)", "Statement (CSV)"}


def _downloads(at) -> set[str]:  # type: ignore[no-untyped-def]
    return {button.label for button in at.get("download_button")}


def _this_month(account_id: str = "acc_acme") -> str:
    with unit_of_work(get_engine()) as session:
        zone = session.scalar(select(Account.timezone).where(Account.id == account_id))
    return f"{system_clock().astimezone(ZoneInfo(zone or 'UTC')):%Y-%m}"


@pytest.mark.parametrize("who", [ALICE, VIVIAN])
def test_every_member_is_offered_the_months_statement_as_pdf_and_csv(portal_url: str, who: str) -> None:
    at = open_page(signed_in(who), "balance")
    assert _downloads(at) >= STATEMENT_BUTTONS
    picker = at.selectbox(key="balance.statement.month")
    month = _this_month()
    assert month in picker.options or any("(month to date)" in option for option in picker.options)
    picker.set_value(month).run()
    assert not at.exception, [e.value for e in at.exception]
    assert _downloads(at) >= STATEMENT_BUTTONS


def test_the_statement_files_agree_with_the_balance_and_only_for_members(portal_url: str) -> None:
    month = _this_month()
    with unit_of_work(get_engine()) as session:
        balance = int(session.scalar(select(Account.balance_nanos).where(Account.id == "acc_acme")) or 0)
    viewer = PageContext(VIVIAN, is_support=False, account_id="acc_acme")
    opening, moved, closing = csv_identity(csv_rows(statement_csv_for(get_engine(), viewer, month)))
    assert opening + moved == closing == credits(balance)
    text = " ".join(pdf_text(statement_pdf_for(get_engine(), viewer, month)).split())
    assert "Acme Robotics (acc_acme)" in text and credits_number(balance) in text
    outsider = PageContext(BOB, is_support=False, account_id="acc_acme")
    with pytest.raises(PermissionDenied):
        statement_csv_for(get_engine(), outsider, month)


def test_a_support_agent_viewing_as_the_customer_downloads_them_too(portal_url: str) -> None:
    at = _viewing_borealis()
    open_page(at, "balance")
    assert _downloads(at) >= STATEMENT_BUTTONS
    agent = PageContext("agent@meterline.test", is_support=True, account_id="acc_borealis", read_only=True)
    text = pdf_text(statement_pdf_for(get_engine(), agent, _this_month("acc_borealis")))
    assert "Borealis Bank (acc_borealis)" in " ".join(text.split())


def test_a_paid_top_up_offers_its_receipt_pdf_beside_its_receipt(portal_url: str) -> None:
    card = _save_card(portal_url, auto_recharge=False)
    top_up_id = _buy_with(portal_url, card, 2_500)
    at = open_page(signed_in(VIVIAN), "buy_credits")  # a viewer reads the history and its receipts
    assert table(at, 0)[0]["Purchase"] == f"Top-up #{top_up_id}"
    at.session_state["buy.history"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Receipt (PDF)" in _downloads(at)
    viewer = PageContext(VIVIAN, is_support=False, account_id="acc_acme")
    text = " ".join(pdf_text(receipt_pdf_for(get_engine(), viewer, top_up_id)).split())
    for part in (
        f"Receipt ML-{top_up_id:08d}",
        "Acme Robotics (acc_acme)",
        "$25.00",
        "25.00 credits",
        "4242",
    ):
        assert part in text, part
    with pytest.raises(NotFound):
        receipt_pdf_for(
            get_engine(), PageContext(ALICE, is_support=False, account_id="acc_globex"), top_up_id
        )
    with pytest.raises(PermissionDenied):
        receipt_pdf_for(get_engine(), PageContext(BOB, is_support=False, account_id="acc_acme"), top_up_id)


def test_the_receipt_page_offers_the_pdf_too(portal_url: str) -> None:
    card = _save_card(portal_url, auto_recharge=False)
    top_up_id = _buy_with(portal_url, card, 2_500)
    page = signed_in(ALICE)
    page.query_params["receipt"] = str(top_up_id)
    open_page(page, "buy_credits")
    assert "Receipt (PDF)" in _downloads(page)
