"""Usage page: metrics with units and periods, the table of the same numbers, empty state, CSV."""

from __future__ import annotations

from datetime import timedelta

from core.clock import system_clock
from tests.app.harness import metrics, page_text, signed_in, table
from tests.app.seed import ALICE, BOB


def test_usage_page_shows_spend_with_units_and_periods(portal_url: str) -> None:
    at = signed_in(ALICE)
    shown = metrics(at)
    # Acme: $6.00 today + $10.00 yesterday + $3.00 two days ago, all in the last 30 days.
    range_label = next(label for label in shown if label.startswith("Spent ") and "period" not in label)
    assert shown[range_label] == "$19.00"
    assert range_label.endswith("(UTC)")
    period_label = next(label for label in shown if "period" in label)
    assert "(UTC)" in period_label
    today_label = next(label for label in shown if label.startswith("Spent today"))
    assert shown[today_label] == "$6.00"
    text = page_text(at)
    assert "3,000,000 tokens" in text
    assert "300 requests" in text
    assert "Borealis" not in text


def test_usage_table_lists_the_same_numbers_by_model(portal_url: str) -> None:
    at = signed_in(ALICE)
    at.selectbox(key="usage.group_by").set_value("model").run()
    assert not at.exception
    rows = table(at)
    by_model = {(row["Model"], row["Meter"]): row for row in rows}
    assert by_model[("atlas-small", "Input tokens")]["Spend"] == "$6.00"
    assert by_model[("atlas-small", "Input tokens")]["Quantity"] == "2,000,000 tokens"
    assert by_model[("atlas-large", "Input tokens")]["Spend"] == "$10.00"
    assert by_model[("(none)", "Requests")]["Quantity"] == "300 requests"


def test_usage_by_hour_today(portal_url: str) -> None:
    at = signed_in(ALICE)
    at.selectbox(key="usage.range").set_value("today")
    at.radio(key="usage.granularity").set_value("hour").run()
    assert not at.exception
    rows = table(at)
    assert [row["Spend"] for row in rows] == ["$6.00"]
    assert next(iter(rows[0])) == "Hour"


def test_usage_csv_has_exact_values(portal_url: str) -> None:
    at = signed_in(ALICE)
    button = at.get("download_button")[0]
    assert "CSV" in button.label
    rows = table(at)
    assert len(rows) == 3


def test_empty_state_says_how_to_send_events(portal_url: str) -> None:
    at = signed_in(ALICE)
    at.selectbox(key="nav.account_pick").set_value("acc_globex").run()
    assert not at.exception
    text = page_text(at)
    assert "Globex Labs" in text
    assert any("No usage in this range yet" in info.value for info in at.info)
    assert "POST /api/v1/events" in text
    assert "America/New_York" in text


def test_each_account_sees_only_its_own_usage(portal_url: str) -> None:
    at = signed_in(BOB)
    shown = metrics(at)
    assert "$27.00" in shown.values()
    text = page_text(at)
    assert "Acme" not in text and "atlas-large" not in text


def test_custom_range_needs_both_dates(portal_url: str) -> None:
    at = signed_in(ALICE)
    at.selectbox(key="usage.range").set_value("custom").run()
    assert not at.exception
    today = system_clock().date()
    at.date_input(key="usage.custom").set_value((today - timedelta(days=1), today)).run()
    assert not at.exception
    assert any(label.startswith("Spent ") for label in metrics(at))


def test_late_events_are_noted_as_past_numbers_that_changed(portal_url: str) -> None:
    # The seed ingests Acme's events of yesterday and two days ago just now: they arrived late.
    at = signed_in(ALICE)
    notes = [info.value for info in at.info if "Past numbers changed" in info.value]
    assert len(notes) == 1
    assert "late event" in notes[0]
    assert "priced at the rate in force then" in notes[0]
