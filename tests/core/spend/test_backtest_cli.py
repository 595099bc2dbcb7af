"""``meterline spend backtest``: any daily date,amount CSV, text and JSON reports, one-line errors."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.cli import main

START = date(2026, 1, 5)  # a Monday
WEEKLY = (1.0, 1.1, 1.1, 1.05, 0.95, 0.45, 0.35)


def write_series(path: Path, days: int = 150, *, header: str = "date,amount", seed: int = 3) -> Path:
    rng = random.Random(seed)
    lines = [header]
    for offset in range(days):
        day = START + timedelta(days=offset)
        amount = Decimal(120 * WEEKLY[day.weekday()] * rng.lognormvariate(0, 0.2)).quantize(Decimal("0.01"))
        lines.append(f"{day.isoformat()},{amount}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["spend", "backtest", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_report_names_both_errors_and_the_band(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, str(write_series(tmp_path / "spend.csv")))
    assert code == 0 and err == ""
    assert "150 days, 2026-01-05 to 2026-06-03" in out
    assert "to the end of its calendar month" in out
    assert "projection MAE:" in out and "run-rate MAE:" in out
    assert "80% band coverage:" in out


def test_json_is_one_object_with_exact_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(write_series(tmp_path / "spend.csv")), "--json")
    assert code == 0
    report = json.loads(out, parse_float=Decimal)
    assert set(report) == {"projection_mae", "run_rate_mae", "band_coverage", "cuts"}
    assert isinstance(report["cuts"], int) and report["cuts"] > 90
    assert report["projection_mae"] < report["run_rate_mae"]  # the weekly pattern pays off
    assert Decimal("0.5") <= report["band_coverage"] <= 1


def test_horizon_walks_fixed_windows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, str(write_series(tmp_path / "spend.csv", days=100)), "--horizon", "10", "--json"
    )
    assert code == 0
    assert json.loads(out)["cuts"] == 100 - 28 - 10 + 1


def test_header_case_spaces_other_columns_and_missing_days_are_tolerated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export.csv"
    rows = [" Note , DATE , Amount "]
    for offset in range(60):
        if offset in (10, 11):
            continue  # no row: no spend those days
        day = START + timedelta(days=offset)
        rows.append(f'x, {day.isoformat()} , "1,000.50"')
    path.write_text("\n".join([rows[0], *reversed(rows[1:])]) + "\n")  # newest first: any order will do
    code, out, err = run(capsys, str(path))
    assert code == 0, err
    assert "60 days" in out and "2 missing day(s) counted as zero" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("day,spend\n2026-01-01,3\n", "the header needs the columns date and amount"),
        ("date,amount\n2026-13-01,3\n", "is not an ISO day"),
        ("date,amount\n2026-01-01,abc\n", "not a number"),
        ("date,amount\n2026-01-01,-3\n", "negative"),
        ("date,amount\n2026-01-01,0.0000000001\n", "more than 9 decimal places"),
        ("date,amount\n2026-01-01,\n", "the amount is empty"),
        ("date,amount\n2026-01-01,1\n2026-01-01,2\n", "appears twice"),
        ("date,amount\n2026-01-01,1\n2026-01-02,2\n", "needs more than 28 days"),
        ("date,amount\n", "no rows after the header"),
        ("date,amount\n2026-01-01\n", "expected a date and an amount"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = run(capsys, str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("meterline: error: ")
    assert message in err and "Traceback" not in err


def test_missing_binary_and_directory_paths_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "blob.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage\x00\n" * 10)
    for argv in ([str(tmp_path / "nope.csv")], [str(binary)], [str(tmp_path)]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


def test_a_bad_horizon_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(write_series(tmp_path / "s.csv", days=40)), "--horizon", "0")
    assert code == 2 and "--horizon must be 1 to 366 days" in err
