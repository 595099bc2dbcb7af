"""Reading statements back: the CSV as exact decimals, the PDF as text (pypdf)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from pypdf import PdfReader

from core.money import nanos_to_credits


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def credits(nanos: int) -> Decimal:
    return nanos_to_credits(nanos)


def csv_identity(rows: list[dict[str, str]]) -> tuple[Decimal, Decimal, Decimal]:
    """(opening, sum of the lines, closing) as the CSV states them, exactly."""
    by_type = {row["row_type"]: row for row in rows}
    totals = ("opening_balance", "total_additions", "total_deductions", "closing_balance")
    lines = sum((Decimal(row["amount_credits"]) for row in rows if row["row_type"] not in totals), Decimal(0))
    return (
        Decimal(by_type["opening_balance"]["amount_credits"]),
        lines,
        Decimal(by_type["closing_balance"]["amount_credits"]),
    )
