"""Tables whose rows are never changed or removed once written.

Three layers refuse an edit, so that neither a bug in the app nor a careless bulk statement
rewrites history:

- ORM instance events refuse to flush a changed or deleted row of a protected class;
- a ``do_orm_execute`` listener on every Session refuses bulk ``update()`` and ``delete()``
  statements aimed at a protected table (ORM or Core, before they reach the database);
- database triggers refuse ``UPDATE`` and ``DELETE`` on the table itself, for raw SQL too
  (migration 0009: ``audit_log``). They raise an integrity error on both databases.

``TRUNCATE`` on PostgreSQL is not refused (row triggers do not fire on it): the test suite
empties its databases with it, and whoever may truncate a table may drop a trigger too. On
SQLite, a migration that rebuilds a protected table (Alembic's batch mode) drops its triggers
with the old table and must create them again.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

_PROTECTED_TABLES: set[str] = set()

_Model = TypeVar("_Model", bound=type)


class AppendOnlyViolation(RuntimeError):
    """Raised when code tries to change or delete a row of an append-only table (a bug, never user input)."""


def protect(cls: _Model) -> _Model:
    """Refuse, in the ORM, every update and delete of ``cls``'s rows, one by one or in bulk."""
    table: str = cls.__table__.name
    _PROTECTED_TABLES.add(table)

    @event.listens_for(cls, "before_update")
    def _refuse_update(_mapper: Any, _connection: Any, target: Any) -> None:
        raise AppendOnlyViolation(f"{table} is append-only: entry {target.id} cannot be edited")

    @event.listens_for(cls, "before_delete")
    def _refuse_delete(_mapper: Any, _connection: Any, target: Any) -> None:
        raise AppendOnlyViolation(f"{table} is append-only: entry {target.id} cannot be deleted")

    return cls


def is_protected(table_name: str) -> bool:
    return table_name in _PROTECTED_TABLES


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    table = getattr(table, "original", table)  # an alias of a table is the table
    name = getattr(table, "name", None)
    if name is not None and is_protected(name):
        verb = "UPDATE" if state.is_update else "DELETE"
        raise AppendOnlyViolation(f"{name} is append-only: a bulk {verb} of it is refused")
