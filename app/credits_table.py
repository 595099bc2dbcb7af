"""Money in tables by the display rule (docs/money.md): the header names the unit ("Change (credits)",
"Amount ($)"), each cell shows ``core.display``'s two decimals ("1,284.10", "< 0.01"), and the
value underneath stays an exact Decimal, so a click on the header sorts numbers, not text.

The cell text is a pandas Styler's display value (Streamlit draws it, sorting uses the data);
``tests.app.harness.shown_table`` reads the cells as a person sees them.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from core.display import credits_number
from core.money import CENT, NANOS_PER_CREDIT, ROUNDING_MODE

ROUNDED_HELP = "Rounded to 2 decimals; the exact amounts are in the CSV."


def credits_values(amounts_nanos: Iterable[int]) -> pd.Series:
    """Exact credits (Decimal) for a table column; shown by ``styled`` as "1,284.10"."""
    return pd.Series([Decimal(int(n)).scaleb(-9) for n in amounts_nanos], dtype="object")


def dollars_values(amounts_cents: Iterable[int | None]) -> pd.Series:
    """Exact dollars (Decimal) of card amounts; None stays empty."""
    return pd.Series(
        [None if c is None else Decimal(int(c)).scaleb(-2) for c in amounts_cents], dtype="object"
    )


def dollars_nanos_values(amounts_usd_nanos: Iterable[int]) -> pd.Series:
    """Exact dollars (Decimal) of amounts held in nano-dollars (figures at cost basis, which need
    not be whole cents); shown by ``styled`` with two decimals, half-even."""
    return pd.Series([Decimal(int(n)).scaleb(-9) for n in amounts_usd_nanos], dtype="object")


def _credits_text(value: object) -> str:
    if not isinstance(value, Decimal):
        return ""
    return credits_number(int(value * NANOS_PER_CREDIT))


def _dollars_text(value: object) -> str:
    if not isinstance(value, Decimal):
        return ""
    shown = value.quantize(CENT, rounding=ROUNDING_MODE)  # whole cents stay as they are
    if shown == 0 and value != 0:
        return f"< {CENT}" if value > 0 else f"> -{CENT}"
    return f"{abs(shown) if shown == 0 else shown:,f}"


MISSING = "—"


def styled(frame: pd.DataFrame, *, credits: Iterable[str] = (), dollars: Iterable[str] = ()) -> Styler:
    """``frame`` with its credit and dollar columns shown by the rule (the data stays exact), and a
    missing value shown as a dash (a Styler otherwise writes "None")."""
    formats = {column: _credits_text for column in credits} | {column: _dollars_text for column in dollars}
    return frame.style.format(na_rep=MISSING).format(formats, na_rep=MISSING)  # type: ignore[arg-type]


def money_column(
    label: str, *, help: str = ROUNDED_HELP, pinned: bool | None = None, width: int | None = None
) -> st.column_config.NumberColumn:
    """A money column: right-aligned numbers whose text ``styled`` gives, with what rounding hides.
    It has no ``format`` of its own: one would take precedence over the styled text."""
    return st.column_config.NumberColumn(label, help=help, pinned=pinned, width=width)
