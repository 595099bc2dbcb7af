"""Exports keep exact values: integer quantities, nine-decimal credit and dollar strings."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pandas as pd

from core.ledger import LedgerLine
from core.usage import balance_history_frame, ledger_csv, usage_csv
from core.usage.exports import format_quantity, usage_table

BIG = 2**53 + 1


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bucket": pd.Series([datetime(2026, 11, 20), datetime(2026, 11, 21)], dtype="datetime64[us]"),
            "group": ["Input tokens", "Input tokens"],
            "meter": ["Input tokens", "Input tokens"],
            "unit": ["token", "token"],
            "quantity": pd.Series([BIG, 1], dtype="int64"),
            "amount_nanos": pd.Series([BIG, 1], dtype="int64"),
            "events": pd.Series([3, 1], dtype="int64"),
        }
    )


def test_usage_csv_is_exact() -> None:
    rows = list(
        csv.DictReader(
            io.StringIO(usage_csv(frame(), granularity="day", group_by="meter", timezone="UTC").decode())
        )
    )
    assert rows[0]["day_start_UTC"] == "2026-11-20"
    assert rows[0]["quantity"] == str(BIG)
    assert rows[0]["amount_credits"] == "9007199.254740993"
    assert rows[0]["amount_usd"] == "9007199.254740993"
    assert rows[1]["amount_credits"] == "0.000000001"


def test_usage_table_formats_with_units() -> None:
    table = usage_table(frame(), granularity="day", group_label="Meter")
    assert table.iloc[0].to_dict() == {
        "Day": "2026-11-21",
        "Meter": "Input tokens",
        "Quantity": "1 token",
        "Events": "1",
        "Spend": "$0.000000001",
    }
    assert format_quantity(2_000_000, "token") == "2,000,000 tokens"


def line(entry_id: int, amount: int, after: int) -> LedgerLine:
    return LedgerLine(
        entry_id=entry_id,
        effective_at=datetime(2026, 11, entry_id, tzinfo=UTC),
        reason="usage",
        reason_label="Usage",
        reference=f"batch:{entry_id}",
        memo="",
        grant_id=None,
        grant_label="Negative balance",
        amount_nanos=amount,
        balance_after_nanos=after,
    )


def test_ledger_csv_oldest_first_and_exact() -> None:
    rows = list(csv.DictReader(io.StringIO(ledger_csv([line(2, -1, BIG), line(1, BIG, BIG + 1)]).decode())))
    assert [r["entry_id"] for r in rows] == ["1", "2"]
    assert rows[1]["amount_credits"] == "-0.000000001"
    assert rows[0]["balance_after_credits"] == "9007199.254740994"


def test_balance_history_is_int64() -> None:
    history = balance_history_frame([line(2, -1, BIG), line(1, BIG, BIG + 1)])
    assert history["balance_nanos"].tolist() == [BIG + 1, BIG]
    assert str(history["balance_nanos"].dtype) == "int64"
