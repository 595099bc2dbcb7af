"""Usage page: metrics with units and periods, the tables of the same numbers (numbers, not
text), filters, the view in the address, empty states in the customer's words, CSV."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from streamlit.testing.v1 import AppTest

from core.clock import system_clock
from core.db import make_engine, unit_of_work
from core.metering import ingest_events
from tests.app.harness import metrics, open_page, page_text, signed_in, table
from tests.app.seed import ALICE, BOB, event

TOTALS, DETAIL = 0, 1  # the page's two tables: totals per group, then per day (or hour)


def usage_page(email: str) -> AppTest:
    """Signed in (the portal lands on Overview), then on the Usage page."""
    return open_page(signed_in(email), "usage")


def test_usage_page_shows_spend_with_units_and_periods(portal_url: str) -> None:
    at = usage_page(ALICE)
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


def test_tables_hold_numbers_that_sort_as_numbers(portal_url: str) -> None:
    at = usage_page(ALICE)
    at.selectbox(key="usage.group_by").set_value("model").run()
    assert not at.exception
    rows = table(at, DETAIL)
    by_model = {(row["Model"], row["Meter"]): row for row in rows}
    assert by_model[("atlas-small", "Input tokens")]["Spend"] == Decimal("6.000000000")
    assert by_model[("atlas-small", "Input tokens")]["Quantity"] == 2_000_000
    assert by_model[("atlas-large", "Input tokens")]["Spend"] == Decimal("10")
    assert by_model[("(none)", "Requests")]["Quantity"] == 300
    assert by_model[("(none)", "Requests")]["Unit"] == "requests"
    # Sorting by spend sorts numbers: $3.00 < $6.00 < $10.00 (as text "$10.00" < "$3.00").
    assert sorted(row["Spend"] for row in rows) == [Decimal(3), Decimal(6), Decimal(10)]
    frame = at.dataframe[DETAIL].value
    assert str(frame["Quantity"].dtype) == "int64" and str(frame["Events"].dtype) == "int64"
    assert list(frame.columns)[:3] == ["Day", "Model", "Spend"]  # money early: on screen on a phone

    totals = {row["Model"]: row for row in table(at, TOTALS)}
    assert totals["atlas-large"]["Spend"] == Decimal(10)
    assert round(totals["atlas-large"]["Share of spend"], 1) == 52.6


def test_usage_by_hour_today(portal_url: str) -> None:
    at = usage_page(ALICE)
    at.selectbox(key="usage.range").set_value("today")
    at.radio(key="usage.granularity").set_value("hour").run()
    assert not at.exception
    rows = table(at, DETAIL)
    assert [row["Spend"] for row in rows] == [Decimal(6)]
    assert next(iter(rows[0])) == "Hour"


def test_filters_by_model_project_and_api_key(portal_url: str) -> None:
    at = usage_page(ALICE)
    assert at.multiselect(key="usage.filter.model").options == ["(none)", "atlas-large", "atlas-small"]
    assert at.multiselect(key="usage.filter.project").options == ["chatbot", "search"]
    assert at.multiselect(key="usage.filter.api_key").options == ["(none)", "key_1", "key_2"]

    at.multiselect(key="usage.filter.model").set_value(["atlas-large"]).run()
    assert not at.exception
    shown = metrics(at)
    filtered = next(label for label in shown if label.endswith(", filtered"))
    assert shown[filtered] == "$10.00"
    assert [row["Spend"] for row in table(at, DETAIL)] == [Decimal(10)]
    assert at.query_params["model"] == "atlas-large"

    at.multiselect(key="usage.filter.model").set_value(["atlas-large", "atlas-small"])
    at.multiselect(key="usage.filter.project").set_value(["chatbot"]).run()
    assert [row["Spend"] for row in table(at, DETAIL)] == [Decimal(6)]  # atlas-small in chatbot

    at.multiselect(key="usage.filter.api_key").set_value(["key_2"]).run()  # nothing matches all three
    assert any("No usage matches these filters" in info.value for info in at.info)
    at.button(key="usage.clear_filters").click().run()
    assert not at.exception
    assert at.multiselect(key="usage.filter.model").value == []
    assert "model" not in at.query_params
    assert metrics(at)[next(label for label in metrics(at) if label.startswith("Spent "))] == "$19.00"


def test_metric_switch_shows_one_meter_in_its_unit(portal_url: str) -> None:
    at = usage_page(ALICE)
    show = at.selectbox(key="usage.metric")
    assert show.options == ["Spend (credits)", "Input tokens (tokens)", "Requests (requests)"]
    show.set_value("input_tokens").run()
    assert not at.exception
    assert {row["Meter"] for row in table(at, DETAIL)} == {"Input tokens"}
    assert at.query_params["metric"] == "input_tokens"


def test_the_view_in_the_address_is_restored(portal_url: str) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.app.harness import MAIN, TIMEOUT

    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": True, "email": ALICE}
    at.query_params = {"range": "7d", "buckets": "hour", "stack": "project", "project": ["chatbot"]}
    at.run()
    at.switch_page("../pages/usage.py")  # the address names the Usage page (AppTest cannot set a path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="usage.range").value == "7d"
    assert at.radio(key="usage.granularity").value == "hour"
    assert at.selectbox(key="usage.group_by").value == "project"
    assert at.multiselect(key="usage.filter.project").value == ["chatbot"]
    assert at.dataframe[DETAIL].value.columns[0] == "Hour"
    assert at.query_params["account"] == "acc_acme"  # the router names the account shown


def test_a_broken_address_falls_back_to_the_defaults(portal_url: str) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.app.harness import MAIN, TIMEOUT

    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": True, "email": ALICE}
    at.query_params = {"range": "forever", "buckets": "minute", "stack": "'; drop", "from": "2020-99-99"}
    at.run()
    at.switch_page("../pages/usage.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="usage.range").value == "30d"
    assert at.radio(key="usage.granularity").value == "day"


def test_usage_csv_has_exact_values(portal_url: str) -> None:
    at = usage_page(ALICE)
    button = at.get("download_button")[0]
    assert "CSV" in button.label
    assert len(table(at, DETAIL)) == 3


def test_an_account_that_never_had_usage_is_told_plainly(portal_url: str) -> None:
    at = usage_page(ALICE)
    at.selectbox(key="nav.account_pick").set_value("acc_globex").run()
    assert not at.exception
    text = page_text(at)
    assert "Globex Labs" in text
    assert any("No usage yet for Globex Labs" in info.value for info in at.info)
    assert "POST /api/v1/events" not in text  # operator instructions stay in the README
    assert "America/New_York" in text
    assert at.query_params["account"] == "acc_globex"


def test_a_dormant_account_sees_its_last_usage_and_one_click_shows_it(portal_url: str) -> None:
    engine = make_engine(portal_url)
    long_ago = system_clock() - timedelta(days=60)
    with unit_of_work(engine, write=True) as session:
        ingest_events(
            session,
            [event("g1", "acc_globex", "requests", 40, long_ago, project="pilot")],
            at=long_ago,
            source="seed",
        )
    engine.dispose()
    at = usage_page(ALICE)
    at.selectbox(key="nav.account_pick").set_value("acc_globex").run()
    note = next(info.value for info in at.info if "No usage in" in info.value)
    # Days between local dates (America/New_York): 59 or 60 by the hour of the run and DST.
    zone = ZoneInfo("America/New_York")
    days = (system_clock().astimezone(zone).date() - long_ago.astimezone(zone).date()).days
    assert "The last usage was on" in note and f"{days} days ago" in note
    show = at.button(key="usage.show_last")
    assert show.label.startswith("Show ")
    show.click().run()
    assert not at.exception
    assert at.selectbox(key="usage.range").value == "custom"
    assert [row["Quantity"] for row in table(at, DETAIL)] == [40]
    assert at.query_params["range"] == "custom" and "from" in at.query_params


def test_each_account_sees_only_its_own_usage(portal_url: str) -> None:
    at = usage_page(BOB)
    shown = metrics(at)
    assert "$27.00" in shown.values()
    text = page_text(at)
    assert "Acme" not in text and "atlas-large" not in text


def test_custom_range_needs_both_dates(portal_url: str) -> None:
    at = usage_page(ALICE)
    at.selectbox(key="usage.range").set_value("custom").run()
    assert not at.exception
    today = system_clock().date()
    at.date_input(key="usage.custom").set_value((today - timedelta(days=1), today)).run()
    assert not at.exception
    assert any(label.startswith("Spent ") for label in metrics(at))
    assert at.query_params["to"] == today.isoformat()
    # Half picked (a start, no end yet): the last complete range stays on screen meanwhile.
    at.date_input(key="usage.custom").set_value((today - timedelta(days=3),)).run()
    assert not at.exception
    assert any("Pick an end date too" in caption.value for caption in at.caption)
    assert any(label.startswith("Spent ") for label in metrics(at))
    assert at.query_params["from"] == (today - timedelta(days=1)).isoformat()


def test_late_events_are_noted_as_past_numbers_that_changed(portal_url: str) -> None:
    # The seed ingests Acme's events of yesterday and two days ago just now: they arrived late.
    at = usage_page(ALICE)
    notes = [info.value for info in at.info if "Past numbers changed" in info.value]
    assert len(notes) == 1
    assert "late event" in notes[0]
    assert "priced at the rate in force then" in notes[0]
