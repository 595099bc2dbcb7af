"""Waiting, without guessing with sleeps, until a worker thread is blocked on a PostgreSQL lock."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, text

TIMEOUT_S = 30


def wait_until_blocked_or_done(engine: Engine, worker: threading.Thread) -> None:
    """Return once ``worker`` has finished or another session of this database waits on a lock."""
    deadline = time.monotonic() + TIMEOUT_S
    with engine.connect() as conn:
        while worker.is_alive():
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar()
            conn.rollback()
            if waiting:
                return
            assert time.monotonic() < deadline, "the worker neither finished nor waited on a lock"
            time.sleep(0.01)
