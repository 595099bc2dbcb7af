"""Rate-card history on both databases: every file load audited (who, when, sha256, versions), and a
rollback that adds a new version with an earlier version's prices from a future moment, audited,
refused when retroactive or for a version that does not exist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.accounts import create_account
from core.db import unit_of_work
from core.db.models import AuditLog, RateCard, RateCardVersion, RatePrice
from core.demo.seed import RATE_CARD_FILE
from core.errors import NotFound, ValidationError
from core.metering import ingest_events
from core.rating import load_rate_book, price_sheet
from core.rating.history import (
    file_sha256,
    load_rate_card_file_audited,
    operator_actor,
    rollback_rate_card,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FUTURE = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def demo_card(engine: Engine) -> Engine:
    """The demo card as a file (two versions: Aug 24 and Oct 8), loaded by ``cli:ops``."""
    with unit_of_work(engine, write=True) as session:
        load_rate_card_file_audited(session, RATE_CARD_FILE, at=NOW, actor="cli:ops", allow_backdated=True)
        create_account(session, account_id="acc_h", name="History Co", at=NOW, rate_card_key="standard")
    return engine


def _prices(session, version_id: int) -> list[tuple[int, str, str, int, list]]:
    rows = session.scalars(select(RatePrice).where(RatePrice.version_id == version_id)).all()
    return sorted((p.meter_id, p.match_dimension, p.match_value, p.per_units, p.tiers) for p in rows)


def _version(session, number: int) -> RateCardVersion:
    card = session.scalar(select(RateCard).where(RateCard.key == "standard"))
    return session.scalar(
        select(RateCardVersion).where(
            RateCardVersion.rate_card_id == card.id, RateCardVersion.version == number
        )
    )


def _audit(engine: Engine, action: str) -> list[AuditLog]:
    with unit_of_work(engine) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def test_a_file_load_is_audited_with_who_when_sha256_and_versions(demo_card: Engine) -> None:
    with unit_of_work(demo_card, write=True) as session:
        again = load_rate_card_file_audited(session, RATE_CARD_FILE, at=NOW, actor="cli:ops")
    assert again.versions_added == []
    first, second = _audit(demo_card, "rates.load")
    assert (first.actor, first.created_at) == ("cli:ops", NOW)
    assert first.details["sha256"] == file_sha256(RATE_CARD_FILE.read_bytes())
    assert first.details["target"] == "rate_card:standard"
    assert first.details["file"] == "rate_card.toml"
    assert (first.details["versions_added"], second.details["versions_added"]) == ([1, 2], [])
    assert second.details["versions_unchanged"] == [1, 2]


def test_a_failed_load_leaves_no_audit_entry(demo_card: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[card]\nkey = "standard"\n[[versions]]\neffective_from = "2026-01-01T00:00:00Z"\n')
    with pytest.raises(ValidationError), unit_of_work(demo_card, write=True) as session:
        load_rate_card_file_audited(session, bad, at=NOW, actor="cli:ops")
    assert len(_audit(demo_card, "rates.load")) == 1


def test_rollback_adds_a_version_with_the_earlier_prices(demo_card: Engine) -> None:
    with unit_of_work(demo_card, write=True) as session:
        report = rollback_rate_card(
            session, card_key="standard", to_version=1, effective_from=FUTURE, at=NOW, actor="cli:ops"
        )
    assert (report.version_added, report.restored_version) == (3, 1)
    with unit_of_work(demo_card) as session:
        one, three = _version(session, 1), _version(session, 3)
        assert three.effective_from == FUTURE
        assert three.source_sha256 == one.source_sha256
        assert _prices(session, three.id) == _prices(session, one.id)  # tiers included
        assert _version(session, 2).effective_from < FUTURE  # nothing before it changed
        book = load_rate_book(session)
        assert book.version_starts(one.rate_card_id)[-1] == FUTURE
        sheet = price_sheet(session, "acc_h", at=NOW)
        assert sheet.current.version == 2 and [v.version for v in sheet.upcoming] == [3]
        assert [v.version for v in sheet.past] == [1] and sheet.until(
            sheet.past[0]
        ) == one.effective_from.replace(month=10, day=8)
    (entry,) = _audit(demo_card, "rates.rollback")
    assert entry.actor == "cli:ops" and entry.created_at == NOW
    assert entry.details["restored_version"] == 1 and entry.details["version_added"] == 3
    assert entry.details["effective_from"] == FUTURE.isoformat()


def test_the_same_rollback_twice_adds_one_version(demo_card: Engine) -> None:
    for _ in range(2):
        with unit_of_work(demo_card, write=True) as session:
            report = rollback_rate_card(
                session, card_key="standard", to_version=1, effective_from=FUTURE, at=NOW, actor="cli:ops"
            )
    assert report.version_added is None
    with unit_of_work(demo_card) as session:
        assert _version(session, 4) is None


@pytest.mark.parametrize("effective_from", [NOW - timedelta(days=1), NOW])
def test_a_retroactive_rollback_is_refused(demo_card: Engine, effective_from: datetime) -> None:
    with unit_of_work(demo_card, write=True) as session, pytest.raises(ValidationError) as caught:
        rollback_rate_card(
            session, card_key="standard", to_version=1, effective_from=effective_from, at=NOW, actor="cli:ops"
        )
    assert (caught.value.code, caught.value.field) == ("in_past", "from")
    assert _audit(demo_card, "rates.rollback") == []


def test_a_rollback_before_usage_already_rated_is_refused(demo_card: Engine) -> None:
    soon = NOW + timedelta(hours=2)
    event = {
        "event_id": "ahead",
        "account_id": "acc_h",
        "meter": "input_tokens",
        "quantity": 10,
        "timestamp": (NOW + timedelta(hours=3)).isoformat(),
        "dimensions": {"model": "atlas-large"},
    }
    with unit_of_work(demo_card, write=True) as session:
        assert ingest_events(session, [event], at=NOW).accepted == 1
    with unit_of_work(demo_card, write=True) as session, pytest.raises(ValidationError) as caught:
        rollback_rate_card(
            session, card_key="standard", to_version=1, effective_from=soon, at=NOW, actor="cli:ops"
        )
    assert (caught.value.code, caught.value.field) == ("before_rated_usage", "from")


def test_an_unknown_version_or_card_is_not_found(demo_card: Engine) -> None:
    with unit_of_work(demo_card, write=True) as session:
        with pytest.raises(NotFound) as version:
            rollback_rate_card(
                session, card_key="standard", to_version=9, effective_from=FUTURE, at=NOW, actor="cli:ops"
            )
        with pytest.raises(NotFound) as card:
            rollback_rate_card(
                session, card_key="nope", to_version=1, effective_from=FUTURE, at=NOW, actor="cli:ops"
            )
    assert version.value.field == "to" and "1, 2" in version.value.message
    assert card.value.field == "card"


def test_the_operator_is_the_actor_flag_else_user() -> None:
    assert operator_actor("dana", env={"USER": "root"}) == "cli:dana"
    assert operator_actor(None, env={"USER": "root"}) == "cli:root"
    assert operator_actor(None, env={"LOGNAME": "ops"}) == "cli:ops"
    assert operator_actor(None, env={}).startswith("cli")  # the process's login name, if any
    for bad in ("", "  ", "bad\udc80name", "x" * 201):
        with pytest.raises(ValidationError) as caught:
            operator_actor(bad, env={})
        assert caught.value.field == "actor"
