"""Scratch billing databases for the ingest and latency benches: seeded once, cloned per run.

PostgreSQL: one template database is migrated and seeded (rate card, 20 accounts with a
grant each), and every run gets its own ``CREATE DATABASE … TEMPLATE`` copy (a fraction of
a second, against seconds for migrating), so each run starts from the same state. SQLite:
the seeded file is copied. Everything made here is dropped by ``ScratchDatabases.close``,
at the end: a ``DROP DATABASE`` waits for a checkpoint, which took up to 9 s on the shared
machine, so dropping after each run would cost more than the runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import tomllib
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get(
    "BENCH_ADMIN_URL", os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)
TOKEN = "bench-token"
ACCOUNTS = [f"acc_{i:02d}" for i in range(20)]
GRANT_CREDITS = 50

# Four meters: the bench shape uses the first three with model/project/api_key dimensions,
# the few-keys shape all four without dimensions.
CARD = """
[[meters]]
name = "input_tokens"
unit = "token"
dimensions = ["model", "project", "api_key"]
[[meters]]
name = "output_tokens"
unit = "token"
dimensions = ["model", "project", "api_key"]
[[meters]]
name = "requests"
unit = "request"
dimensions = ["model", "project", "api_key"]
[[meters]]
name = "cached_input_tokens"
unit = "token"
dimensions = ["model", "project", "api_key"]

[card]
key = "standard"
name = "Standard"

[[versions]]
effective_from = "2026-01-01T00:00:00Z"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "3.00"
[[versions.prices]]
meter = "input_tokens"
model = "atlas-mini"
per = 1_000_000
price = "0.50"
[[versions.prices]]
meter = "output_tokens"
per = 1_000_000
price = "15.00"
[[versions.prices]]
meter = "requests"
price = "0.001"
[[versions.prices]]
meter = "cached_input_tokens"
per = 1_000_000
price = "0.30"

[[versions]]
effective_from = "{change}"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "2.50"
[[versions.prices]]
meter = "output_tokens"
per = 1_000_000
price = "12.00"
[[versions.prices]]
meter = "requests"
price = "0.001"
[[versions.prices]]
meter = "cached_input_tokens"
per = 1_000_000
price = "0.25"
"""


def seed(url: str, now: datetime) -> None:
    """Migrate ``url`` and load the bench rate card, the 20 accounts and a grant for each."""
    from core.accounts import create_account
    from core.db import make_engine, unit_of_work
    from core.db.migrate import upgrade
    from core.ledger import grant_credits
    from core.money import NANOS_PER_CREDIT
    from core.rating import load_rate_card

    upgrade(url)
    engine = make_engine(url)
    change = (now - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        with unit_of_work(engine, write=True) as session:
            card = tomllib.loads(CARD.replace("{change}", change))
            load_rate_card(session, card, at=now, allow_backdated=True)
            for account_id in ACCOUNTS:
                create_account(
                    session, account_id=account_id, name=account_id, at=now, rate_card_key="standard"
                )
                grant_credits(
                    session,
                    account_id=account_id,
                    amount_nanos=GRANT_CREDITS * NANOS_PER_CREDIT,
                    source="promotional",
                    at=now,
                )
    finally:
        engine.dispose()


def _url_for(database: str) -> str:
    return (
        make_url(ADMIN_URL)
        .set(drivername="postgresql", database=database)
        .render_as_string(hide_password=False)
    )


def _drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ScratchDatabases:
    """Seeded databases for one bench run; ``close()`` drops (PostgreSQL) or deletes (SQLite) them all."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.prefix = f"meterline_bench_{uuid.uuid4().hex[:8]}"
        self.folder = Path(tempfile.mkdtemp(prefix="meterline-bench-"))
        self._admin: psycopg.Connection | None = None
        self._template: str | None = None
        self._sqlite_template: Path | None = None
        self._made: list[str] = []
        self._count = 0

    # PostgreSQL -------------------------------------------------------------------------

    @property
    def admin(self) -> psycopg.Connection:
        if self._admin is None:
            self._admin = psycopg.connect(ADMIN_URL, autocommit=True)
        return self._admin

    def postgres(self, label: str = "run") -> str:
        """A fresh seeded PostgreSQL database (``postgresql://`` URL), cloned from the template."""
        if self._template is None:
            template = f"{self.prefix}_template"
            self._create(template)
            seed(_url_for(template), self.now)
            self._template = template
        self._count += 1
        name = f"{self.prefix}_{self._count}_{label}"[:63]
        self._create(name, template=self._template)
        return _url_for(name)

    def _create(self, name: str, template: str | None = None) -> None:
        clause = f' TEMPLATE "{template}"' if template else ""
        self.admin.execute(f'CREATE DATABASE "{name}"{clause}')
        self._made.append(name)

    # SQLite -----------------------------------------------------------------------------

    def sqlite(self, label: str = "run") -> str:
        """A fresh seeded SQLite database (``sqlite:///`` URL), copied from the seeded file."""
        if self._sqlite_template is None:
            path = self.folder / "template.db"
            seed(f"sqlite:///{path}", self.now)
            self._sqlite_template = path
        self._count += 1
        path = self.folder / f"{self._count}_{label}.db"
        shutil.copyfile(self._sqlite_template, path)
        return f"sqlite:///{path}"

    def close(self) -> None:
        try:
            if self._made:
                began = time.perf_counter()
                # Concurrent drops share the checkpoint each one waits for.
                with ThreadPoolExecutor(max_workers=8) as pool:
                    list(pool.map(_drop_database, self._made))
                print(
                    f"dropped {len(self._made)} scratch databases in {time.perf_counter() - began:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
                self._made.clear()
        finally:
            if self._admin is not None:
                self._admin.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ScratchDatabases:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
