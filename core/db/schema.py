"""What the schema comparison (``alembic`` autogenerate, tests/core/db/test_migrations.py) looks at.

PostgreSQL's month partitions of ``usage_events`` and ``usage_event_keys`` are tables the
models do not declare (``core.metering.partitions`` makes them), and a few indexes exist on
one database only (``Index(..., info={"only_on": "sqlite"})``, created there by ``ddl_if``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

PARTITION_CHILD = re.compile(r"^(usage_events|usage_event_keys)_(p\d{4}_\d{2}|default)$")


def is_partition_child(name: str | None) -> bool:
    return bool(name and PARTITION_CHILD.match(name))


def include_object_for(dialect_name: str) -> Callable[..., bool]:
    """An ``include_object`` hook for ``dialect_name``: skips partition children and foreign indexes."""

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and reflected and compare_to is None and is_partition_child(name):
            return False
        if type_ == "index" and not reflected:
            only_on = obj.info.get("only_on")
            if only_on is not None and only_on != dialect_name:
                return False
        return True

    return include_object
