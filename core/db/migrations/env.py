"""Alembic environment: migrations run on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic import context

from core.db import models  # noqa: F401  (registers the tables on Base.metadata)
from core.db.base import Base
from core.db.engine import make_engine
from core.db.schema import include_object_for

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
        include_object=include_object_for(connection.dialect.name),
    )
    if not sqlite:
        with context.begin_transaction():
            context.run_migrations()
        return
    # SQLite alters a table by copying it and dropping the old one, which a referenced table's
    # foreign keys forbid while they are enforced; and PRAGMA foreign_keys cannot change inside a
    # transaction. So, as SQLite's own procedure for schema changes says: off before the
    # migrations' transaction, PRAGMA foreign_key_check before it commits, on again after.
    driver = connection.connection.driver_connection
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        with context.begin_transaction():
            context.run_migrations()
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"foreign keys broken by the migration: {broken[:5]}")
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; give a DATABASE_URL")
run_migrations_online()
