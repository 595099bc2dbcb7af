"""The Usage page's FOCUS export: a month picker and a download made on click, for members only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.focus_ui import export_for, month_label, recent_months
from app.page import PageContext
from app.resources import get_engine
from core.clock import system_clock
from core.errors import PermissionDenied
from tests.app.harness import open_page, signed_in
from tests.app.seed import ALICE, BOB


def test_the_usage_page_offers_a_focus_export_for_a_chosen_month(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "usage")
    picker = at.selectbox(key="usage.focus.month")
    this_month = f"{system_clock().astimezone(UTC):%Y-%m}"
    assert picker.value == this_month and picker.options[0] == month_label(this_month)
    assert len(picker.options) == 13
    assert any(button.label == "FOCUS export (CSV)" for button in at.get("download_button"))
    picker.set_value(recent_months(system_clock())[1]).run()
    assert not at.exception


def test_the_download_is_the_accounts_month_and_only_for_its_members(portal_url: str) -> None:
    month = f"{system_clock().astimezone(UTC):%Y-%m}"
    alice = PageContext(ALICE, is_support=False, account_id="acc_acme")
    rows = list(csv.DictReader(io.StringIO(export_for(get_engine(), alice, month).decode(), newline="")))
    assert rows and {row["BillingAccountId"] for row in rows} == {"acc_acme"}
    assert all(Decimal(row["BilledCost"]) > 0 for row in rows if row["ChargeCategory"] == "Usage")
    bob = PageContext(BOB, is_support=False, account_id="acc_acme")
    with pytest.raises(PermissionDenied):
        export_for(get_engine(), bob, month)


def test_months_offered_run_back_across_the_new_year() -> None:
    months = recent_months(datetime(2027, 1, 5, 3, tzinfo=UTC), count=3)
    assert months == ["2027-01", "2026-12", "2026-11"]
    assert month_label("2026-12") == "December 2026"
