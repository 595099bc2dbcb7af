"""Pure validation of raw events: each rejection code, with the field it names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.metering import MeterInfo, Rejection, ValidEvent, Window, content_hash, validate_event

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
METERS = {"input_tokens": MeterInfo(1, "input_tokens", frozenset({"model", "project", "api_key"}))}
ACCOUNTS = {"acc_a"}
WINDOW = Window.around(AT, timedelta(days=35))


def raw(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": "e1",
        "account_id": "acc_a",
        "meter": "input_tokens",
        "quantity": 1200,
        "timestamp": "2026-11-20T11:00:00Z",
    }
    for key, value in overrides.items():
        if value is ...:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def check(event: object) -> ValidEvent | Rejection:
    return validate_event(7, event, meters=METERS, account_ids=ACCOUNTS, window=WINDOW)


def test_valid_event_is_normalised_to_utc() -> None:
    result = check(raw(timestamp="2026-11-20T13:30:00+02:00", dimensions={"model": "atlas"}))
    assert isinstance(result, ValidEvent)
    assert result.occurred_at == datetime(2026, 11, 20, 11, 30, tzinfo=UTC)
    assert result.meter_id == 1 and result.quantity == 1200 and result.index == 7
    assert len(result.content_hash) == 32


def test_integral_float_quantity_is_accepted_as_integer() -> None:
    result = check(raw(quantity=5.0))
    assert isinstance(result, ValidEvent)
    assert result.quantity == 5 and isinstance(result.quantity, int)


def test_same_content_in_other_offset_hashes_the_same() -> None:
    a = check(raw(timestamp="2026-11-20T11:00:00Z"))
    b = check(raw(timestamp="2026-11-20T12:00:00+01:00", quantity=1200.0))
    assert isinstance(a, ValidEvent) and isinstance(b, ValidEvent)
    assert a.content_hash == b.content_hash
    assert a.content_hash != content_hash("acc_a", "input_tokens", 1201, a.occurred_at, {})


def test_unknown_dimension_is_kept_not_rejected() -> None:
    result = check(raw(dimensions={"model": "atlas", "region": "eu"}))
    assert isinstance(result, ValidEvent)
    assert result.dimensions == {"model": "atlas", "region": "eu"}


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"event_id": ...}, "event_id", "required"),
        ({"event_id": ""}, "event_id", "required"),
        ({"event_id": 12}, "event_id", "not_a_string"),
        ({"event_id": "x" * 129}, "event_id", "too_long"),
        ({"event_id": "a\x00b"}, "event_id", "invalid_character"),
        ({"account_id": ...}, "account_id", "required"),
        ({"account_id": "acc_nobody"}, "account_id", "unknown_account"),
        ({"meter": ...}, "meter", "required"),
        ({"meter": "gpu_seconds"}, "meter", "unknown_meter"),
        ({"quantity": ...}, "quantity", "required"),
        ({"quantity": -1}, "quantity", "must_be_non_negative"),
        ({"quantity": 1.5}, "quantity", "not_an_integer"),
        ({"quantity": "12"}, "quantity", "not_a_number"),
        ({"quantity": True}, "quantity", "not_a_number"),
        ({"quantity": [1]}, "quantity", "not_a_number"),
        ({"quantity": 2**64}, "quantity", "too_large"),
        ({"timestamp": ...}, "timestamp", "required"),
        ({"timestamp": 1763636400}, "timestamp", "not_a_string"),
        ({"timestamp": "yesterday"}, "timestamp", "not_a_timestamp"),
        ({"timestamp": "2026-13-40T00:00:00Z"}, "timestamp", "not_a_timestamp"),
        ({"timestamp": "2026-11-20T11:00:00"}, "timestamp", "missing_offset"),
        ({"timestamp": "2026-11-21T12:00:01Z"}, "timestamp", "in_future"),
        ({"timestamp": "2026-10-16T11:59:59Z"}, "timestamp", "too_late"),
        ({"dimensions": ["model"]}, "dimensions", "not_an_object"),
        ({"dimensions": {"model": 3}}, "dimensions.model", "not_a_string"),
        ({"dimensions": {"model": "m" * 129}}, "dimensions.model", "too_long"),
        ({"dimensions": {"model": "\x00"}}, "dimensions.model", "invalid_character"),
        ({"dimensions": {f"k{i}": "v" for i in range(33)}}, "dimensions", "too_many"),
    ],
)
def test_invalid_event_is_rejected_naming_field_and_code(overrides: dict, field: str, code: str) -> None:
    result = check(raw(**overrides))
    assert isinstance(result, Rejection)
    assert (result.index, result.field, result.code) == (7, field, code)
    assert result.message


def test_event_that_is_not_an_object_is_rejected() -> None:
    result = check(["e1"])
    assert isinstance(result, Rejection)
    assert (result.field, result.code, result.event_id) == ("event", "not_an_object", None)


def test_boundaries_of_the_time_window_are_accepted() -> None:
    assert isinstance(check(raw(timestamp="2026-11-21T12:00:00Z")), ValidEvent)
    assert isinstance(check(raw(timestamp="2026-10-16T12:00:00Z")), ValidEvent)


def test_rejection_keeps_the_event_id_for_the_client() -> None:
    result = check(raw(event_id="evt-9", quantity=-3))
    assert isinstance(result, Rejection)
    assert result.to_dict() == {
        "index": 7,
        "event_id": "evt-9",
        "field": "quantity",
        "code": "must_be_non_negative",
        "message": "quantity cannot be negative",
    }


def test_unhashable_dimension_values_are_rejected_not_a_crash() -> None:
    # Found by the fuzz test: the per-batch cache of valid combinations hashed the values.
    from datetime import UTC, datetime, timedelta

    from core.metering.validation import MeterInfo, Window, validate_event

    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    raw = {
        "event_id": "e1",
        "account_id": "acc_a",
        "meter": "m",
        "quantity": 1,
        "timestamp": "2026-11-20T11:00:00Z",
        "dimensions": {"": [], "x": {"y": 1}},
    }
    outcome = validate_event(
        0,
        raw,
        meters={"m": MeterInfo(1, "m", frozenset())},
        account_ids={"acc_a"},
        window=Window.around(at, timedelta(days=35)),
        seen_dimensions=set(),
    )
    assert (outcome.field, outcome.code) == ("dimensions.", "not_a_string")  # type: ignore[union-attr]


def test_batch_validation_gives_the_outcome_of_each_event_alone() -> None:
    # validate_events takes a short path for the common event: it must never change an outcome.
    import random
    from decimal import Decimal

    from core.metering.validation import validate_events

    meters = {
        **METERS,
        "requests": MeterInfo(2, "requests", frozenset()),
        "b\x00d": MeterInfo(3, "b\x00d", frozenset()),
    }
    accounts = {"acc_a", "acc_b", "x" * 70}
    choices: dict[str, list[object]] = {
        "event_id": ["e1", "", None, 5, "é", "a\x00", "\ud800", "x" * 128, "x" * 129, ["l"]],
        "account_id": ["acc_a", "acc_b", "acc_c", "", None, 3, "x" * 70, "acc\x00", "\udfff", ["l"]],
        "meter": ["input_tokens", "requests", "b\x00d", "nope", None, 1, ["l"]],
        "quantity": [
            0,
            1,
            10**18,
            10**18 + 1,
            -1,
            True,
            1.0,
            1.5,
            Decimal("2.0"),
            Decimal("2.5"),
            "1",
            2**70,
        ],
        "timestamp": [
            "2026-11-20T11:00:00Z",
            "2026-11-20T11:00:00+00:00",  # as isoformat() writes it: its own canonical text
            "2026-11-20T11:00:00.123456+00:00",
            "2026-11-20T11:00:00.000000+00:00",  # isoformat() drops a zero fraction
            "2026-11-20T11:00:00.120+00:00",
            "2026-11-20t11:00:00+00:00",
            "2026-11-20 11:00:00+00:00",
            "2026-11-20T11:00:00.123456+02:00",
            "2026-11-20T11:00:00",
            "2026-11-21T12:00:01Z",
            "2026-10-16T11:59:59Z",
            "2026-10-16T12:00:00Z",
            "not a timestamp at all",
            "9999-12-31T23:00:00-05:00",
            5,
        ],
        "dimensions": [
            None,
            {},
            {"model": "m"},
            {"model": "m", "zz": "é"},
            {"zz": "é", "model": "m"},
            {"model": 3},
            {"model": ["x"]},
            {"model": "\x00"},
            {"k\udc00": "v"},
            {f"k{i}": "v" for i in range(33)},
            {"model": "x" * 129},
            "model",
        ],
    }
    rng = random.Random(20261120)
    events: list[object] = []
    for _ in range(5_000):
        event = {}
        for name, values in choices.items():
            draw = rng.random()
            if draw < 0.03:
                continue  # the field is missing
            event[name] = values[0] if draw < 0.7 else rng.choice(values)
        events.append(event if rng.random() > 0.01 else rng.choice([["e1"], "e1", None, 5]))

    valid, rejected = validate_events(events, meters=meters, account_ids=accounts, window=WINDOW)

    seen: set[tuple[object, ...]] = set()
    alone = [
        validate_event(i, e, meters=meters, account_ids=accounts, window=WINDOW, seen_dimensions=seen)
        for i, e in enumerate(events)
    ]
    together = sorted([*valid, *rejected], key=lambda outcome: outcome.index)
    assert together == alone
    assert [type(outcome) for outcome in together] == [type(outcome) for outcome in alone]
    assert len(valid) > 1_000 and len(rejected) > 1_000  # both paths ran, on both outcomes
