"""What ingestion works with: a validated event, a rejection, and the result of a call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple


class ValidEvent(NamedTuple):
    """An event that passed validation; ``occurred_at`` is aware UTC.

    A named tuple, not a dataclass: ingestion makes one per event, and tuples are cheapest.
    """

    index: int  # position in the request
    event_id: str
    account_id: str
    meter_id: int
    quantity: int
    occurred_at: datetime
    dimensions: dict[str, str]
    content_hash: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the event at ``index`` was not accepted; ``field`` names the culprit."""

    index: int
    event_id: str | None
    field: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "event_id": self.event_id,
            "field": self.field,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True)
class IngestResult:
    """What one ``ingest_events`` call did; ``batch_id`` is None when nothing was accepted."""

    batch_id: int | None
    accepted: int
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    amount_nanos: int = 0  # rated total of the accepted events

    def to_dict(self) -> dict[str, object]:
        return {
            "batch_id": self.batch_id,
            "accepted": self.accepted,
            "duplicates": list(self.duplicates),
            "rejected": [r.to_dict() for r in self.rejected],
        }
