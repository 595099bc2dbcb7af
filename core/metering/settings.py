"""Ingestion limits, with the environment settings that change them."""

from __future__ import annotations

import os
from datetime import timedelta

from core.errors import ValidationError

DEFAULT_MAX_LATENESS_DAYS = 35
MAX_FUTURE = timedelta(hours=24)
# One call is one transaction: bound it (the HTTP API allows 5,000 per request; the CLI
# and the demo seeder send chunks of their own).
MAX_EVENTS_PER_CALL = 100_000
MAX_EVENT_ID_LENGTH = 128
MAX_DIMENSIONS = 32
MAX_DIMENSION_KEY_LENGTH = 64
MAX_DIMENSION_VALUE_LENGTH = 128
MAX_QUANTITY = 2**63 - 1


def max_lateness() -> timedelta:
    """How old an event may be when it arrives (``METERLINE_MAX_LATENESS_DAYS``, default 35)."""
    raw = os.environ.get("METERLINE_MAX_LATENESS_DAYS", "").strip()
    if not raw:
        return timedelta(days=DEFAULT_MAX_LATENESS_DAYS)
    try:
        days = int(raw)
    except ValueError:
        days = -1
    if days <= 0:
        raise ValidationError(
            f"METERLINE_MAX_LATENESS_DAYS must be a positive whole number of days, not {raw!r}",
            code="bad_setting",
            field="METERLINE_MAX_LATENESS_DAYS",
        )
    return timedelta(days=days)
