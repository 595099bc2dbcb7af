"""The FinOps Foundation's own validator (focus-validator 1.0.0, FOCUS 1.0 rules) passes the demo
accounts' FOCUS exports, month by month, on SQLite and PostgreSQL.

The validator lives in its own venv (tests/focus_validator: it needs pandas<3 and numpy<2). Five of
its checks test FOCUS 0.5 column names and are skipped by its override file; this test checks the
same rules on the FOCUS 1.0 columns itself.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.demo import seed_demo
from core.demo.seed import DORMANT, ENTERPRISE, OVERDRAWN, STARTUP
from core.usage.focus import FOCUS_COLUMNS, focus_csv, focus_file_name, focus_snapshot
from tests.focus_validator import SUCCESS, ValidatorUnavailable, ensure_installed, validate_many

# Fourteen days of demo history up to Nov 3: every demo account has charges in October and November.
DEMO_NOW = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
MONTHS = ("2026-10", "2026-11")


@pytest.fixture(scope="session")
def validator() -> Path:
    try:
        return ensure_installed()
    except ValidatorUnavailable as error:
        pytest.skip(f"focus-validator 1.0.0 could not be installed, so it cannot run: {error}")


def check_renamed_rules(rows: list[dict[str, str]]) -> None:
    """What the five skipped checks mean, on the FOCUS 1.0 columns."""
    for row in rows:
        for column in ("InvoiceIssuerName", "ProviderName", "PublisherName"):  # required, not null
            assert row[column], column
        if row["ChargeCategory"] in ("Usage", "Purchase") and row["ChargeClass"] != "Correction":
            assert row["SkuPriceId"], row  # SkuPriceId_Nullable, read on ChargeCategory
    assert "ResourceId" in FOCUS_COLUMNS


def test_the_focus_validator_passes_the_demo_accounts_months(
    engine: Engine, validator: Path, tmp_path: Path
) -> None:
    seed_demo(engine, now=DEMO_NOW, days=14)
    categories: set[str] = set()
    files = []
    for account_id in (STARTUP, ENTERPRISE, DORMANT, OVERDRAWN):
        for month in MONTHS:
            with focus_snapshot(engine) as session:
                data = focus_csv(session, account_id, month)
            rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
            assert rows, f"{account_id} has no charges in {month}: the demo changed"
            categories |= {row["ChargeCategory"] for row in rows}
            check_renamed_rules(rows)
            path = tmp_path / focus_file_name(account_id, month)
            path.write_bytes(data)
            files.append(path)
    assert categories == {"Usage", "Purchase", "Credit"}  # the demo shows every kind of row
    # A control: the same validator run refuses a file with a value FOCUS does not allow.
    broken = tmp_path / "broken.csv"
    broken.write_text(files[0].read_text().replace(",Usage-Based,", ",Sometimes,"))

    outcomes = validate_many([*files, broken])
    refused = outcomes.pop(broken)
    assert not refused.passed and "ChargeFrequency_Enum failed" in refused.output, refused.output
    for path, outcome in outcomes.items():
        assert "Validation failed" not in outcome.output, f"{path.name}:\n{outcome.output}"
        assert SUCCESS in outcome.output, f"{path.name}:\n{outcome.output}"
        assert outcome.passed
