"""Cost cards on both databases: versions, effective dates, idempotent loads, audited file loads,
and bad files refused with the field (and the TOML line) named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.costs import load_cost_card, load_cost_card_file
from core.costs.cards import toml_line
from core.db import unit_of_work
from core.db.models import AuditLog, CostCardVersion, CostPrice
from core.demo.seed import COST_CARD_FILE, RATE_CARD_FILE
from core.errors import Conflict, ValidationError
from core.rating import load_rate_card_file
from core.rating.history import file_sha256

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

CARD = """\
[card]
key = "internal"
name = "Cost of serving"

[[versions]]
effective_from = "2026-12-01T00:00:00Z"
notes = "December"

[[versions.costs]]
meter = "input_tokens"
per = 1_000_000
cost = "0.30"

[[versions.costs]]
meter = "input_tokens"
model = "atlas-large"
per = 1_000_000
cost = "1.10"
"""

LATER = """
[[versions]]
effective_from = "2027-01-01T00:00:00Z"
notes = "January"

[[versions.costs]]
meter = "input_tokens"
per = 1_000_000
cost = "0.25"
"""


@pytest.fixture
def meters(engine: Engine) -> Engine:
    with unit_of_work(engine, write=True) as session:
        load_rate_card_file(session, RATE_CARD_FILE, at=NOW, allow_backdated=True)
    return engine


def _load(engine: Engine, tmp_path: Path, text: str, *, name: str = "costs.toml", backdated: bool = False):
    path = tmp_path / name
    path.write_text(text)
    with unit_of_work(engine, write=True) as session:
        return load_cost_card_file(session, path, at=NOW, actor="cli:ops", allow_backdated=backdated)


def _error(engine: Engine, tmp_path: Path, text: str) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _load(engine, tmp_path, text)
    return caught.value


def test_versions_are_added_once_and_dated(meters: Engine, tmp_path: Path) -> None:
    first = _load(meters, tmp_path, CARD)
    assert (first.card_key, first.versions_added) == ("internal", [1])
    again = _load(meters, tmp_path, CARD + LATER)
    assert (again.versions_added, again.versions_unchanged) == ([2], [1])
    with unit_of_work(meters) as session:
        versions = session.scalars(select(CostCardVersion).order_by(CostCardVersion.version)).all()
        assert [(v.version, v.effective_from.isoformat(), v.notes) for v in versions] == [
            (1, "2026-12-01T00:00:00+00:00", "December"),
            (2, "2027-01-01T00:00:00+00:00", "January"),
        ]
        costs = session.scalars(select(CostPrice).where(CostPrice.version_id == versions[0].id)).all()
        assert sorted((c.model, c.per_units, c.cost_nanos) for c in costs) == [
            ("", 1_000_000, 300_000_000),
            ("atlas-large", 1_000_000, 1_100_000_000),
        ]


def test_every_file_load_is_audited_with_its_sha256(meters: Engine, tmp_path: Path) -> None:
    _load(meters, tmp_path, CARD)
    _load(meters, tmp_path, CARD)  # nothing new: still audited
    with unit_of_work(meters) as session:
        entries = session.scalars(
            select(AuditLog).where(AuditLog.action == "costs.load").order_by(AuditLog.id)
        ).all()
    assert [e.actor for e in entries] == ["cli:ops", "cli:ops"]
    assert entries[0].details["sha256"] == file_sha256(CARD.encode())
    assert entries[0].details["target"] == "cost_card:internal"
    assert (entries[0].details["versions_added"], entries[1].details["versions_added"]) == ([1], [])
    assert entries[1].details["versions_unchanged"] == [1]


def test_the_same_date_with_other_costs_is_a_conflict(meters: Engine, tmp_path: Path) -> None:
    _load(meters, tmp_path, CARD)
    with pytest.raises(Conflict) as caught:
        _load(meters, tmp_path, CARD.replace('"1.10"', '"1.20"'))
    assert caught.value.field == "versions[0].effective_from"


def test_a_version_in_the_past_needs_the_flag(meters: Engine, tmp_path: Path) -> None:
    past = CARD.replace("2026-12-01T00:00:00Z", "2026-11-01T00:00:00Z")
    error = _error(meters, tmp_path, past)
    assert (error.code, error.field) == ("in_past", "versions[0].effective_from")
    assert _load(meters, tmp_path, past, backdated=True).versions_added == [1]


@pytest.mark.parametrize(
    ("change", "field", "line"),
    [
        (('cost = "1.10"', 'cost = "-1"'), "versions[0].costs[1].cost", 18),
        (('cost = "1.10"', 'cost = "1.0000000001"'), "versions[0].costs[1].cost", 18),
        (('cost = "1.10"', "cost = 1.1"), "versions[0].costs[1].cost", 18),
        (('model = "atlas-large"', 'model = "atlas-large"\nprice = "1"'), "versions[0].costs[1].price", 17),
        (('meter = "input_tokens"\nmodel', 'meter = "inputs"\nmodel'), "versions[0].costs[1].meter", 15),
        (('per = 1_000_000\ncost = "0.30"', 'per = 0\ncost = "0.30"'), "versions[0].costs[0].per", 11),
        (("2026-12-01T00:00:00Z", "2026-12-01T00:30:00Z"), "versions[0].effective_from", 6),
        (("2026-12-01T00:00:00Z", "2026-12-01T00:00:00"), "versions[0].effective_from", 6),
        (("2026-12-01T00:00:00Z", "soon"), "versions[0].effective_from", 6),
        (('model = "atlas-large"\n', ""), "versions[0].costs[1]", 14),
        (('key = "internal"', 'kee = "internal"'), "card.key", None),
    ],
)
def test_a_bad_file_names_the_field_and_line(
    meters: Engine, tmp_path: Path, change: tuple[str, str], field: str, line: int | None
) -> None:
    assert change[0] in CARD
    error = _error(meters, tmp_path, CARD.replace(*change, 1))
    assert error.field == field, error.message
    if line is not None:
        assert error.message.startswith(f"costs.toml line {line}: "), error.message
        assert field in error.message


def test_a_file_that_is_not_toml_says_where(meters: Engine, tmp_path: Path) -> None:
    error = _error(meters, tmp_path, CARD + "\n[[versions]\n")
    assert error.field == "file" and "line" in error.message


def test_a_version_without_costs_is_refused(meters: Engine, tmp_path: Path) -> None:
    with unit_of_work(meters, write=True) as session, pytest.raises(ValidationError) as caught:
        load_cost_card(
            session, {"card": {"key": "x"}, "versions": [{"effective_from": "2027-01-01T00:00:00Z"}]}, at=NOW
        )
    assert caught.value.field == "versions[0].costs"


def test_toml_line_finds_keys_of_later_tables() -> None:
    text = CARD + LATER
    assert toml_line(text, "versions[1].costs[0].cost") == text.splitlines().index('cost = "0.25"') + 1
    assert (
        toml_line(text, "versions[1].effective_from")
        == text.splitlines().index('effective_from = "2027-01-01T00:00:00Z"') + 1
    )
    assert toml_line(text, "versions[5].costs[0].cost") is None


def test_the_demo_cost_card_loads(meters: Engine) -> None:
    with unit_of_work(meters, write=True) as session:
        report = load_cost_card_file(session, COST_CARD_FILE, at=NOW, actor="cli:demo", allow_backdated=True)
    assert report.versions_added == [1, 2]
