"""The money rule (docs/money.md) as a test reads it off a rendered page.

``problems`` looks at pieces of text a page shows (``Shown``: the text, and the table header
or metric label it sits under) and says which money figures break the rule:

- a figure that looks like money (two or more decimals, a "$", the word "credits", or a cell
  of a column about credits, amounts, spend or balances) carries its unit: "$20.00",
  "20.00 credits", or a bare "20.00" under a header that names the unit ("Amount (credits)");
- amounts have two decimals ("$193.704", "$0.00000046", "−11.708" do not), or none; only prices
  and an "Exactly …" tooltip keep every digit;
- a balance, spend, usage, cap or threshold is never in dollars: those are credits.

``collect`` gathers every piece of text of an ``AppTest`` run: titles, markdown, captions,
alerts, metric labels, values and help, widget labels, options and help, and each table cell
with its column's header, as the browser would format it (the column's number format applied).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from core.display import DATE_COLUMN_FORMAT, DATETIME_COLUMN_FORMAT, DATETIME_COLUMN_FORMAT_NO_ZONE
from tests.app.harness import as_read, display_values, walk

# A number as people write it, with what may stand before it: "< ", a sign, a dollar sign.
# Not a piece of a longer token: "acc_1", "v1.2.3", "2026-12-07"'s "-12" and the digits of
# a dotted version are not figures.
_FIGURE = re.compile(
    r"(?<![\w.,$])(?P<sign>[-−+]?)(?P<dollar>\$?)[-−]?"
    r"(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?!\w|\.?\d)"
)
_CREDITS_AFTER = re.compile(r"\s*credits?\b", re.IGNORECASE)
_PRICE_AFTER = re.compile(r"\s*credits?\s*(?:per\b|/|each\b|a\b)", re.IGNORECASE)
_NOT_MONEY_AFTER = re.compile(
    r"\s*(?:%|×|x\b|s\b|ms\b|seconds?\b|minutes?\b|hours?\b|days?\b|MB\b|px\b)", re.IGNORECASE
)
_EXACT_BEFORE = re.compile(r"\bexact(?:ly)?\s*$", re.IGNORECASE)
_RATE_BEFORE = re.compile(r"\bcredits?\s*(?:=|is worth)\s*$", re.IGNORECASE)  # "1 credit = $1.00"
_DOLLAR_UNIT = re.compile(r"\((?:USD|\$|dollars?)\)", re.IGNORECASE)
# Headers of columns whose numbers are money, and the unit a header names.
_MONEY_HEADER = re.compile(r"credit|amount|spen[dt]|balance|\$|paid|refund|cost|price|usd", re.IGNORECASE)
_CREDITS_HEADER = re.compile(r"\bcredits?\b", re.IGNORECASE)
_DOLLARS_HEADER = re.compile(r"\(\$\)|\$|\bUSD\b|\bdollars?\b", re.IGNORECASE)
_PRICE_HEADER = re.compile(r"\bprice|\bper\b|\brate\b", re.IGNORECASE)
# What is measured in credits, never in dollars (the card side is "paid", "refunded", "top-up").
_CREDITS_ONLY = re.compile(
    r"\bbalance|\bspen[dt]\b|\busage\b|\bused\b|\bprojected\b|\bcap\b|\bthreshold|\bbudget|\bburn|\brunway",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Shown:
    """One piece of text on a page; ``context`` is the table header above a cell, the label of a
    metric (for its value and help) or of a field (for its placeholder), "" elsewhere; ``cell``
    marks a table cell (its unit may stand in the header)."""

    text: str
    context: str = ""
    cell: bool = False
    where: str = ""  # what showed it, for the report: "metric", "caption", "table", …


@dataclass(frozen=True)
class Problem:
    figure: str
    why: str
    shown: Shown

    def __str__(self) -> str:
        context = f" [{self.shown.context}]" if self.shown.context else ""
        return f"{self.figure!r}: {self.why} — {self.shown.where}{context}: {self.shown.text[:160]!r}"


def _header_unit(header: str) -> str | None:
    if _CREDITS_HEADER.search(header):
        return "credits"
    if _DOLLARS_HEADER.search(header):
        return "dollars"
    return None


def _judge(match: re.Match[str], shown: Shown) -> str | None:
    """Why this figure breaks the rule; None when it keeps it (or is not money)."""
    text = shown.text
    places = len(match["frac"]) if match["frac"] else 0
    dollar = bool(match["dollar"])
    rest = text[match.end() :]
    credits = bool(_CREDITS_AFTER.match(rest))
    whole_cell = shown.cell and text.strip().lstrip("<>≈ ").strip() == match.group(0).strip()
    money_column = shown.cell and bool(_MONEY_HEADER.search(shown.context))
    if not dollar and not credits and _NOT_MONEY_AFTER.match(rest):
        return None  # a share, a factor, a duration
    if not (dollar or credits or places >= 2 or (money_column and whole_cell)):
        return None  # a count, an id, a time of day, a date
    if _EXACT_BEFORE.search(text[: match.start()]):
        return None  # "Exactly 0.00000046 credits": a tooltip keeps every digit
    price = bool(_PRICE_AFTER.match(rest)) or (shown.cell and bool(_PRICE_HEADER.search(shown.context)))
    if dollar:
        if places not in (0, 2):
            return f"dollars with {places} decimal{'s' if places != 1 else ''} (two: $x.xx)"
        if _RATE_BEFORE.search(text[: match.start()]):
            return None  # the exchange rate itself
        if _CREDITS_ONLY.search(shown.context) and not credits:
            return "a balance, spend, cap or threshold in dollars: those are credits"
        return None
    if price:
        return None if places >= 2 or places == 0 else "a price with one decimal (at least two)"
    if credits:
        return None if places in (0, 2) else f"credits with {places} decimals (two: x.xx credits)"
    unit = _header_unit(shown.context) if shown.cell or shown.where.endswith(PLACEHOLDER) else None
    if unit is None:
        return "no unit: write $x.xx or x.xx credits, or name the unit in the table's header"
    if places != 2:
        return f"{places} decimal{'s' if places != 1 else ''} under a header in {unit} (two: x.xx)"
    if unit == "dollars" and _CREDITS_ONLY.search(shown.context):
        return "a balance, spend, cap or threshold in dollars: those are credits"
    return None


def problems(items: Iterable[Shown]) -> list[Problem]:
    """Every money figure of ``items`` that breaks the rule, and every label or header that puts a
    balance or spend in dollars ("Spend (USD)")."""
    found = []
    for shown in items:
        if (unit := _DOLLAR_UNIT.search(shown.text)) and _CREDITS_ONLY.search(shown.text):
            found.append(Problem(unit.group(0), "a balance or spend labelled in dollars: credits", shown))
        for match in _FIGURE.finditer(shown.text):
            why = _judge(match, shown)
            if why is not None:
                found.append(Problem(match.group(0).strip(), why, shown))
    return found


def problems_in(text: str, *, header: str = "") -> list[Problem]:
    """The rule on one text (a table cell when ``header`` is given)."""
    return problems([Shown(text, header, cell=bool(header), where="table" if header else "text")])


# --- dates and times ------------------------------------------------------------------------------

TIME_COLUMN = "table time column format"
PLACEHOLDER = "placeholder"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_DATE_SLIPS = (
    (re.compile(rf"\b{_MONTH} 0\d\b"), 'a zero-padded day ("Dec 07"): write "Dec 7"'),
    (re.compile(rf"\b{_MONTH} \d{{1,2}} \d{{4}}\b"), 'no comma before the year: "Dec 7, 2026"'),
    (
        re.compile(rf"\b{_MONTH} \d{{1,2}}, \d{{4}} \d{{2}}:\d{{2}}"),
        'no comma before the time: "Dec 7, 2026, 04:48"',
    ),
    (re.compile(r"(?<![\w-])\d{4}-\d{2}-\d{2}(?![\w-])"), 'an ISO date for people: write "Dec 7, 2026"'),
    (re.compile(r"(?<![\d:])\d{1,2}:\d{2}:\d{2}(?![\d:])"), 'a time with seconds: write "04:48"'),
)
# The table formats that write what ``core.display`` writes.
TIME_COLUMN_FORMATS = {DATE_COLUMN_FORMAT, DATETIME_COLUMN_FORMAT, DATETIME_COLUMN_FORMAT_NO_ZONE}


def date_problems(items: Iterable[Shown]) -> list[Problem]:
    """Dates and times not written one way ("Dec 7, 2026", "Dec 7, 2026, 04:48 PST")."""
    found = []
    for shown in items:
        if shown.where == TIME_COLUMN:
            if shown.text not in TIME_COLUMN_FORMATS:
                why = f"a date column formatted {shown.text or 'by default'!r}: use core.display's formats"
                found.append(Problem(shown.text, why, shown))
            continue
        for pattern, why in _DATE_SLIPS:
            found += [Problem(m.group(0), why, shown) for m in pattern.finditer(shown.text)]
    return found


# --- what a page shows -----------------------------------------------------------------------------

_PRINTF = re.compile(
    r"^(?P<pre>[^%]*(?:%%[^%]*)*)%(?P<flags>[+,]*)(?:\.(?P<places>\d+))?(?P<conv>[dfi])(?P<post>.*)$"
)
_NAMED = {
    "dollar": lambda v: f"${v:,.2f}",
    "plain": lambda v: str(v),
    "localized": lambda v: f"{v:,}",
    "percent": lambda v: f"{v * 100:.2f}%",
}


def displayed(value: Any, number_format: str | None = None) -> str:
    """A table cell as the browser shows it: its column's number format applied (printf style
    such as "$%,.2f", or a named one), a float without one to at most four decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, datetime):  # a date or time column: the browser formats it, no money in it
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return str(value)
    if number_format:
        if number_format in _NAMED:
            return _NAMED[number_format](value)
        parsed = _PRINTF.match(number_format)
        if parsed:
            places = int(parsed["places"]) if parsed["places"] is not None else 6
            flags = parsed["flags"]
            spec = f"{'+' if '+' in flags else ''}{',' if ',' in flags else ''}"
            spec += f".{0 if parsed['conv'] in 'di' else places}f"
            number = format(Decimal(str(value)) if isinstance(value, float) else Decimal(value), spec)
            return parsed["pre"].replace("%%", "%") + number + parsed["post"].replace("%%", "%")
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def _column_config(node: Any) -> dict[str, Any]:
    try:
        return dict(json.loads(node.proto.columns or "{}"))
    except ValueError:
        return {}


def _cells(frame: pd.DataFrame, drawn: Any, column: Any, number_format: str | None) -> list[str]:
    """A column's cells as the browser writes them: the column's number format if it has one (it
    takes precedence), else a styled frame's cell text (``app.credits_table``), else the value."""
    if number_format or drawn is None:
        return [displayed(value, number_format) for value in frame[column].tolist()]
    position = list(frame.columns).index(column)
    return ["" if text is None else str(text) for text in drawn.iloc[:, position].tolist()]


def _table(node: Any) -> list[Shown]:
    frame = node.value
    drawn = display_values(node)
    config = _column_config(node)
    shown: list[Shown] = []
    for column in frame.columns:
        settings = config.get(str(column), {})
        if settings.get("hidden"):
            continue
        header = str(settings.get("label") or column)
        type_config = settings.get("type_config") or {}
        number_format = type_config.get("format")
        shown.append(Shown(header, where="table header"))
        values = frame[column].tolist()
        if type_config.get("type") in ("datetime", "date") or any(isinstance(v, date) for v in values):
            # Real dates: the browser writes them with the column's format (Moment.js tokens).
            shown.append(Shown(str(number_format or ""), header, where=TIME_COLUMN))
            continue
        cells = _cells(frame, drawn, column, number_format)
        shown += [Shown(text, header, cell=True, where="table") for text in cells]
    return shown


def _chart_frames(node: Any) -> dict[str, pd.DataFrame]:
    import pyarrow as pa

    frames = {d.name: pa.ipc.open_stream(d.data.data).read_pandas() for d in node.proto.datasets}
    if node.proto.data.data:
        frames[""] = pa.ipc.open_stream(node.proto.data.data).read_pandas()
    return frames


def _encodings(spec: Any, data: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dataset name, encoding) of every view of a Vega-Lite spec (layers and concatenations too)."""
    if isinstance(spec, dict):
        named = spec.get("data")
        if isinstance(named, dict) and "name" in named:
            data = str(named["name"])
        if isinstance(spec.get("encoding"), dict):
            yield data, spec["encoding"]
        for key in ("layer", "hconcat", "vconcat", "concat"):
            for part in spec.get(key, []):
                yield from _encodings(part, data)


def _chart(node: Any) -> list[Shown]:
    """A chart's words: axis titles, an axis's number format (as a sample figure under its title),
    and the text of every tooltip field (its values under the tooltip's title)."""
    spec = json.loads(node.proto.spec or "{}")
    frames = _chart_frames(node)
    shown: list[Shown] = []
    for data, encoding in _encodings(spec):
        for channel in ("x", "y"):
            axis_spec = encoding.get(channel) or {}
            title = str(axis_spec.get("title") or "")
            if title:
                shown.append(Shown(title, where="chart axis title"))
            number_format = str(((axis_spec.get("axis") or {}).get("format")) or "")
            if "$" in number_format:
                shown.append(Shown("$1.00", title, where=f"chart axis format {number_format!r}"))
        tooltips = encoding.get("tooltip") or []
        for tip in tooltips if isinstance(tooltips, list) else [tooltips]:
            field, frame = tip.get("field"), frames.get(data)
            if frame is None or field not in frame.columns:
                continue
            title = str(tip.get("title") or field)
            for value in frame[field].drop_duplicates().tolist():
                if isinstance(value, str) and value:
                    shown.append(Shown(value, title, where="chart tooltip"))
    return shown


_TEXT_ATTRIBUTES = ("label", "help")
_VALUE_TYPES = {
    "markdown",
    "caption",
    "title",
    "header",
    "subheader",
    "text",
    "code",
    "error",
    "warning",
    "info",
    "success",
    "exception",
    "toast",
}


def collect(at: Any) -> list[Shown]:
    """Every piece of text the run shows (main area and sidebar), each with its context."""
    items: list[Shown] = []
    for root in (at.main, at.sidebar):
        for node in walk(root):
            kind = str(getattr(node, "type", ""))
            if kind == "dataframe":
                items += _table(node)
                continue
            if kind == "vega_lite_chart":
                items += _chart(node)
                continue
            if kind == "metric":
                label = as_read(node.label)
                items.append(Shown(label, where="metric label"))
                items.append(Shown(as_read(str(node.value)), label, where="metric"))
                if node.help:
                    items.append(Shown(as_read(node.help), label, where="metric help"))
                continue
            for attribute in _TEXT_ATTRIBUTES:
                try:
                    value = getattr(node, attribute, None)
                except Exception:  # an element without it raises on some Streamlit types
                    continue
                if isinstance(value, str) and value:
                    items.append(Shown(as_read(value), where=f"{kind} {attribute}"))
            placeholder = getattr(node, "placeholder", None) if kind not in _VALUE_TYPES else None
            if isinstance(placeholder, str) and placeholder:
                # An example of what to type: the field's label may name the unit ("Amount ($)").
                label = as_read(str(getattr(node, "label", "") or ""))
                items.append(Shown(as_read(placeholder), label, where=f"{kind} {PLACEHOLDER}"))
            if kind in _VALUE_TYPES:
                value = getattr(node, "value", None)
                if isinstance(value, str) and value:
                    items.append(Shown(as_read(value), where=kind))
            options = getattr(node, "options", None) if kind not in _VALUE_TYPES else None
            if isinstance(options, list):
                label = as_read(str(getattr(node, "label", "") or ""))
                items += [Shown(as_read(str(option)), label, where=f"{kind} option") for option in options]
    return items


def metric_values(at: Any) -> dict[str, str]:
    """Metric label → value, as read."""
    return {as_read(m.label): as_read(str(m.value)) for m in at.metric}


def table_rows(at: Any, *, having: str) -> list[dict[str, str]]:
    """The rows of the first table with a column ``having``, each cell as the browser shows it."""
    for node in at.dataframe:
        frame = node.value
        if having not in frame.columns:
            continue
        config, drawn = _column_config(node), display_values(node)
        columns = {
            str(c): _cells(frame, drawn, c, (config.get(str(c), {}).get("type_config") or {}).get("format"))
            for c in frame.columns
        }
        return [{c: cells[row] for c, cells in columns.items()} for row in range(len(frame))]
    return []
