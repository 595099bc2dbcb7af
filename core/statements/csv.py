"""A statement as CSV: one row per line, with the balances and totals, every digit kept."""

from __future__ import annotations

from collections.abc import Sequence

from core.statements.model import Statement, StatementLine
from core.usage.exports import csv_bytes, exact_credits, exact_usd

HEADER = (
    "account_id",
    "month",
    "timezone",
    "row_type",
    "section",
    "date",
    "description",
    "reference",
    "quantity",
    "unit",
    "amount_usd",
    "amount_credits",
)
NUMERIC = ("quantity", "amount_usd", "amount_credits")


def _usd_of_cents(cents: int | None) -> str:
    if cents is None:
        return ""
    return exact_usd(cents * 10_000_000)  # 1 cent = 10**7 nanos of a dollar


def _row(
    statement: Statement, row_type: str, section: str, line: StatementLine | None, amount: int
) -> list[object]:
    return [
        statement.account_id,
        statement.month.key,
        statement.timezone,
        row_type,
        section,
        "" if line is None or line.day is None else line.day.isoformat(),
        "" if line is None else line.description,
        "" if line is None else line.reference,
        "" if line is None or line.quantity is None else line.quantity,
        "" if line is None else line.unit,
        "" if line is None else _usd_of_cents(line.amount_cents),
        exact_credits(amount),
    ]


def statement_csv(statement: Statement) -> bytes:
    """The statement's CSV: opening balance, each line, total additions and deductions, closing
    balance. Amounts are exact decimal strings (nine places); dates are the account's local days."""
    rows: list[Sequence[object]] = [_row(statement, "opening_balance", "", None, statement.opening_nanos)]
    rows += [_row(statement, line.kind, line.section, line, line.amount_nanos) for line in statement.lines]
    rows.append(_row(statement, "total_additions", "", None, statement.additions_nanos))
    rows.append(_row(statement, "total_deductions", "", None, -statement.deductions_nanos))
    rows.append(_row(statement, "closing_balance", "", None, statement.closing_nanos))
    return csv_bytes(HEADER, rows, numeric_columns=NUMERIC)


def statement_file_name(account_id: str, month_key: str, extension: str) -> str:
    """ "statement_acc_acme_2026-11.pdf" (the account id kept to safe characters)."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in account_id)
    return f"statement_{safe}_{month_key}.{extension}"
