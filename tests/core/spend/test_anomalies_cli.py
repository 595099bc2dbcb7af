"""``meterline spend anomalies``: the days a spike rule would flag in a daily date,amount CSV, as text
(each day explained) and as JSON; one-line errors."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from core.cli import main

START = date(2026, 1, 5)  # a Monday
WEEK = ("300.00", "300.00", "300.00", "300.00", "300.00", "4.00", "2.00")  # quiet at weekends


def write_series(path: Path, days: int = 84, *, doubled: tuple[int, ...] = ()) -> Path:
    lines = ["Date , Amount"]
    for offset in range(days):
        amount = WEEK[offset % 7]
        if offset in doubled:
            amount = f"{float(amount) * 2:.2f}"
        lines.append(f"{(START + timedelta(days=offset)).isoformat()}, {amount}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["spend", "anomalies", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_names_each_flagged_day_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(write_series(tmp_path / "spend.csv", doubled=(71,))), "--factor", "1.5")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "spend.csv: 84 days, 2026-01-05 to 2026-03-29"
    assert lines[1].startswith(
        "each day judged from the days before it: flagged at 1.5× a usual day of its weekday"
    )
    assert lines[2:] == [
        "1 day(s) flagged:",
        "2026-03-17  Tuesday's spend, 600.00 credits, is 2.0 times a usual Tuesday's (300.00 credits)",
    ]


def test_json_lists_the_flagged_days_and_counts_the_days(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, str(write_series(tmp_path / "spend.csv", doubled=(43, 71))), "--json")
    assert code == 0
    assert json.loads(out) == {"flagged": ["2026-02-17", "2026-03-17"], "days": 84}


def test_a_quiet_series_flags_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(write_series(tmp_path / "spend.csv")), "--factor", "1.2")
    assert code == 0 and out.splitlines()[-1] == "no day flagged"
    code, out, _ = run(capsys, str(tmp_path / "spend.csv"), "--json")
    assert json.loads(out) == {"flagged": [], "days": 84}


@pytest.mark.parametrize("factor", ["1", "abc", "2.345", "1e9"])
def test_a_bad_factor_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], factor: str
) -> None:
    code, out, err = run(capsys, str(write_series(tmp_path / "spend.csv")), "--factor", factor)
    assert code == 2 and out == ""
    assert err.startswith("meterline: error: ") and "(factor)" in err and len(err.splitlines()) == 1


def test_a_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(tmp_path / "nope.csv"))
    assert code == 2 and "no such file" in err
