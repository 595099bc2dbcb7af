"""The Usage page's view round-trips through the query string; junk falls back to defaults."""

from __future__ import annotations

import re
from datetime import date

import pytest

from app.usage_view import MAX_FILE_NAME, UsageView, export_file_name, has_usage_params
from core.usage import DateRange


def test_a_view_round_trips_through_the_query_string() -> None:
    view = UsageView(
        preset="custom",
        custom=(date(2026, 9, 1), date(2026, 9, 30)),
        buckets="hour",
        stack="model",
        metric="output_tokens",
        filters={"model": ("atlas-large", "atlas-mini"), "api_key": ("key_prod_7f3a",)},
    )
    params = view.to_params()
    assert params == {
        "range": "custom",
        "from": "2026-09-01",
        "to": "2026-09-30",
        "buckets": "hour",
        "stack": "model",
        "metric": "output_tokens",
        "model": ["atlas-large", "atlas-mini"],
        "api_key": ["key_prod_7f3a"],
    }
    as_lists = {key: value if isinstance(value, list) else [value] for key, value in params.items()}
    assert UsageView.from_params(as_lists) == view


def test_the_default_view_is_a_plain_link() -> None:
    assert UsageView().to_params() == {}
    assert not has_usage_params({"account": ["acc_x"]})


@pytest.mark.parametrize(
    "params",
    [
        {"range": ["forever"]},
        {"range": ["custom"], "from": ["2026-13-01"], "to": ["2026-01-01"]},
        {"range": ["custom"], "from": ["2020-01-01"], "to": ["2026-01-01"]},  # past the 366-day limit
        {"buckets": ["minute"], "stack": ["meter; drop table"], "metric": ["<script>"]},
    ],
)
def test_junk_falls_back_to_the_defaults(params: dict[str, list[str]]) -> None:
    view = UsageView.from_params(params)
    assert view.preset == "30d" and view.custom is None
    assert (view.buckets, view.stack, view.metric) == ("day", "meter", "spend")


def test_custom_dates_in_the_wrong_order_are_swapped_and_filters_deduplicated() -> None:
    view = UsageView.from_params(
        {"range": ["custom"], "from": ["2026-09-30"], "to": ["2026-09-01"], "model": ["a", "a", "", "b"]}
    )
    assert view.custom == (date(2026, 9, 1), date(2026, 9, 30))
    assert view.filters == {"model": ("a", "b")}


def test_a_filter_value_no_stored_value_can_hold_is_dropped() -> None:
    """A NUL or a lone surrogate would reach the database's query (PostgreSQL refuses both)."""
    view = UsageView.from_params({"project": ["ok", "bad\x00", "bad\ud800"], "model": ["\x00"]})
    assert view.filters == {"project": ("ok",)}


def test_a_download_is_named_after_the_account_range_and_filters() -> None:
    dates = DateRange(date(2026, 11, 8), date(2026, 12, 7), "UTC")
    plain = export_file_name("Acme Robotics", dates, UsageView())
    assert plain == "usage_acme-robotics_2026-11-08_2026-12-07_by-day.csv"
    view = UsageView(
        buckets="hour",
        metric="input_tokens",
        filters={"project": ("chat bot",), "model": ("atlas-large", "atlas-mini")},
    )
    assert export_file_name("Acme Robotics", dates, view) == (
        "usage_acme-robotics_2026-11-08_2026-12-07_by-hour_meter-input_tokens"
        "_model-atlas-large+atlas-mini_project-chat-bot.csv"
    )


@pytest.mark.parametrize(
    "name, value",
    [
        ("../../etc/passwd", "a/b\\c"),
        ("Ünïcode Ltd", "../..\x00"),
        ('Quote "Co" <x>', "x" * 128),
    ],
)
def test_a_download_name_is_safe_and_bounded(name: str, value: str) -> None:
    dates = DateRange(date(2026, 11, 8), date(2026, 12, 7), "UTC")
    views = [UsageView(filters={"project": (value, f"{value}{i}")}) for i in range(2)]
    names = [export_file_name(name, dates, view) for view in views]
    for file_name in names:
        assert re.fullmatch(r"[a-z0-9_.+-]+\.csv", file_name), file_name
        assert len(file_name) <= MAX_FILE_NAME and ".." not in file_name
    assert names[0] != names[1]  # cut short, still told apart
