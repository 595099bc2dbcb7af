"""Persistence: models, engines, sessions and migrations."""

from core.db.engine import database_url, is_postgres, make_engine, unit_of_work

__all__ = ["database_url", "is_postgres", "make_engine", "unit_of_work"]
