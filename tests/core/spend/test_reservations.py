"""Authorize's reservations, pure: the release rule, the scopes a hold counts against, the settings,
and ``decide`` taking the holds off the headroom."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import ValidationError
from core.spend.authorize import AccountSnapshot, CapSnapshot, decide
from core.spend.reservations import BUCKET_S, Reservations, default_estimate_nanos, ingestion_lag_s
from tests.core.spend.spend_setup import CREDIT

RESETS = datetime(2027, 1, 1, tzinfo=UTC)


def cap(
    scope: str, value: str, limit: int, spent: int = 0, *, cap_id: int = 0, period: str = "month"
) -> CapSnapshot:
    return CapSnapshot(cap_id, scope, value, period, limit, spent, RESETS)


def snapshot(*caps: CapSnapshot, balance: int = 100 * CREDIT) -> AccountSnapshot:
    return AccountSnapshot("acc_a", "active", balance, 0, caps, datetime(2026, 12, 1, tzinfo=UTC), 0.0)


def test_a_snapshot_releases_only_what_was_reserved_a_lag_before_its_read() -> None:
    held = Reservations()
    held.reserve("acc_a", 10.0, "web", None, 3)
    held.reserve("acc_a", 11.0, None, "requests", 4)
    held.reserve("acc_a", 12.003, "web", "requests", 5)
    held.reserve("acc_a", 12.006, "web", "requests", 6)  # same 10 ms bucket: released together
    assert held.release("acc_a", 9.999) == 0
    assert held.release("acc_a", 11.5) == 7
    account = held.held("acc_a")
    assert account is not None
    assert (account.total_nanos, account.by_project, account.by_meter) == (11, {"web": 11}, {"requests": 11})
    assert held.release("acc_a", 12.006) == 0  # a hold may outlive the rule by a bucket, never fall short
    assert held.release("acc_a", 12.0 + 2 * BUCKET_S) == 11
    assert held.held("acc_a") is None  # nothing held: the account's entry goes


def test_a_hold_counts_against_the_account_and_the_scopes_its_request_named() -> None:
    held = Reservations()
    held.reserve("acc_a", 1.0, "web", None, 2 * CREDIT)
    held.reserve("acc_a", 1.0, None, None, CREDIT)
    held.reserve("acc_a", 1.0, None, "requests", 0)  # an explicit zero estimate holds nothing
    caps = (
        cap("account", "", 10 * CREDIT),
        cap("project", "web", 5 * CREDIT),
        cap("project", "api", 5 * CREDIT),
        cap("meter", "requests", 4 * CREDIT),
    )
    now = held.held("acc_a")
    assert decide(snapshot(*caps), project="web", held=now).remaining_nanos == 3 * CREDIT
    assert decide(snapshot(*caps), project="api", held=now).remaining_nanos == 5 * CREDIT
    assert decide(snapshot(*caps), meter="requests", held=now).remaining_nanos == 4 * CREDIT
    assert decide(snapshot(*caps), held=now).remaining_nanos == 7 * CREDIT
    # Credits too: with no cap the balance less the holds is the headroom.
    assert decide(snapshot(balance=3 * CREDIT), held=now).remaining_nanos == 0
    assert decide(snapshot(balance=3 * CREDIT), held=now).reason == "insufficient_credits"


def test_the_settings_have_defaults_and_refuse_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERLINE_AUTHORIZE_DEFAULT_ESTIMATE", raising=False)
    monkeypatch.delenv("METERLINE_AUTHORIZE_INGESTION_LAG_S", raising=False)
    assert (default_estimate_nanos(), ingestion_lag_s()) == (CREDIT // 100, 5.0)
    monkeypatch.setenv("METERLINE_AUTHORIZE_DEFAULT_ESTIMATE", "0.25")
    monkeypatch.setenv("METERLINE_AUTHORIZE_INGESTION_LAG_S", "2.5")
    assert (default_estimate_nanos(), ingestion_lag_s()) == (CREDIT // 4, 2.5)
    for bad in ("0", "-1", "ten", "0.0000000001"):
        monkeypatch.setenv("METERLINE_AUTHORIZE_DEFAULT_ESTIMATE", bad)
        with pytest.raises(ValidationError) as error:
            default_estimate_nanos()
        assert error.value.field == "METERLINE_AUTHORIZE_DEFAULT_ESTIMATE"
    for bad in ("-1", "61", "soon", "nan"):
        monkeypatch.setenv("METERLINE_AUTHORIZE_INGESTION_LAG_S", bad)
        with pytest.raises(ValidationError):
            ingestion_lag_s()
