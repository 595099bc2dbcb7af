"""Tables and CSV exports with exact values: integer quantities, decimal-string money.

Nothing here rounds through a float. CSV amounts are written twice: in credits with
all nine decimals (exact) and in US dollars (1 credit = $1.00, same digits).

Every CSV cell outside the columns declared numeric goes through ``neutralize_formula``:
dimension values, references and memos come from customers, and a spreadsheet would
run one that starts with ``=`` as a formula (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import pandas as pd

from core import display
from core.ledger.views import LedgerLine
from core.money import CREDIT_VALUE_USD, nanos_to_credits

# Leading characters that make Excel, LibreOffice or Google Sheets read a cell as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralize_formula(value: object) -> object:
    """A text cell a spreadsheet would run as a formula gets a leading ``'`` (OWASP); other values pass."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def plural(unit: str, quantity: int) -> str:
    """The plural of a unit for a quantity: token → tokens (units are stored singular)."""
    if quantity == 1 or unit.endswith("s"):
        return unit
    return unit + "s"


def format_quantity(quantity: int, unit: str) -> str:
    """A quantity with its (singular) unit made plural where it needs: 1,234,567 tokens."""
    return display.format_quantity(quantity, plural(unit, quantity))


def exact_credits(nanos: int) -> str:
    """Credits as an exact decimal string with nine places: "12.500000000"."""
    return f"{nanos_to_credits(nanos):.9f}"


def exact_usd(nanos: int) -> str:
    """US dollars as an exact decimal string with nine places (1 credit = $1.00)."""
    return f"{nanos_to_credits(nanos) * CREDIT_VALUE_USD:.9f}"


def _bucket_text(bucket: pd.Timestamp, granularity: str) -> str:
    return bucket.strftime("%Y-%m-%d") if granularity == "day" else bucket.strftime("%Y-%m-%d %H:00")


def money_decimals(amounts_nanos: Iterable[int]) -> int:
    """The precision of a column of money: always the rule's two decimals (docs/money.md), whatever
    the rows around an amount, so that one amount reads the same in every view (a 30-day and a
    90-day table once showed one day as 8.0588 and 8.059). Below a cent a number column can only
    show 0.00: a table that must say "< 0.01" carries ``core.display.credits_number`` text instead,
    and the CSV keeps every digit."""
    return display.PLACES


def nanos_decimal(nanos: int) -> Decimal:
    """Credits (or dollars: 1 credit = $1.00) as an exact Decimal with nine places, for tables."""
    return Decimal(int(nanos)).scaleb(-9)


def usage_table(frame: pd.DataFrame, *, granularity: str, group_label: str) -> pd.DataFrame:
    """The usage frame for people, newest first: numbers stay numbers (int64 quantities and
    events, exact Decimal dollars), so a table sorts them as numbers and formats them for display."""
    period = "Day" if granularity == "day" else "Hour"
    # Money early: on a phone the first columns are the ones on screen.
    columns = [period, group_label, "Spend", "Meter", "Quantity", "Unit", "Events"]
    if group_label == "Meter":
        del columns[3]  # the group is the meter: one column of it
    if frame.empty:
        return pd.DataFrame(columns=columns)
    ordered = frame.sort_values(["bucket", "group", "meter"], ascending=[False, True, True])
    table = pd.DataFrame(
        {
            period: [_bucket_text(b, granularity) for b in ordered["bucket"]],
            group_label: list(ordered["group"]),
            "Meter": list(ordered["meter"]),
            "Quantity": pd.Series(ordered["quantity"].tolist(), dtype="int64"),
            "Unit": [plural(u, int(q)) for q, u in zip(ordered["quantity"], ordered["unit"], strict=True)],
            "Events": pd.Series(ordered["events"].tolist(), dtype="int64"),
            "Spend": pd.Series([nanos_decimal(a) for a in ordered["amount_nanos"]], dtype="object"),
        }
    )
    return table[columns]


def _is_number_text(value: object) -> bool:
    if isinstance(value, int) or value == "":
        return True
    try:
        return isinstance(value, str) and Decimal(value).is_finite()
    except InvalidOperation:
        return False


def csv_bytes(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, numeric_columns: Collection[str]
) -> bytes:
    """UTF-8 CSV; every cell outside ``numeric_columns`` goes through ``neutralize_formula``.

    Lines end in CRLF (RFC 4180): with a bare LF terminator Python's csv module leaves a
    carriage return inside a cell unquoted, and spreadsheets then split the row there.
    """
    numeric = [name in numeric_columns for name in header]
    assert set(numeric_columns) <= set(header), "numeric_columns names a column the header lacks"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralize_formula(name) for name in header])
    for row in rows:
        assert len(row) == len(header), "a CSV row has as many cells as the header"
        cells = []
        for is_numeric, value in zip(numeric, row, strict=True):
            # A text value in a numeric column would skip neutralising: refuse it loudly.
            assert not is_numeric or _is_number_text(value), f"not a number: {value!r}"
            cells.append(value if is_numeric else neutralize_formula(value))
        writer.writerow(cells)
    return buffer.getvalue().encode("utf-8")


def usage_csv(frame: pd.DataFrame, *, granularity: str, timezone: str) -> bytes:
    """CSV of a usage export frame (``core.usage.views.usage_export_frame``): one row per bucket,
    meter, model, project and API key, so a filtered view's file says what each row is; exact values
    (integer quantities, every digit of the amounts as decimal strings, units in the column names)."""
    header = [
        f"{granularity}_start_{timezone}",
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
    ordered = frame.sort_values(["bucket", "meter_key", "model", "project", "api_key"])
    rows = (
        [
            _bucket_text(row.bucket, granularity),
            row.meter_key,
            row.model,
            row.project,
            row.api_key,
            row.unit,
            int(row.quantity),
            int(row.events),
            exact_credits(int(row.amount_nanos)),
            exact_usd(int(row.amount_nanos)),
        ]
        for row in ordered.itertuples(index=False)
    )
    return csv_bytes(header, rows, numeric_columns=("quantity", "events", "amount_credits", "amount_usd"))


def ledger_table(lines: Sequence[LedgerLine], *, timezone: str) -> pd.DataFrame:
    """Ledger lines as text for people, newest first, as the money rule writes them: times in the
    account's zone (named), amounts with two decimals under headers that name the unit."""
    columns = [
        "When",
        "What happened",
        "Credits from",
        "Reference",
        "Note",
        "Change (credits)",
        "Balance after (credits)",
    ]
    if not lines:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(
        {
            "When": [display.format_datetime(line.effective_at, timezone) for line in lines],
            "What happened": [line.reason_label for line in lines],
            "Credits from": [line.grant_label for line in lines],
            "Reference": [line.reference for line in lines],
            "Note": [line.memo for line in lines],
            "Change (credits)": [display.credits_change_number(line.amount_nanos) for line in lines],
            "Balance after (credits)": [display.credits_number(line.balance_after_nanos) for line in lines],
        }
    )


def utc_seconds(moment: datetime) -> str:
    """ISO 8601 in UTC to the second, "2026-11-20T06:59:59Z": what a ledger time means to a reader.
    Truncated, never rounded, so an entry stays on its day (23:59:59.999999 is not the next day)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ledger_csv(lines: Sequence[LedgerLine]) -> bytes:
    """CSV of ledger lines, oldest first, exact values, one row per entry (the page groups them)."""
    header = [
        "entry_id",
        "effective_at_utc",
        "reason",
        "reason_label",
        "grant_id",
        "grant",
        "reference",
        "memo",
        "amount_credits",
        "balance_after_credits",
    ]
    rows = (
        [
            line.entry_id,
            utc_seconds(line.effective_at),
            line.reason,
            line.reason_label,
            "" if line.grant_id is None else line.grant_id,
            line.grant_label,
            line.reference,
            line.memo,
            exact_credits(line.amount_nanos),
            exact_credits(line.balance_after_nanos),
        ]
        for line in sorted(lines, key=lambda item: item.entry_id)
    )
    return csv_bytes(
        header, rows, numeric_columns=("entry_id", "grant_id", "amount_credits", "balance_after_credits")
    )


def balance_history_frame(lines: Sequence[LedgerLine]) -> pd.DataFrame:
    """Balance after each entry, oldest first: ``at`` (UTC) and exact int64 ``balance_nanos``."""
    ordered = sorted(lines, key=lambda item: item.entry_id)
    return pd.DataFrame(
        {
            "at": pd.to_datetime(
                pd.Series([line.effective_at for line in ordered], dtype="object"), utc=True
            ),
            "balance_nanos": pd.Series([line.balance_after_nanos for line in ordered], dtype="int64"),
            "reason_label": pd.Series([line.reason_label for line in ordered], dtype="object"),
        }
    )
