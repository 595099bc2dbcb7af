"""Charts: a stable colour per value (never red), bars on their dates, sensible hourly blocks."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from app.charts import (
    ALARM_COLOR,
    NONE_COLOR,
    OTHER_COLOR,
    PALETTE,
    SPEND,
    Metric,
    block_hours,
    colors_for,
    slots_for,
    usage_chart,
)
from core.demo.seed import PROFILES, RATE_CARD_FILE
from core.display import format_credits
from core.rating import read_rate_card_file
from core.usage import DateRange

DEMO_METERS = [meter["display_name"] for meter in read_rate_card_file(RATE_CARD_FILE)["meters"]]


def _red(color: str) -> bool:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return r > 180 and g < 110 and b < 110


def test_the_palette_has_no_red_and_red_means_alarm() -> None:
    assert not any(_red(color) for color in PALETTE)
    assert _red(ALARM_COLOR)
    assert len(set(PALETTE)) == len(PALETTE)


def test_a_value_keeps_its_colour_whatever_else_is_in_the_chart() -> None:
    alone = colors_for("model", ["atlas-large"])
    among = colors_for("model", ["atlas-large", "atlas-mini", "orbit-embed", "pixel-diffusion"])
    assert alone["atlas-large"] == among["atlas-large"]
    assert (
        colors_for("meter", ["Output tokens", "Input tokens"])["Output tokens"]
        == colors_for("meter", ["Output tokens", "Images generated"])["Output tokens"]
    )


def test_the_demo_catalog_gets_distinct_colours_in_every_chart() -> None:
    assert len(set(colors_for("meter", DEMO_METERS).values())) == len(DEMO_METERS)
    models = sorted({model for profile in PROFILES for model in profile.models})
    assert len(set(colors_for("model", models).values())) == len(models)
    for profile in PROFILES:  # projects and API keys belong to one account: distinct within it
        for kind, values in (("project", profile.projects), ("api_key", profile.api_keys)):
            colors = colors_for(kind, values)
            assert len(set(colors.values())) == len(values), (profile.account_id, kind)
            # ...and each its own hashed colour, not one bumped by a neighbour
            assert all(colors_for(kind, [value])[value] == colors[value] for value in values)


def test_other_and_none_are_grey() -> None:
    colors = colors_for("model", ["Other (3 more)", "(none)", "atlas-mini"])
    assert colors["Other (3 more)"] == OTHER_COLOR and colors["(none)"] == NONE_COLOR


def test_day_slots_cover_the_range_and_label_their_own_day() -> None:
    slots = slots_for(DateRange(date(2026, 10, 27), date(2026, 11, 25), "America/Los_Angeles"), "day")
    assert slots.keys[0] == "2026-10-27" and slots.keys[-1] == "2026-11-25" and len(slots.keys) == 30
    assert set(slots.ticks) <= set(slots.keys)  # every tick is a bar's own slot: no stray "Nov 26"
    assert slots.ticks == ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]  # Mondays
    assert slots.labels == ["Nov 2", "Nov 9", "Nov 16", "Nov 23"]
    assert slots.title == "Day (America/Los_Angeles)"


def test_hourly_bars_are_hours_for_a_week_and_blocks_for_a_quarter() -> None:
    assert block_hours(1) == 1 and block_hours(7) == 1
    week = slots_for(DateRange(date(2026, 11, 19), date(2026, 11, 25), "UTC"), "hour")
    assert len(week.keys) == 168 and week.title == "Hour (UTC)"
    quarter = slots_for(DateRange(date(2026, 8, 28), date(2026, 11, 25), "UTC"), "hour")
    assert quarter.hours == 12 and len(quarter.keys) == 180 and quarter.title == "12-hour blocks (UTC)"
    assert quarter.key(datetime(2026, 11, 25, 17)) == "2026-11-25T12"
    today = slots_for(DateRange(date(2026, 11, 25), date(2026, 11, 25), "UTC"), "hour")
    assert today.labels[:3] == ["00:00", "03:00", "06:00"]


def _frame(rows: list[tuple[datetime, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bucket": pd.Series([r[0] for r in rows], dtype="datetime64[us]"),
            "group": [r[1] for r in rows],
            "meter": ["Input tokens"] * len(rows),
            "meter_key": ["input_tokens"] * len(rows),
            "unit": ["token"] * len(rows),
            "quantity": pd.Series([r[2] for r in rows], dtype="int64"),
            "amount_nanos": pd.Series([r[2] * 1_000 for r in rows], dtype="int64"),
            "events": pd.Series([1] * len(rows), dtype="int64"),
        }
    )


@pytest.mark.parametrize("metric", [SPEND, Metric("input_tokens", "Input tokens (tokens)", "token")])
def test_usage_chart_spec(metric: Metric) -> None:
    dates = DateRange(date(2026, 11, 25), date(2026, 11, 25), "UTC")
    frame = _frame([(datetime(2026, 11, 25), "atlas-mini", 5), (datetime(2026, 11, 25), "atlas-large", 9)])
    spec = usage_chart(
        frame, dates=dates, granularity="day", group_kind="model", group_label="Model", metric=metric
    ).to_dict()
    encoding = spec["encoding"]
    assert encoding["x"]["scale"]["domain"] == ["2026-11-25"]
    assert spec["mark"]["width"] == {"band": pytest.approx(0.8 / 7)}  # "Today" is not one wide bar
    assert encoding["color"]["scale"]["domain"] == ["atlas-large", "atlas-mini"]  # largest first
    assert encoding["color"]["legend"]["orient"] == "bottom"
    assert encoding["y"]["title"] == metric.label
    values = spec["datasets"][spec["data"]["name"]]
    large = next(row for row in values if row["group"] == "atlas-large")
    assert large["spend"] == format_credits(9_000) == "< 0.01 credits"  # the money rule's text, not the float
    assert large["usage"] == "9 tokens"
    assert large["when"] == "Nov 25, 2026"
    if metric.is_spend:
        assert encoding["y"]["title"] == "Spend (credits)" and "$" not in encoding["y"]["axis"]["format"]


def test_hourly_tooltips_name_the_day_and_the_hour() -> None:
    dates = DateRange(date(2026, 11, 25), date(2026, 11, 25), "UTC")
    frame = _frame([(datetime(2026, 11, 25, 14), "atlas-mini", 2_000_000)])
    spec = usage_chart(
        frame, dates=dates, granularity="hour", group_kind="model", group_label="Model", metric=SPEND
    ).to_dict()
    (row,) = spec["datasets"][spec["data"]["name"]]
    assert row["when"] == "Nov 25, 2026, 14:00–15:00"
    assert row["spend"] == "2.00 credits"
    assert len(spec["encoding"]["x"]["scale"]["domain"]) == 24


def test_hour_bars_say_when_as_every_time_is_written() -> None:
    dates = DateRange(date(2026, 11, 1), date(2026, 11, 30), "UTC")  # 30 days: 3-hour blocks
    frame = _frame([(datetime(2026, 11, 25, 14), "atlas-mini", 5)])
    spec = usage_chart(
        frame, dates=dates, granularity="hour", group_kind="model", group_label="Model", metric=SPEND
    ).to_dict()
    (row,) = spec["datasets"][spec["data"]["name"]]
    assert row["when"] == "Nov 25, 2026, 12:00–15:00"
