"""The Finance page: a support admin reads a month's credit roll-forward; nobody else reaches it."""

from __future__ import annotations

import csv
import io

import pytest

from app.finance_ui import read_rollforward
from core.clock import system_clock
from core.finance import rollforward_csv
from core.finance.report import rounded_text
from tests.app.harness import open_page, page_text, shown_table, signed_in
from tests.app.seed import ALICE

ADMIN = "admin@meterline.test"
AGENT = "agent@meterline.test"


def test_a_support_admin_reads_the_roll_forward_with_its_identity_checked(portal_url: str) -> None:
    at = signed_in(ADMIN, roles=["support_admin"])
    open_page(at, "finance")
    assert at.title[0].value == "Finance"
    month = at.selectbox(key="finance.month").value
    assert month == system_clock().strftime("%Y-%m")  # this month (UTC) first
    text = page_text(at)
    assert "Credit roll-forward" in text and "dollars at cost basis" in text
    assert any("for every account and the total" in s.value and "Checked" in s.value for s in at.success)
    assert "equals the purchased credits the ledger holds now" in text  # the current month, checked
    (total,) = shown_table(at, 0)
    accounts = {row["Account"]: row for row in shown_table(at, 1)}
    read = read_rollforward(month)
    report, ledger_now = read.report, read.ledger_now_usd_nanos
    assert set(accounts) == {line.account_id for line in report.lines}
    for account_id, row in accounts.items():  # each closes at what the ledger holds now, at cost
        assert row["Closing ($)"] == rounded_text(ledger_now.get(account_id, 0)), account_id
        assert row["Identity"] == "✓ holds"
    assert accounts["acc_acme"]["Name"] == "Acme Robotics"
    assert total["Account"] == "Total"
    assert total["Closing ($)"] == rounded_text(sum(ledger_now.values()))
    assert at.get("download_button")


def test_the_csv_carries_every_digit_per_account_and_the_total(portal_url: str) -> None:
    at = signed_in(ADMIN, roles=["support_admin"])
    open_page(at, "finance")
    month = at.selectbox(key="finance.month").value
    rows = list(csv.DictReader(io.StringIO(rollforward_csv(read_rollforward(month).report).decode())))
    assert rows[-1]["account_id"] == "total"
    assert {row["month"] for row in rows} == {month}
    assert set(rows[0]) == {
        "month",
        "account_id",
        *(f"{key}_usd" for key in ("opening_deferred", "purchased", "recognized", "breakage", "refunded")),
        "closing_deferred_usd",
        *(f"promotional_{key}_credits" for key in ("granted", "consumed", "expired")),
    }


def test_an_earlier_month_can_be_picked(portal_url: str) -> None:
    at = signed_in(ADMIN, roles=["support_admin"])
    open_page(at, "finance")
    options = at.selectbox(key="finance.month").options
    at.selectbox(key="finance.month").select_index(len(options) - 1).run()  # two years ago: nothing yet
    assert not at.exception, [e.value for e in at.exception]
    assert "No account held or moved credits in this month" in page_text(at)
    assert "ledger holds now" not in page_text(at)  # only the current month is compared with today


@pytest.mark.parametrize(("email", "claims"), [(AGENT, {"roles": ["support"]}), (ALICE, {})])
def test_a_plain_agent_and_a_customer_cannot_open_finance(portal_url: str, email: str, claims: dict) -> None:  # type: ignore[type-arg]
    at = signed_in(email, **claims)
    with pytest.raises(ValueError):
        at.switch_page("../pages/finance.py")
    assert not at.error  # they stay where they were, on their own page
