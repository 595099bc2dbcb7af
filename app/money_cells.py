"""Credit amounts in portal tables: the cell holds the exact number (so the column sorts as
numbers), the cell shows it as docs/money.md says (two decimals, "< 0.01" for a tiny amount).

Streamlit draws a pandas ``Styler``'s display values and sorts on the underlying data, so a
column of exact ``Decimal`` credits is shown through ``core.display.credits_number``. Don't
give such a column a ``format`` in ``st.column_config``: that would take precedence.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pandas as pd
from pandas.io.formats.style import Styler

from core.display import credits_number
from core.money import NANOS_PER_CREDIT


def credits_cell(value: object) -> str:
    """The text of one cell holding credits (a ``Decimal`` or an int of credits); blank for none."""
    if value is None or (not isinstance(value, Decimal) and pd.isna(value)):  # type: ignore[arg-type]
        return ""
    nanos = Decimal(str(value)) * NANOS_PER_CREDIT
    return credits_number(int(nanos.to_integral_value()))


def credits_styler(frame: pd.DataFrame, columns: Sequence[str]) -> Styler:
    """``frame`` for ``st.dataframe``, its credit ``columns`` shown by the money rule."""
    return frame.style.format({column: credits_cell for column in columns})
