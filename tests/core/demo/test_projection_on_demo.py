"""The projection on the demo story (both databases): it beats the run rate in a walk-forward
backtest of the exported daily series, and the Overview view tells each customer's story."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.cli import main
from core.db import unit_of_work
from core.demo.seed import DORMANT, ENTERPRISE, OVERDRAWN, PROFILES, STARTUP
from core.spend.overview import daily_spend, overview
from core.spend.projection import backtest
from core.usage.ranges import account_today
from tests.conftest import NOW
from tests.core.demo.conftest import Seeded


def demo_daily_total(seeded: Seeded) -> tuple[object, list[int]]:
    """Every demo account's spend per day (their local days), over the whole seeded history."""
    today = account_today("UTC", NOW)
    totals: dict[object, int] = {}
    with unit_of_work(seeded.engine) as session:
        for profile in PROFILES:
            spend = daily_spend(session, profile.account_id, start=today - timedelta(days=120), end=today)
            for day, amount in spend.total.items():
                totals[day] = totals.get(day, 0) + amount
    first = min(totals)
    days = (today - first).days  # whole days only: today is not over
    return first, [totals.get(first + timedelta(days=offset), 0) for offset in range(days)]


def test_projection_beats_the_run_rate_on_the_demo_data(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, amounts = demo_daily_total(seeded)
    path = tmp_path / "demo_daily.csv"
    lines = ["date,amount"] + [
        f"{first + timedelta(days=offset)},{Decimal(amount).scaleb(-9)}"
        for offset, amount in enumerate(amounts)
    ]
    path.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    for extra in ([], ["--horizon", "7"]):
        assert main(["spend", "backtest", str(path), "--json", *extra]) == 0
        report = json.loads(capsys.readouterr().out, parse_float=Decimal)
        assert report["cuts"] >= 35, report
        assert report["projection_mae"] < report["run_rate_mae"], (extra, report)
        assert Decimal("0.6") <= report["band_coverage"] <= 1, (extra, report)
    # The CLI's numbers are the engine's.
    direct = backtest(first, amounts)
    assert direct.projection_mae_nanos < direct.run_rate_mae_nanos


def test_overview_tells_each_demo_customer_s_story(seeded: Seeded) -> None:
    with unit_of_work(seeded.engine) as session:
        startup = overview(session, STARTUP, at=NOW)
        enterprise = overview(session, ENTERPRISE, at=NOW)
        overdrawn = overview(session, OVERDRAWN, at=NOW)
        dormant = overview(session, DORMANT, at=NOW)

    # Brightpath burns fast: a runway date within weeks, a projection above what is spent so far.
    assert startup.runway.runs_out_on is not None and 0 < startup.runway.days < 60
    projection = startup.projection
    assert projection.spent_nanos < projection.projected_nanos
    assert projection.low_nanos <= projection.projected_nanos <= projection.high_nanos
    assert {scope.name for scope in startup.by_project} == {"copilot", "support-bot", "evals"}
    assert startup.chart[-1].projected_nanos == projection.projected_nanos

    # Northwind's pilot credits expire in days; the sentence says how many it will use first.
    (promo,) = enterprise.expiring
    assert promo.source == "promotional" and 0 < promo.expected_use_nanos < promo.remaining_nanos
    assert promo.expected_use_nanos + promo.expected_lost_nanos == promo.remaining_nanos
    sentence = promo.sentence(NOW, enterprise.timezone)
    assert "credits of promotional grant #" in sentence and "at your pace you will use" in sentence
    assert "expire in 4 days" in sentence or "expire in 5 days" in sentence

    # Pixel Forge is overdrawn: the balance has run out and what is owed is stated.
    assert overdrawn.runway.already_out and overdrawn.owed_nanos > 0

    # Quiet Harbor spends nothing: nothing to project, more than the horizon of runway.
    assert dormant.projection.projected_nanos == 0 and dormant.runway.runs_out_on is None
