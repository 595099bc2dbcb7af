"""Exports keep exact values: integer quantities, nine-decimal credit and dollar strings."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
import pytest

from core.ledger import LedgerLine
from core.usage import balance_history_frame, ledger_csv, usage_csv
from core.usage.exports import (
    csv_bytes,
    format_quantity,
    ledger_table,
    money_decimals,
    neutralize_formula,
    usage_table,
)

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


def export_frame(**columns: list[object]) -> pd.DataFrame:
    """Rows as ``core.usage.views.usage_export_frame`` makes them (two by default)."""
    rows = len(next(iter(columns.values()))) if columns else 2
    base: dict[str, object] = {
        "bucket": pd.Series([datetime(2026, 11, 20 + i % 2) for i in range(rows)], dtype="datetime64[us]"),
        "meter_key": ["input_tokens"] * rows,
        "meter": ["Input tokens"] * rows,
        "unit": ["token"] * rows,
        "model": ["atlas-large", ""][:rows] + [""] * (rows - 2),
        "project": ["chatbot"] * rows,
        "api_key": ["key_1"] * rows,
        "quantity": pd.Series([BIG, 1][:rows] + [1] * (rows - 2), dtype="int64"),
        "amount_nanos": pd.Series([BIG, 1][:rows] + [1] * (rows - 2), dtype="int64"),
        "events": pd.Series([3, 1][:rows] + [1] * (rows - 2), dtype="int64"),
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_usage_csv_is_exact_with_every_dimension() -> None:
    rows = list(
        csv.DictReader(io.StringIO(usage_csv(export_frame(), granularity="day", timezone="UTC").decode()))
    )
    assert list(rows[0]) == [
        "day_start_UTC",
        "meter",
        "model",
        "project",
        "api_key",
        "unit",
        "quantity",
        "events",
        "amount_credits",
        "amount_usd",
    ]
    assert rows[0]["day_start_UTC"] == "2026-11-20"
    assert (rows[0]["meter"], rows[0]["model"], rows[0]["project"], rows[0]["api_key"]) == (
        "input_tokens",
        "atlas-large",
        "chatbot",
        "key_1",
    )
    assert rows[1]["model"] == ""  # a meter used without a model: an empty cell, not "(none)"
    assert rows[0]["quantity"] == str(BIG)
    assert rows[0]["amount_credits"] == "9007199.254740993"
    assert rows[0]["amount_usd"] == "9007199.254740993"
    assert rows[1]["amount_credits"] == "0.000000001"


def test_usage_table_keeps_numbers_as_numbers() -> None:
    table = usage_table(frame(), granularity="day", group_label="Meter")
    assert table.iloc[0].to_dict() == {
        "Day": "2026-11-21",
        "Meter": "Input tokens",
        "Spend": Decimal("0.000000001"),
        "Quantity": 1,
        "Unit": "token",
        "Events": 1,
    }
    assert table.iloc[1]["Spend"] == Decimal("9007199.254740993")  # exact: no float on the way
    assert list(table.columns) == ["Day", "Meter", "Spend", "Quantity", "Unit", "Events"]  # money third
    assert str(table["Quantity"].dtype) == "int64"
    assert format_quantity(2_000_000, "token") == "2,000,000 tokens"


@pytest.mark.parametrize(
    "amounts",
    [
        [9_440_000_000, 84_320_000_000],
        [84_320_000_000, 4_600_000],  # 0.0046 beside 84.32: still two, the CSV keeps the digits
        [10_000_000],
        [1],
        [0, 0],
        [-4_600_000, 1_000_000_000],
    ],
)
def test_one_precision_for_every_column_of_money(amounts: list[int]) -> None:
    # The same amount reads the same whatever the rows around it (docs/money.md).
    assert money_decimals(amounts) == 2


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


def test_ledger_table_follows_the_money_rule_and_the_csv_keeps_every_digit() -> None:
    lines = [line(2, -11_707_608_300, 460), line(1, 11_707_609_000 - 240, 11_707_609_000 - 240)]
    table = ledger_table(lines, timezone="America/Los_Angeles")
    assert list(table.columns)[-2:] == ["Change (credits)", "Balance after (credits)"]
    first = table.iloc[0].to_dict()
    assert first["When"] == "Nov 1, 2026, 16:00 PST"  # the account's zone, named
    assert (first["Change (credits)"], first["Balance after (credits)"]) == ("-11.71", "< 0.01")
    assert table.iloc[1]["Change (credits)"] == "+11.71"
    rows = list(csv.DictReader(io.StringIO(ledger_csv(lines).decode())))
    assert [r["amount_credits"] for r in rows] == ["11.707608760", "-11.707608300"]
    assert rows[1]["balance_after_credits"] == "0.000000460"


def test_balance_history_is_int64() -> None:
    history = balance_history_frame([line(2, -1, BIG), line(1, BIG, BIG + 1)])
    assert history["balance_nanos"].tolist() == [BIG + 1, BIG]
    assert str(history["balance_nanos"].dtype) == "int64"


# What a spreadsheet would run as a formula (OWASP CSV injection), as a customer could send it.
FORMULAS = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx", "\rx"]


@pytest.mark.parametrize("text", FORMULAS)
def test_neutralize_formula_prefixes_a_quote(text: str) -> None:
    assert neutralize_formula(text) == "'" + text


@pytest.mark.parametrize("value", ["atlas-large", "", "a=b", "'=quoted already", "2026-11-20", 7, -3])
def test_neutralize_formula_leaves_other_cells_alone(value: object) -> None:
    assert neutralize_formula(value) == value


def test_usage_csv_neutralises_dimension_values_not_amounts() -> None:
    count = len(FORMULAS)
    hostile = export_frame(
        bucket=pd.Series([datetime(2026, 11, 20)] * count, dtype="datetime64[us]"),
        model=list(FORMULAS),
        meter_key=["-meter"] * count,
        unit=["@unit"] * count,
        quantity=pd.Series([-5] * count, dtype="int64"),
        amount_nanos=pd.Series([-3_200_000_000] * count, dtype="int64"),
        events=pd.Series([1] * count, dtype="int64"),
    )
    data = usage_csv(hostile, granularity="day", timezone="UTC").decode()
    rows = list(csv.DictReader(io.StringIO(data)))
    assert sorted(row["model"] for row in rows) == sorted("'" + text for text in FORMULAS)
    assert {(row["meter"], row["unit"]) for row in rows} == {("'-meter", "'@unit")}
    # Numbers stay numbers: a negative amount or quantity is not turned into text.
    assert {(row["quantity"], row["amount_credits"], row["amount_usd"]) for row in rows} == {
        ("-5", "-3.200000000", "-3.200000000")
    }


def test_ledger_csv_neutralises_references_memos_and_labels_not_amounts() -> None:
    hostile = [
        LedgerLine(
            entry_id=index + 1,
            effective_at=datetime(2026, 11, 20, tzinfo=UTC),
            reason="adjustment",
            reason_label="-Adjustment",
            reference=text,
            memo=text,
            grant_id=index + 1,
            grant_label=text,
            amount_nanos=-3_200_000_000,
            balance_after_nanos=-3_200_000_000 * (index + 1),
        )
        for index, text in enumerate(FORMULAS)
    ]
    rows = list(csv.DictReader(io.StringIO(ledger_csv(hostile).decode())))
    for row, text in zip(rows, FORMULAS, strict=True):
        assert row["reference"] == row["memo"] == row["grant"] == "'" + text
        assert row["reason_label"] == "'-Adjustment"
        assert row["amount_credits"] == "-3.200000000"
    assert rows[-1]["balance_after_credits"] == "-19.200000000"
    assert [row["entry_id"] for row in rows] == ["1", "2", "3", "4", "5", "6"]


def test_a_carriage_return_inside_a_memo_stays_in_its_cell() -> None:
    memo = replace(line(1, -1, -1), memo="first line\rsecond line")
    rows = list(csv.DictReader(io.StringIO(ledger_csv([memo]).decode(), newline="")))
    assert len(rows) == 1
    assert rows[0]["memo"] == "first line\rsecond line"
    assert rows[0]["amount_credits"] == "-0.000000001"


def test_a_text_value_in_a_numeric_column_is_refused() -> None:
    with pytest.raises(AssertionError, match="not a number"):
        csv_bytes(["name", "amount"], [["x", "=1+1"]], numeric_columns=("amount",))
