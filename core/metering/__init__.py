"""Metering: validate, rate, store and roll up usage events, and debit the ledger once per batch."""

from core.metering.ingest import ingest_events
from core.metering.model import IngestResult, Rejection, ValidEvent
from core.metering.settings import MAX_EVENTS_PER_CALL, max_lateness
from core.metering.validation import MeterInfo, Window, content_hash, validate_event

__all__ = [
    "MAX_EVENTS_PER_CALL",
    "IngestResult",
    "MeterInfo",
    "Rejection",
    "ValidEvent",
    "Window",
    "content_hash",
    "ingest_events",
    "max_lateness",
    "validate_event",
]
