"""``meterline finance rollforward`` on both databases: the text table, the JSON, a bad month."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import Engine

from core.cli import main
from tests.core.finance.history import CREDIT, History

JSON_KEYS = {
    "opening_deferred",
    "purchased",
    "recognized",
    "breakage",
    "refunded",
    "closing_deferred",
    "promotional_granted",
    "promotional_consumed",
    "promotional_expired",
}


@pytest.fixture
def finance_db(db_url: str, engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch) -> History:
    """One account that bought $100 of credits, got 10 promotional ones and used 25.5."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    history = History(engine, "acc_fin", now)
    history.grant(10 * CREDIT, "promotional")
    history.buy(10_000)
    history.use(25 * CREDIT + CREDIT // 2)
    return history


def test_json_has_every_figure_as_an_exact_decimal_string(
    finance_db: History, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["finance", "rollforward", "--month", "2026-11", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"month", "accounts", "totals"}
    assert data["month"] == "2026-11"
    (account,) = data["accounts"]
    assert set(account) == JSON_KEYS | {"account_id"}
    assert account == {
        "account_id": "acc_fin",
        "opening_deferred": "0.00",
        "purchased": "100.00",
        "recognized": "15.50",
        "breakage": "0.00",
        "refunded": "0.00",
        "closing_deferred": "84.50",
        "promotional_granted": "10.00",
        "promotional_consumed": "10.00",
        "promotional_expired": "0.00",
    }
    assert data["totals"] == {key: account[key] for key in JSON_KEYS}


def test_text_names_the_month_the_zone_and_the_checked_identity(
    finance_db: History, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["finance", "rollforward", "--month", "2026-11"]) == 0
    out = capsys.readouterr().out
    assert "Credit roll-forward, 2026-11 (UTC)" in out
    assert "dollars at cost basis" in out
    row = next(text for text in out.splitlines() if text.startswith("acc_fin"))
    assert row.split() == [
        "acc_fin",
        "0.00",
        "100.00",
        "15.50",
        "0.00",
        "0.00",
        "84.50",
        "10.00",
        "10.00",
        "0.00",
        "ok",
    ]
    assert "holds for every account" in out


def test_next_month_opens_where_this_one_closed(
    finance_db: History, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["finance", "rollforward", "--month", "2026-12", "--json"]) == 0
    (account,) = json.loads(capsys.readouterr().out)["accounts"]
    assert (account["opening_deferred"], account["closing_deferred"]) == ("84.50", "84.50")


def test_a_month_with_nothing_says_so(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["finance", "rollforward", "--month", "2026-11"]) == 0
    assert "No credits were held or moved in this month." in capsys.readouterr().out
    assert main(["finance", "rollforward", "--month", "2026-11", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["accounts"] == [] and data["totals"]["closing_deferred"] == "0.00"


@pytest.mark.parametrize("month", ["2026-13", "2026/11", "99999-01"])
def test_a_bad_month_exits_2_naming_the_field(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], month: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["finance", "rollforward", "--month", month]) == 2
    err = capsys.readouterr().err
    assert "(month)" in err and "Traceback" not in err
