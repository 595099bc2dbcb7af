"""Clocks: the core never reads the wall clock itself; callers pass one in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def fixed_clock(at: datetime) -> Clock:
    """A clock stuck at ``at`` (tests, seeding history)."""
    if at.tzinfo is None:
        raise ValueError("fixed_clock needs an aware datetime")
    return lambda: at
