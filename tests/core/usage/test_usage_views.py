"""Usage views read the rollups exactly: int64 frames, account timezone, spend this period and today."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine

from core.accounts import create_account
from core.db import unit_of_work
from core.db.models import Meter, UsageRollupDaily, UsageRollupHourly
from core.errors import NotFound, ValidationError
from core.usage import spend_summary, usage_frame, usage_totals
from core.usage.views import (
    EXPORT_COLUMNS,
    dimension_values,
    fold_into_other,
    last_usage_day,
    meters_used,
    rank_groups,
    usage_export_frame,
    values_used,
)

BIG = 2**53 + 1  # not representable as a float64: any float on the way would lose the 1


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_ny", name="NY Co", at=now, timezone="America/New_York")
        create_account(session, account_id="acc_other", name="Other", at=now)
        tokens = Meter(
            name="input_tokens", display_name="Input tokens", unit="token", dimensions=[], created_at=now
        )
        calls = Meter(name="requests", display_name="", unit="request", dimensions=[], created_at=now)
        session.add_all([tokens, calls])
        session.flush()

        def daily(account: str, day: date, meter: Meter, model: str, quantity: int, amount: int, events: int):
            return UsageRollupDaily(
                account_id=account,
                usage_date=day,
                meter_id=meter.id,
                model=model,
                project="p1",
                api_key="",
                quantity=quantity,
                amount_nanos=amount,
                event_count=events,
            )

        session.add_all(
            [
                daily("acc_ny", date(2026, 11, 1), tokens, "small", 1_000, 3_000, 2),
                daily("acc_ny", date(2026, 11, 1), tokens, "large", 500, BIG, 1),
                daily("acc_ny", date(2026, 11, 19), calls, "", 7, 70_000_000, 7),
                daily("acc_ny", date(2026, 11, 20), tokens, "small", 2_000, 6_000, 3),
                daily("acc_ny", date(2026, 10, 31), tokens, "small", 9, 9, 1),  # last period
                daily("acc_other", date(2026, 11, 20), tokens, "small", 10**12, 10**15, 1),
            ]
        )
        # 03:00 UTC on Nov 20 is 22:00 on Nov 19 in New York.
        session.add_all(
            [
                UsageRollupHourly(
                    account_id="acc_ny",
                    hour_start=datetime(2026, 11, 20, 3, tzinfo=UTC),
                    meter_id=calls.id,
                    model="",
                    project="p1",
                    api_key="",
                    quantity=7,
                    amount_nanos=70_000_000,
                    event_count=7,
                ),
                UsageRollupHourly(
                    account_id="acc_ny",
                    hour_start=datetime(2026, 11, 20, 16, tzinfo=UTC),
                    meter_id=tokens.id,
                    model="small",
                    project="p1",
                    api_key="",
                    quantity=2_000,
                    amount_nanos=6_000,
                    event_count=3,
                ),
            ]
        )
    return engine


def test_by_day_by_meter_is_exact_int64(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        frame = usage_frame(session, "acc_ny", start=date(2026, 11, 1), end=date(2026, 11, 20))
    assert list(frame.columns) == [
        "bucket",
        "group",
        "meter",
        "meter_key",
        "unit",
        "quantity",
        "amount_nanos",
        "events",
    ]
    assert frame["meter_key"].tolist() == ["input_tokens", "requests", "input_tokens"]
    for column in ("quantity", "amount_nanos", "events"):
        assert str(frame[column].dtype) == "int64"
    first = frame.iloc[0]
    assert (first["group"], first["unit"], int(first["quantity"])) == ("Input tokens", "token", 1_500)
    assert int(first["amount_nanos"]) == BIG + 3_000  # summed in SQL, exactly
    assert frame["group"].tolist() == ["Input tokens", "requests", "Input tokens"]  # display name, else name
    totals = usage_totals(frame)
    assert totals.amount_nanos == BIG + 3_000 + 70_000_000 + 6_000
    assert totals.events == 13
    assert {(m.meter, m.unit, m.quantity) for m in totals.meters} == {
        ("Input tokens", "token", 3_500),
        ("requests", "request", 7),
    }


def test_group_by_model_keeps_meters_apart(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        frame = usage_frame(
            session, "acc_ny", start=date(2026, 11, 1), end=date(2026, 11, 1), group_by="model"
        )
    assert sorted(zip(frame["group"], frame["quantity"], strict=True)) == [("large", 500), ("small", 1_000)]
    with unit_of_work(seeded) as session:
        frame = usage_frame(
            session, "acc_ny", start=date(2026, 11, 19), end=date(2026, 11, 19), group_by="model"
        )
    assert frame["group"].tolist() == ["(none)"]


def test_by_hour_is_in_the_account_timezone(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        frame = usage_frame(
            session, "acc_ny", start=date(2026, 11, 19), end=date(2026, 11, 19), granularity="hour"
        )
    assert frame["bucket"].tolist() == [datetime(2026, 11, 19, 22)]
    assert frame["amount_nanos"].tolist() == [70_000_000]
    assert str(frame["amount_nanos"].dtype) == "int64"


def test_other_accounts_never_leak_in(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        frame = usage_frame(session, "acc_ny", start=date(2026, 11, 20), end=date(2026, 11, 20))
    assert frame["quantity"].tolist() == [2_000]


def test_empty_range_gives_an_empty_typed_frame(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        frame = usage_frame(
            session, "acc_ny", start=date(2026, 6, 1), end=date(2026, 6, 30), group_by="api_key"
        )
    assert frame.empty
    assert str(frame["amount_nanos"].dtype) == "int64"
    assert usage_totals(frame).amount_nanos == 0


def test_bad_arguments_are_validation_errors(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        with pytest.raises(ValidationError):
            usage_frame(session, "acc_ny", start=date(2026, 11, 2), end=date(2026, 11, 1))
        with pytest.raises(ValidationError):
            usage_frame(session, "acc_ny", start=date(2025, 1, 1), end=date(2026, 11, 1))
        with pytest.raises(ValidationError):
            usage_frame(session, "acc_ny", start=date(2026, 11, 1), end=date(2026, 11, 1), group_by="color")  # type: ignore[arg-type]
        with pytest.raises(NotFound):
            usage_frame(session, "acc_nope", start=date(2026, 11, 1), end=date(2026, 11, 1))


def test_spend_summary_this_period_and_today(seeded: Engine) -> None:
    # 02:00 UTC on Nov 21 is still Nov 20 in New York.
    at = datetime(2026, 11, 21, 2, tzinfo=UTC)
    with unit_of_work(seeded) as session:
        summary = spend_summary(session, "acc_ny", at=at)
    assert (summary.period.start, summary.period.end) == (date(2026, 11, 1), date(2026, 11, 20))
    assert summary.period.describe() == "Nov 1–20, 2026 (America/New_York)"
    assert summary.period_amount_nanos == BIG + 3_000 + 70_000_000 + 6_000  # October's 9 left out
    assert summary.period_events == 13
    assert summary.today == date(2026, 11, 20)
    assert (summary.today_amount_nanos, summary.today_events) == (6_000, 3)


def test_spend_summary_of_a_quiet_account_is_zero(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        summary = spend_summary(session, "acc_ny", at=datetime(2026, 6, 15, tzinfo=UTC))
    assert (summary.period_amount_nanos, summary.today_amount_nanos) == (0, 0)


def test_filters_keep_only_matching_usage(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        large = usage_frame(
            session, "acc_ny", start=date(2026, 11, 1), end=date(2026, 11, 20), filters={"model": ["large"]}
        )
        none = usage_frame(
            session, "acc_ny", start=date(2026, 11, 1), end=date(2026, 11, 20), filters={"model": ["(none)"]}
        )
        both = usage_frame(
            session,
            "acc_ny",
            start=date(2026, 11, 1),
            end=date(2026, 11, 20),
            group_by="model",
            filters={"model": ["small", "large"], "project": ["p1"], "api_key": []},
        )
        hourly = usage_frame(
            session,
            "acc_ny",
            start=date(2026, 11, 19),
            end=date(2026, 11, 20),
            granularity="hour",
            filters={"model": ["small"]},
        )
    assert large["amount_nanos"].tolist() == [BIG]
    assert none["group"].tolist() == ["requests"]  # an empty model reads, and filters, as "(none)"
    assert sorted(set(both["group"])) == ["large", "small"]
    assert hourly["quantity"].tolist() == [2_000]


def test_bad_filters_are_validation_errors(seeded: Engine) -> None:
    with unit_of_work(seeded) as session, pytest.raises(ValidationError) as error:
        usage_frame(
            session, "acc_ny", start=date(2026, 11, 1), end=date(2026, 11, 2), filters={"meter": ["x"]}
        )
    assert error.value.field == "meter"
    with unit_of_work(seeded) as session, pytest.raises(ValidationError):
        usage_frame(
            session,
            "acc_ny",
            start=date(2026, 11, 1),
            end=date(2026, 11, 2),
            filters={"model": list(map(str, range(999)))},
        )


def test_what_the_filters_and_the_metric_switch_offer(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        values = dimension_values(session, "acc_ny", start=date(2026, 11, 1), end=date(2026, 11, 20))
        meters = meters_used(session, "acc_ny", start=date(2026, 11, 1), end=date(2026, 11, 20))
        october = meters_used(session, "acc_ny", start=date(2026, 10, 1), end=date(2026, 10, 31))
    assert values == {"model": ["(none)", "large", "small"], "project": ["p1"], "api_key": ["(none)"]}
    assert [(m.name, m.display, m.unit) for m in meters] == [
        ("input_tokens", "Input tokens", "token"),
        ("requests", "requests", "request"),
    ]
    assert [m.name for m in october] == ["input_tokens"]


def test_last_usage_day(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        assert last_usage_day(session, "acc_ny") == date(2026, 11, 20)
        assert last_usage_day(session, "acc_nobody") is None


def test_top_groups_and_the_rest_as_other_stay_exact(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        frame = usage_frame(
            session, "acc_ny", start=date(2026, 11, 1), end=date(2026, 11, 20), group_by="model"
        )
    assert rank_groups(frame) == ["large", "(none)", "small"]
    assert rank_groups(frame, by="quantity") == ["small", "large", "(none)"]
    folded = fold_into_other(frame, ["large"], label="Other (2 more)")
    assert sorted(set(folded["group"])) == ["Other (2 more)", "large"]
    assert int(folded["amount_nanos"].sum()) == int(frame["amount_nanos"].sum())  # nothing lost
    assert str(folded["amount_nanos"].dtype) == "int64"
    # Meters stay apart inside "Other": tokens and requests are never added together.
    other = folded[folded["group"] == "Other (2 more)"]
    assert set(other["meter_key"]) == {"input_tokens", "requests"}
    assert fold_into_other(frame, ["large", "small", "(none)"], label="Other") is frame


def test_the_export_frame_has_every_dimension_and_applies_the_filters(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        frame = usage_export_frame(
            session, "acc_ny", start=date(2026, 11, 1), end=date(2026, 11, 20), filters={"model": ["small"]}
        )
        hourly = usage_export_frame(
            session, "acc_ny", start=date(2026, 11, 19), end=date(2026, 11, 19), granularity="hour"
        )
        empty = usage_export_frame(session, "acc_other", start=date(2026, 1, 1), end=date(2026, 1, 2))
    assert list(frame.columns) == list(EXPORT_COLUMNS)
    assert [(r.meter_key, r.model, r.project, r.api_key) for r in frame.itertuples()] == [
        ("input_tokens", "small", "p1", ""),
        ("input_tokens", "small", "p1", ""),
    ]
    assert frame["amount_nanos"].tolist() == [3_000, 6_000] and str(frame["amount_nanos"].dtype) == "int64"
    assert hourly["bucket"].tolist() == [datetime(2026, 11, 19, 22)]  # New York's hour
    assert hourly["model"].tolist() == [""] and hourly["quantity"].tolist() == [7]
    assert empty.empty and list(empty.columns) == list(EXPORT_COLUMNS)


def test_values_used_are_what_a_cap_or_rule_can_watch(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        used = values_used(session, "acc_ny")
        none = values_used(session, "acc_nobody")
    assert used == {
        "meter": ["input_tokens", "requests"],
        "model": ["large", "small"],  # the empty model of requests is no name to watch
        "project": ["p1"],
        "api_key": [],
    }
    assert none == {"meter": [], "model": [], "project": [], "api_key": []}
