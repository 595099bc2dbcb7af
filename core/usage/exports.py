"""Tables and CSV exports with exact values: integer quantities, decimal-string money.

Nothing here rounds through a float. CSV amounts are written twice: in credits with
all nine decimals (exact) and in US dollars (1 credit = $1.00, same digits).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import pandas as pd

from core.ledger.views import LedgerLine
from core.money import CREDIT_VALUE_USD, format_credits, format_usd, nanos_to_credits


def plural(unit: str, quantity: int) -> str:
    """The plural of a unit for a quantity: token → tokens (units are stored singular)."""
    if quantity == 1 or unit.endswith("s"):
        return unit
    return unit + "s"


def format_quantity(quantity: int, unit: str) -> str:
    """A quantity with its unit: 1,234,567 tokens."""
    return f"{quantity:,} {plural(unit, quantity)}"


def exact_credits(nanos: int) -> str:
    """Credits as an exact decimal string with nine places: "12.500000000"."""
    return f"{nanos_to_credits(nanos):.9f}"


def exact_usd(nanos: int) -> str:
    """US dollars as an exact decimal string with nine places (1 credit = $1.00)."""
    return f"{nanos_to_credits(nanos) * CREDIT_VALUE_USD:.9f}"


def _bucket_text(bucket: pd.Timestamp, granularity: str) -> str:
    return bucket.strftime("%Y-%m-%d") if granularity == "day" else bucket.strftime("%Y-%m-%d %H:00")


def usage_table(frame: pd.DataFrame, *, granularity: str, group_label: str) -> pd.DataFrame:
    """The usage frame as text for people, newest first (exact values, formatted)."""
    period = "Day" if granularity == "day" else "Hour"
    if frame.empty:
        return pd.DataFrame(columns=[period, group_label, "Meter", "Quantity", "Events", "Spend"])
    ordered = frame.sort_values(["bucket", "group", "meter"], ascending=[False, True, True])
    return pd.DataFrame(
        {
            period: [_bucket_text(b, granularity) for b in ordered["bucket"]],
            group_label: list(ordered["group"]),
            "Meter": list(ordered["meter"]),
            "Quantity": [
                format_quantity(int(q), u) for q, u in zip(ordered["quantity"], ordered["unit"], strict=True)
            ],
            "Events": [f"{int(e):,}" for e in ordered["events"]],
            "Spend": [format_usd(int(a)) for a in ordered["amount_nanos"]],
        }
    )


def usage_csv(frame: pd.DataFrame, *, granularity: str, group_by: str, timezone: str) -> bytes:
    """CSV of a usage frame: one row per bucket, group and meter, exact values."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            f"{granularity}_start_{timezone}",
            group_by,
            "meter",
            "unit",
            "quantity",
            "events",
            "amount_credits",
            "amount_usd",
        ]
    )
    for row in frame.sort_values(["bucket", "group", "meter"]).itertuples(index=False):
        writer.writerow(
            [
                _bucket_text(row.bucket, granularity),
                row.group,
                row.meter,
                row.unit,
                int(row.quantity),
                int(row.events),
                exact_credits(int(row.amount_nanos)),
                exact_usd(int(row.amount_nanos)),
            ]
        )
    return buffer.getvalue().encode("utf-8")


def ledger_table(lines: Sequence[LedgerLine], *, timezone: str) -> pd.DataFrame:
    """Ledger lines as text for people, newest first."""
    columns = ["When", "What happened", "Credits from", "Reference", "Note", "Change", "Balance after"]
    if not lines:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(
        {
            "When": [
                pd.Timestamp(line.effective_at).tz_convert(timezone).strftime("%Y-%m-%d %H:%M")
                for line in lines
            ],
            "What happened": [line.reason_label for line in lines],
            "Credits from": [line.grant_label for line in lines],
            "Reference": [line.reference for line in lines],
            "Note": [line.memo for line in lines],
            "Change": [
                ("+" if line.amount_nanos > 0 else "") + format_credits(line.amount_nanos) for line in lines
            ],
            "Balance after": [format_credits(line.balance_after_nanos) for line in lines],
        }
    )


def ledger_csv(lines: Sequence[LedgerLine]) -> bytes:
    """CSV of ledger lines, oldest first, exact values."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
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
    )
    for line in sorted(lines, key=lambda item: item.entry_id):
        writer.writerow(
            [
                line.entry_id,
                line.effective_at.isoformat(),
                line.reason,
                line.reason_label,
                "" if line.grant_id is None else line.grant_id,
                line.grant_label,
                line.reference,
                line.memo,
                exact_credits(line.amount_nanos),
                exact_credits(line.balance_after_nanos),
            ]
        )
    return buffer.getvalue().encode("utf-8")


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
