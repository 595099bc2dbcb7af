"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``TEST_DATABASE_URL`` (an admin URL on a server where this user
may create databases; ``.ci/run`` and ``make test`` set it when a server answers).
Each xdist worker gets a database of its own, migrated once; tables are emptied
between tests. Without a server the PostgreSQL half is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from core.db.base import Base
from core.db.engine import make_engine
from core.db.migrate import upgrade
from tests import stripe_contract
from tests.stripe_contract import Journal

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _postgres_admin_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url:
        return None
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy (faster than migrating again)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str]:
    """A migrated PostgreSQL database for this worker, dropped at the end."""
    admin = _postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL half skipped: set TEST_DATABASE_URL (make test does when a server answers)")
    name = f"meterline_t_{worker_id}_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin_engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin_engine.dispose()


def _empty_postgres(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        # A background thread of an earlier test (alert evaluation, authorize snapshots, the
        # auto-recharge pool) may still hold a connection to this database: end it, or the
        # TRUNCATE below and its queries deadlock.
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, migrated database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "meterline.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    _empty_postgres(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session", autouse=True)
def _stripe_providers_recorded() -> Iterator[None]:
    with stripe_contract.recording_providers():
        yield


@pytest.fixture(autouse=True)
def stripe_requests(request: pytest.FixtureRequest, _stripe_providers_recorded: None) -> Iterator[Journal]:
    """What every ``StripeProvider`` sent during the test; checked against the SDK's request types
    (and for idempotency keys reused with other parameters) when it ends (tests/stripe_contract.py)."""
    journal = stripe_contract.CONTRACT.begin(request.node.nodeid)
    yield journal
    stripe_contract.CONTRACT.end()
    problems = journal.problems()
    if problems:
        pytest.fail(
            f"requests Stripe's API {stripe_contract.API_VERSION} would refuse:\n  " + "\n  ".join(problems),
            pytrace=False,
        )
