"""``meterline costs load``, ``finance margin`` and ``rates rollback`` on both databases: what they
print, the JSON's exact figures, the audit entries they leave, and errors as one line, exit 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.cli import main
from core.db import unit_of_work
from core.db.models import AuditLog, CostCardVersion
from core.demo.seed import COST_CARD_FILE, RATE_CARD_FILE
from tests.core.costs.month import build_month


@pytest.fixture
def cli_url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("USER", "dana")
    return db_url


def _actions(engine: Engine) -> list[tuple[str, str]]:
    with unit_of_work(engine) as session:
        return [(e.actor, e.action) for e in session.scalars(select(AuditLog).order_by(AuditLog.id))]


def test_costs_load_prints_versions_and_audits_the_user(
    cli_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rates", "load", str(RATE_CARD_FILE), "--allow-backdated"]) == 0
    assert main(["costs", "load", str(COST_CARD_FILE), "--allow-backdated", "--actor", "ops-bot"]) == 0
    out = capsys.readouterr().out
    assert "cost card 'internal'" in out and "versions added: 1, 2" in out and "cli:ops-bot" in out
    assert main(["costs", "load", str(COST_CARD_FILE), "--allow-backdated"]) == 0
    assert "nothing new" in capsys.readouterr().out
    assert _actions(engine) == [
        ("cli:dana", "rates.load"),
        ("cli:ops-bot", "costs.load"),
        ("cli:dana", "costs.load"),
    ]
    with unit_of_work(engine) as session:
        assert len(session.scalars(select(CostCardVersion)).all()) == 2


def test_a_bad_cost_file_is_one_line_naming_field_and_line(
    cli_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rates", "load", str(RATE_CARD_FILE), "--allow-backdated"]) == 0
    bad = tmp_path / "costs.toml"
    bad.write_text(COST_CARD_FILE.read_text().replace('cost = "1.10"', 'cost = "lots"', 1))
    capsys.readouterr()
    assert main(["costs", "load", str(bad), "--allow-backdated"]) == 2
    err = capsys.readouterr().err.strip()
    line = COST_CARD_FILE.read_text().splitlines().index('cost = "1.10"') + 1
    assert len(err.splitlines()) == 1
    assert err.startswith(f"meterline: error: costs.toml line {line}: versions[0].costs[1].cost")


def test_finance_margin_text(cli_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    build_month(engine)
    assert main(["finance", "margin", "--month", "2026-11"]) == 0
    out = capsys.readouterr().out
    assert (
        "Margin for 2026-11 (Nov 1, 2026, 00:00 UTC to Dec 1, 2026, 00:00 UTC), cost card 'internal'" in out
    )
    large = next(line for line in out.splitlines() if "atlas-large" in line and "input_tokens" in line)
    assert large.split()[-5:] == ["$18.00", "$7.50", "$10.50", "58.33", "%"]
    requests = next(line for line in out.splitlines() if line.strip().startswith("requests"))
    assert "no cost card" in requests and "$3.00" in requests
    total = next(line for line in out.splitlines() if line.strip().startswith("Total"))
    assert total.split()[1:] == ["$23.00", "$8.30", "$11.70", "58.50", "%"]
    assert "1 line(s) have no cost card (requests atlas-large): their revenue, $3.00, is left out" in out


def test_finance_margin_json_keeps_every_digit(
    cli_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    build_month(engine)
    assert main(["finance", "margin", "--month", "2026-11", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["month"], report["start"], report["end"]) == (
        "2026-11",
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    lines = {(line["meter"], line["model"]): line for line in report["lines"]}
    assert lines[("input_tokens", "atlas-large")] == {
        "meter": "input_tokens",
        "model": "atlas-large",
        "unit": "token",
        "quantity": 6_000_000,
        "revenue_usd": "18.00",
        "cost_usd": "7.50",
        "margin_usd": "10.50",
        "margin_percent": "58.33",
        "cost_status": "costed",
        "uncosted_quantity": 0,
    }
    requests = lines[("requests", "atlas-large")]
    assert (requests["cost_usd"], requests["margin_usd"], requests["cost_status"]) == (
        None,
        None,
        "no_cost_card",
    )
    assert report["totals"] == {
        "revenue_usd": "23.00",
        "costed_revenue_usd": "20.00",
        "uncosted_revenue_usd": "3.00",
        "cost_usd": "8.30",
        "margin_usd": "11.70",
        "margin_percent": "58.50",
        "lines_without_cost": 1,
    }


def test_finance_margin_bad_month_is_one_line(cli_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["finance", "margin", "--month", "2026-13"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("meterline: error: month: give a month as YYYY-MM") and "(month)" in err


def test_rates_rollback_adds_a_version_and_audits_it(
    cli_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rates", "load", str(RATE_CARD_FILE), "--allow-backdated", "--actor", "ops"]) == 0
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    stamp = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    capsys.readouterr()
    assert main(["rates", "rollback", "standard", "--to", "1", "--from", stamp]) == 0
    out = capsys.readouterr().out
    assert "version 3 added with version 1's prices" in out and "UTC" in out and "cli:dana" in out
    assert main(["rates", "rollback", "standard", "--to", "1", "--from", stamp]) == 0
    assert "nothing new" in capsys.readouterr().out
    assert _actions(engine) == [
        ("cli:ops", "rates.load"),
        ("cli:dana", "rates.rollback"),
        ("cli:dana", "rates.rollback"),
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--to", "1", "--from", "2020-01-01T00:00:00Z"], "not in the future"),
        (["--to", "7", "--from", "2099-01-01T00:00:00Z"], "has no version 7"),
        (["--to", "1", "--from", "next tuesday"], "--from takes a time"),
        (["--to", "1", "--from", "2099-01-01T00:00:00"], "--from takes a time"),
    ],
)
def test_a_refused_rollback_is_one_line_exit_2(
    cli_url: str, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main(["rates", "load", str(RATE_CARD_FILE), "--allow-backdated"]) == 0
    capsys.readouterr()
    assert main(["rates", "rollback", "standard", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err, err
