"""One seeded demo database per backend for the whole module (seeding takes seconds)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from core.db import make_engine
from core.db.migrate import upgrade
from core.demo import SeedStory, seed_demo
from tests.conftest import NOW, _postgres_admin_url


@dataclass(frozen=True)
class Seeded:
    engine: Engine
    story: SeedStory


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The demo story seeded at NOW into a database of its own (not shared with other tests)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("demo") / "demo.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
        yield Seeded(engine, seed_demo(engine, now=NOW))
        engine.dispose()
        return
    admin = _postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL half skipped: set TEST_DATABASE_URL (make test does when a server answers)")
    name = f"meterline_demo_{uuid.uuid4().hex[:10]}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        engine = make_engine(url)
        yield Seeded(engine, seed_demo(engine, now=NOW))
        engine.dispose()
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


@pytest.fixture
def sqlite_copy(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    path = tmp_path / "again.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()
