"""A hand-built November 2026 for the margin tests: a rate card, a cost card that changes on
Nov 15 00:00 UTC, and usage through the real ingestion path (so the hourly rollup is real)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from core.accounts import create_account
from core.costs import load_cost_card
from core.db import unit_of_work
from core.metering import ingest_events
from core.rating import load_rate_card

SET_UP = datetime(2026, 9, 1, tzinfo=UTC)
INGESTED = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)

RATE_CARD = {
    "meters": [
        {"name": "input_tokens", "unit": "token", "dimensions": ["model", "project"]},
        {"name": "requests", "display_name": "Requests", "unit": "request", "dimensions": ["model"]},
    ],
    "card": {"key": "standard", "name": "Standard"},
    "versions": [
        {
            "effective_from": "2026-10-01T00:00:00Z",
            "prices": [
                {"meter": "input_tokens", "per": 1_000_000, "price": "3.00"},
                {"meter": "input_tokens", "model": "atlas-mini", "per": 1_000_000, "price": "0.50"},
                {"meter": "requests", "price": "0.01"},
            ],
        }
    ],
}

COST_CARD = {
    "card": {"key": "internal", "name": "Cost of serving"},
    "versions": [
        {
            "effective_from": "2026-10-01T00:00:00Z",
            "notes": "List prices",
            "costs": [
                {"meter": "input_tokens", "per": 1_000_000, "cost": "1.00"},
                {"meter": "input_tokens", "model": "atlas-mini", "per": 1_000_000, "cost": "0.20"},
            ],
        },
        {
            "effective_from": "2026-11-15T00:00:00Z",
            "notes": "atlas-large dearer to serve",
            "costs": [
                {"meter": "input_tokens", "per": 1_000_000, "cost": "1.50"},
                {"meter": "input_tokens", "model": "atlas-mini", "per": 1_000_000, "cost": "0.20"},
            ],
        },
    ],
}


def _event(event_id: str, meter: str, quantity: int, when: datetime, model: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "account_id": "acc_m",
        "meter": meter,
        "quantity": quantity,
        "timestamp": when.isoformat(),
        "dimensions": {"model": model},
    }


EVENTS = [
    _event("oct", "input_tokens", 5_000_000, datetime(2026, 10, 31, 23, 30, tzinfo=UTC), "atlas-large"),
    _event("l1", "input_tokens", 2_000_000, datetime(2026, 11, 10, 9, 0, tzinfo=UTC), "atlas-large"),
    _event("l2", "input_tokens", 1_000_000, datetime(2026, 11, 14, 23, 30, tzinfo=UTC), "atlas-large"),
    _event("l3", "input_tokens", 1_000_000, datetime(2026, 11, 15, 0, 10, tzinfo=UTC), "atlas-large"),
    _event("l4", "input_tokens", 2_000_000, datetime(2026, 11, 20, 12, 0, tzinfo=UTC), "atlas-large"),
    _event("m1", "input_tokens", 4_000_000, datetime(2026, 11, 12, 8, 0, tzinfo=UTC), "atlas-mini"),
    _event("r1", "requests", 300, datetime(2026, 11, 5, 10, 0, tzinfo=UTC), "atlas-large"),
    _event("dec", "input_tokens", 7_000_000, datetime(2026, 12, 1, 0, 30, tzinfo=UTC), "atlas-large"),
]


def build_month(engine: Engine, *, with_costs: bool = True) -> None:
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, RATE_CARD, at=SET_UP)
        if with_costs:
            load_cost_card(session, COST_CARD, at=SET_UP)
        create_account(session, account_id="acc_m", name="Margin Co", at=SET_UP, rate_card_key="standard")
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(session, EVENTS, at=INGESTED, source="cli")
    assert not result.rejected, result.rejected
