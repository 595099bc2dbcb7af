"""Ingestion limits, with the environment settings that change them."""

from __future__ import annotations

import os
from datetime import timedelta

from core.errors import ValidationError
from core.money import TOTAL_CEILING as TOTAL_CEILING

DEFAULT_MAX_LATENESS_DAYS = 35
MAX_FUTURE = timedelta(hours=24)
# One call is one transaction: bound it (the HTTP API allows 5,000 per request; the CLI
# and the demo seeder send chunks of their own).
MAX_EVENTS_PER_CALL = 100_000
MAX_EVENT_ID_LENGTH = 128
MAX_DIMENSIONS = 32
MAX_DIMENSION_KEY_LENGTH = 64
MAX_DIMENSION_VALUE_LENGTH = 128

# Ceilings that make overflow impossible rather than unlikely (README "Limits"). Every
# stored sum (a rollup row's quantity, amount and event count, a late-usage amount, an
# account's balance) stays within ±TOTAL_CEILING; one batch adds at most TOTAL_CEILING to
# any of them, so the database's 64-bit addition (at most 8e18 < 2**63 - 1 ≈ 9.22e18)
# cannot overflow, and a result past the ceiling is refused (a CHECK constraint on the
# rollups, an exact comparison in Python for balances) and reported per event.
MAX_QUANTITY = 10**18  # units per event
MAX_EVENT_AMOUNT_NANOS = 10**18  # rated amount per event: one billion credits
MAX_BATCH_AMOUNT_NANOS = 10**18  # rated amount of one batch for one account (one ledger debit)
# TOTAL_CEILING (4e18) lives in core.money, beside the money types: the ledger needs it too.


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


# How long after an event id was received it is still recognised as a duplicate, beyond the
# lateness limit: an event may be dated up to MAX_FUTURE (1 day) after its arrival, so a resend
# the lateness limit lets in was first received at most lateness + 1 day ago; one more day of
# margin. Resent later than this, an event is older than the lateness limit and refused anyway
# (README "Duplicates"); a backfill with a larger lateness only recognises exact resends.
DEDUPE_MARGIN = timedelta(days=2)


def dedupe_window() -> timedelta:
    """How long an event id is kept for deduplication: ``METERLINE_MAX_LATENESS_DAYS`` + 2 days."""
    return max_lateness() + DEDUPE_MARGIN
