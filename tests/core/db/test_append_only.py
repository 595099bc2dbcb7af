"""The audit log is append-only where it is stored, on SQLite and PostgreSQL: database triggers
refuse raw UPDATE and DELETE (INSERT works), the session refuses bulk ORM statements before they
reach the database, and ``meterline db upgrade`` creates the triggers. The ledger is refused edits
in the ORM (one by one and in bulk)."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from core.cli import main
from core.db import unit_of_work
from core.db.append_only import AppendOnlyViolation
from core.db.migrate import alembic_config
from core.db.models import Account, AuditLog, LedgerEntry
from core.ledger import grant_credits


def _insert_raw(engine: Engine, now: datetime, reason: str = "outage on Nov 19") -> int:
    at = now.replace(tzinfo=None) if engine.dialect.name == "sqlite" else now
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_log (actor, action, account_id, reason, details, created_at) "
                "VALUES ('agent@meterline.test', 'support.grant_credits', 'acc_a', :reason, '{}', :at)"
            ),
            {"reason": reason, "at": at},
        )
        return int(connection.execute(text("SELECT max(id) FROM audit_log")).scalar_one())


def _reasons(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT reason FROM audit_log ORDER BY id")).scalars())


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET reason = 'nothing happened' WHERE id = :id",
        "UPDATE audit_log SET details = '{}'",
        "DELETE FROM audit_log WHERE id = :id",
        "DELETE FROM audit_log",
    ],
)
def test_raw_sql_cannot_rewrite_or_erase_an_audit_entry(
    engine: Engine, now: datetime, statement: str
) -> None:
    entry_id = _insert_raw(engine, now)
    with pytest.raises(IntegrityError, match="audit_log is append-only"), engine.begin() as connection:
        connection.execute(text(statement), {"id": entry_id})
    assert _reasons(engine) == ["outage on Nov 19"]


def test_raw_sql_and_the_orm_still_append_audit_entries(engine: Engine, now: datetime) -> None:
    _insert_raw(engine, now, reason="first")
    with unit_of_work(engine, write=True) as session:
        session.add(AuditLog(actor="ops@meterline.test", action="ops.note", reason="second", created_at=now))
    _insert_raw(engine, now, reason="third")
    assert _reasons(engine) == ["first", "second", "third"]


@pytest.mark.parametrize(
    "statement",
    [
        update(AuditLog).values(reason="nothing happened"),
        update(AuditLog).where(AuditLog.account_id == "acc_a").values(details={}),
        delete(AuditLog),
        delete(AuditLog).where(AuditLog.created_at < func.now()),
        update(AuditLog.__table__).values(reason="core statement"),
        delete(AuditLog.__table__),
        update(aliased(AuditLog, name="renamed")).values(reason="aliased"),
        delete(aliased(AuditLog, name="renamed")),
    ],
    ids=[
        "update",
        "update_where",
        "delete",
        "delete_where",
        "core_update",
        "core_delete",
        "alias_update",
        "alias_delete",
    ],
)
def test_bulk_statements_on_the_audit_log_are_refused_by_the_session(
    engine: Engine, now: datetime, statement: object
) -> None:
    _insert_raw(engine, now)
    refused = pytest.raises(AppendOnlyViolation, match="audit_log is append-only")
    with refused, unit_of_work(engine, write=True) as session:
        session.execute(statement)  # type: ignore[call-overload]
    assert _reasons(engine) == ["outage on Nov 19"]


def test_legacy_query_delete_of_the_audit_log_is_refused(engine: Engine, now: datetime) -> None:
    _insert_raw(engine, now)
    with pytest.raises(AppendOnlyViolation), unit_of_work(engine, write=True) as session:
        session.query(AuditLog).filter(AuditLog.account_id == "acc_a").delete()
    assert _reasons(engine) == ["outage on Nov 19"]


def test_bulk_statements_on_other_tables_still_run(engine: Engine, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        session.add(Account(id="acc_a", name="A", created_at=now))
    with unit_of_work(engine, write=True) as session:
        session.execute(update(Account).where(Account.id == "acc_a").values(name="Renamed"))
    with unit_of_work(engine) as session:
        assert session.get(Account, "acc_a").name == "Renamed"  # type: ignore[union-attr]


def test_ledger_entries_cannot_be_edited_or_deleted_through_the_orm(engine: Engine, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        session.add(Account(id="acc_a", name="A", created_at=now))
    with unit_of_work(engine, write=True) as session:
        grant_credits(session, account_id="acc_a", amount_nanos=5, source="goodwill", at=now)
    with pytest.raises(AppendOnlyViolation), unit_of_work(engine, write=True) as session:
        session.scalars(select(LedgerEntry)).one().memo = "rewritten"
    with pytest.raises(AppendOnlyViolation), unit_of_work(engine, write=True) as session:
        session.delete(session.scalars(select(LedgerEntry)).one())
    for statement in (update(LedgerEntry).values(amount_nanos=6), delete(LedgerEntry)):
        refused = pytest.raises(AppendOnlyViolation, match="ledger_entries is append-only")
        with refused, unit_of_work(engine, write=True) as session:
            session.execute(statement)
    with unit_of_work(engine) as session:
        assert [(e.amount_nanos, e.memo) for e in session.scalars(select(LedgerEntry))] == [(5, "")]


def _trigger_names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            sql = (
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgrelid = 'audit_log'::regclass AND tgenabled <> 'D'"
            )
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        return set(connection.execute(text(sql)).scalars())


def test_db_upgrade_creates_the_audit_triggers(
    db_url: str, engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    command.downgrade(alembic_config(db_url), "0007")  # the last revision without the triggers
    engine.dispose()
    assert _trigger_names(engine) == set()
    monkeypatch.setenv("DATABASE_URL", db_url)

    assert main(["db", "upgrade"]) == 0

    engine.dispose()
    expected = (
        {"audit_log_append_only"}
        if engine.dialect.name == "postgresql"
        else {
            "audit_log_no_update",
            "audit_log_no_delete",
        }
    )
    assert _trigger_names(engine) == expected
    entry_id = _insert_raw(engine, now)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": entry_id})
