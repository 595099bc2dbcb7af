"""The roll-forward written out: exact decimal strings (JSON, CSV) and a text table for operators."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from core.display import PLACES
from core.finance.rollforward import Rollforward, RollforwardLine
from core.money import ROUNDING_MODE

# (JSON key, field of RollforwardLine, header for people) in the order a roll-forward reads.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("opening_deferred", "opening_deferred_usd_nanos", "Opening deferred ($)"),
    ("purchased", "purchased_usd_nanos", "Purchased ($)"),
    ("recognized", "recognized_usd_nanos", "Recognized ($)"),
    ("breakage", "breakage_usd_nanos", "Breakage ($)"),
    ("refunded", "refunded_usd_nanos", "Refunded ($)"),
    ("closing_deferred", "closing_deferred_usd_nanos", "Closing deferred ($)"),
    ("promotional_granted", "promotional_granted_nanos", "Promotional granted (credits)"),
    ("promotional_consumed", "promotional_consumed_nanos", "Promotional consumed (credits)"),
    ("promotional_expired", "promotional_expired_nanos", "Promotional expired (credits)"),
)
# Shorter headers for a terminal; the title names the units ($ at cost; promotional in credits).
TEXT_HEADERS = (
    "Opening $",
    "Purchased $",
    "Recognized $",
    "Breakage $",
    "Refunded $",
    "Closing $",
    "Promo granted",
    "Promo used",
    "Promo expired",
)
MONEY_KEYS = tuple(key for key, _, _ in COLUMNS[:6])
PROMOTIONAL_KEYS = tuple(key for key, _, _ in COLUMNS[6:])
ZONE = "UTC"


def exact_text(nanos: int) -> str:
    """Every digit of an amount in nano-units, at least two decimals: "12.50", "0.000000046"."""
    value = Decimal(nanos).scaleb(-9)
    whole, _, fraction = format(value, "f").partition(".")
    fraction = fraction.rstrip("0").ljust(PLACES, "0")
    return f"{whole}.{fraction}"


def rounded_text(nanos: int) -> str:
    """Two decimals, half-even, thousands separated: "1,284.10" (never "-0.00")."""
    shown = Decimal(nanos).scaleb(-9).quantize(Decimal(1).scaleb(-PLACES), rounding=ROUNDING_MODE)
    return f"{abs(shown) if shown == 0 else shown:,f}"


def line_values(line: RollforwardLine) -> dict[str, int]:
    """The line's figures by JSON key, in nano-units (nano-dollars; nano-credits for promotional)."""
    return {key: int(getattr(line, name)) for key, name, _ in COLUMNS}


def _line_json(line: RollforwardLine, *, with_id: bool) -> dict[str, Any]:
    values = {key: exact_text(value) for key, value in line_values(line).items()}
    return {"account_id": line.account_id, **values} if with_id else values


def rollforward_dict(report: Rollforward) -> dict[str, Any]:
    """``{"month", "accounts": [...], "totals": {...}}`` with exact decimal strings."""
    return {
        "month": report.month.label,
        "accounts": [_line_json(line, with_id=True) for line in report.lines],
        "totals": _line_json(report.totals, with_id=False),
    }


def rollforward_json(report: Rollforward) -> str:
    return json.dumps(rollforward_dict(report), indent=2)


def rollforward_csv(report: Rollforward) -> bytes:
    """A row per account and a ``total`` row; exact decimal strings, units in the column names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    money_units = {key: f"{key}_usd" for key in MONEY_KEYS} | {
        key: f"{key}_credits" for key in PROMOTIONAL_KEYS
    }
    writer.writerow(["month", "account_id", *money_units.values()])
    for line in (*report.lines, report.totals):
        values = line_values(line)
        writer.writerow(
            [report.month.label, line.account_id, *(exact_text(values[key]) for key in money_units)]
        )
    return out.getvalue().encode("utf-8")


def rollforward_text(report: Rollforward) -> str:
    """A table for an operator's terminal: two decimals, the identity checked per row."""
    headers = ["Account", *TEXT_HEADERS, "Identity"]
    rows = [
        [
            line.account_id,
            *(rounded_text(value) for value in line_values(line).values()),
            "ok" if line.identity_holds else "BROKEN",
        ]
        for line in (*report.lines, report.totals)
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def draw(cells: list[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        )

    title = (
        f"Credit roll-forward, {report.month.label} ({ZONE}): purchased credits in dollars at cost basis, "
        "promotional and goodwill credits in credits (no revenue)"
    )
    check = (
        "opening + purchased - recognized - breakage - refunded = closing: holds for every account"
        if report.identity_holds
        else "opening + purchased - recognized - breakage - refunded = closing: DOES NOT HOLD (see Identity)"
    )
    body = (
        [draw(headers), *(draw(row) for row in rows)]
        if report.lines
        else ["No credits were held or moved in this month."]
    )
    return "\n".join([title, "", *body, "", check])
