"""Engines and sessions.

``DATABASE_URL`` selects the database; the default is the embedded SQLite file
``var/meterline.db`` (WAL mode). ``postgresql://`` URLs use psycopg 3.

Sessions belong to the caller: one per HTTP request, button click or command.
On SQLite, a session opened with ``write=True`` starts with ``BEGIN IMMEDIATE`` so
that two writers queue on the database lock instead of failing half-way with
"database is locked"; readers use plain deferred transactions and never block
writers in WAL mode.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_SQLITE_PATH = Path("var") / "meterline.db"


def database_url(url: str | None = None) -> str:
    """The database to use: ``url``, else ``$DATABASE_URL``, else the embedded SQLite file."""
    url = url or os.environ.get("DATABASE_URL") or ""
    if not url:
        DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see the module doc).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (see ``database_url``) with this project's settings."""
    resolved = database_url(url)
    if resolved.startswith("sqlite"):
        if resolved.startswith("sqlite:///") and resolved != "sqlite:///:memory:":
            Path(resolved.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(resolved, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(resolved, **kwargs)


def is_postgres(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    ``write=True`` takes SQLite's write lock at the start (BEGIN IMMEDIATE); on
    PostgreSQL it changes nothing (writers lock the rows they move).
    """
    bind = engine.execution_options(sqlite_begin="IMMEDIATE") if write else engine
    with Session(bind, expire_on_commit=False) as session, session.begin():
        yield session
