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
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object_for(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; give a DATABASE_URL")
run_migrations_online()
