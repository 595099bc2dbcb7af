"""Read a daily spend series from a CSV file for ``meterline spend backtest``; report the result.

The file has a header with a ``date`` and an ``amount`` column (any case, spaces around names
and values ignored; other columns ignored). Dates are ISO days (``2026-11-03``; a time after
the day, ``2026-11-03T00:00:00``, is ignored); amounts are in currency units, parsed exactly
(``Decimal``; ``$1,284.10`` is fine when quoted, at most 9 decimals, never negative) and held
as nano-units (10^9 per unit, as credits are). Rows may come in any order. **A day missing
between the first and the last is zero spend**, as a day without usage has no row in the
daily rollup; a day given twice is an error (the file is probably not daily totals).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from core.money import NANOS_PER_CREDIT, credits_to_nanos
from core.sizes import format_bytes
from core.spend.projection import MIN_BACKTEST_HISTORY_DAYS, BacktestResult

MAX_DAYS = 40_000  # a bit more than a century of days: a limit on everything
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class DailySeries:
    """A daily series: ``amounts_nanos[i]`` is the spend of ``first_day + i`` days."""

    first_day: date
    amounts_nanos: tuple[int, ...]
    missing_days: int  # days absent from the file, counted as zero

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=len(self.amounts_nanos) - 1)


def _parse_day(text: str, where: str) -> date:
    value = text.strip()
    for separator in ("T", " "):
        if separator in value:
            value = value.split(separator, 1)[0]
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where}: date {text.strip()!r} is not an ISO day such as 2026-11-03") from None


def _parse_amount(text: str, where: str) -> int:
    value = text.strip()
    if not value:
        raise ValueError(f"{where}: the amount is empty (write 0 for a day without spend)")
    try:
        nanos = credits_to_nanos(value, field="amount")
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if nanos < 0:
        raise ValueError(f"{where}: amount {value} is negative; give daily spend (0 or more)")
    return nanos


def read_daily_series(path: Path) -> DailySeries:
    """The series in a ``date,amount`` CSV file; ``ValueError`` with a one-line reason if it is not one."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path.name}: larger than {format_bytes(MAX_FILE_BYTES)}")
    by_day: dict[date, int] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        try:
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path.name}: the file is empty; give a header line 'date,amount' and rows")
            names = [name.strip().lower() for name in header]
            if "date" not in names or "amount" not in names:
                raise ValueError(
                    f"{path.name}: the header needs the columns date and amount (found: {', '.join(header)})"
                )
            date_column, amount_column = names.index("date"), names.index("amount")
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                where = f"{path.name} line {reader.line_num}"
                if len(row) <= max(date_column, amount_column):
                    raise ValueError(f"{where}: expected a date and an amount, got {len(row)} cell(s)")
                day = _parse_day(row[date_column], where)
                if day in by_day:
                    raise ValueError(f"{where}: {day} appears twice; give one total per day")
                by_day[day] = _parse_amount(row[amount_column], where)
                if len(by_day) > MAX_DAYS:
                    raise ValueError(f"{path.name}: more than {MAX_DAYS:,} days")
        except csv.Error as error:
            raise ValueError(f"{path.name} line {reader.line_num}: not a CSV row: {error}") from None
    if not by_day:
        raise ValueError(f"{path.name}: no rows after the header")
    first, last = min(by_day), max(by_day)
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise ValueError(f"{path.name}: {first} to {last} is more than {MAX_DAYS:,} days")
    if days <= MIN_BACKTEST_HISTORY_DAYS:
        raise ValueError(
            f"{path.name}: {days} day(s) from {first} to {last}; a backtest needs more than "
            f"{MIN_BACKTEST_HISTORY_DAYS} days (four weeks of history, then days to project)"
        )
    amounts = tuple(by_day.get(first + timedelta(days=offset), 0) for offset in range(days))
    return DailySeries(first, amounts, days - len(by_day))


def units(nanos: int) -> Decimal:
    """Nano-units as an exact currency amount (trailing zeros dropped, no exponent)."""
    value = Decimal(nanos).scaleb(-9)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _money(nanos: int) -> str:
    value = (Decimal(nanos) / NANOS_PER_CREDIT).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return f"{value:,f}"


def result_json(result: BacktestResult) -> str:
    """One JSON object; money and the share as exact JSON numbers (never a float's digits)."""
    return (
        "{"
        f'"projection_mae": {units(result.projection_mae_nanos):f}, '
        f'"run_rate_mae": {units(result.run_rate_mae_nanos):f}, '
        f'"band_coverage": {result.band_coverage:f}, '
        f'"cuts": {result.cuts}'
        "}"
    )


def result_text(name: str, series: DailySeries, result: BacktestResult) -> str:
    """The report a person reads: what was compared, both errors, the band's coverage."""
    horizon = (
        f"the next {result.horizon_days} day(s) from each cut (that day included)"
        if result.horizon_days
        else "from each cut to the end of its calendar month (that day included)"
    )
    missing = f"; {series.missing_days:,} missing day(s) counted as zero" if series.missing_days else ""
    lines = [
        f"{name}: {len(series.amounts_nanos):,} days, {series.first_day} to {series.last_day}{missing}",
        f"walk-forward: {result.cuts:,} cuts after the first {MIN_BACKTEST_HISTORY_DAYS} days, "
        f"projecting {horizon}",
    ]
    if result.cuts == 0:
        lines.append("no cut has its whole outcome in the file: give a longer series or a shorter --horizon")
        return "\n".join(lines)
    better = result.improvement * 100
    verdict = f"{better:.1f}% lower than" if better >= 0 else f"{-better:.1f}% higher than"
    lines += [
        f"projection MAE: {_money(result.projection_mae_nanos):>16}  (mean absolute error, the file's units)",
        f"run-rate MAE:   {_money(result.run_rate_mae_nanos):>16}  (last 7 days' mean × days projected)",
        f"projection error is {verdict} the run rate's",
        f"{result.band_percent}% band coverage: {result.band_coverage * 100:.1f}% of outcomes in the band",
    ]
    return "\n".join(lines)
