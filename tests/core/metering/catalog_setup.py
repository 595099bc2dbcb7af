"""A small catalogue for metering tests: meters, a rate card with a price change, accounts."""

from __future__ import annotations

import tomllib
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from core.accounts import create_account
from core.db import unit_of_work
from core.ledger import grant_credits
from core.money import NANOS_PER_CREDIT
from core.rating import load_rate_card

# input_tokens: 3.00 per million until Nov 15, then 2.00; atlas-mini 0.50 throughout the first version.
# requests: 0.01 per request, flat.
CARD_TOML = """
[[meters]]
name = "input_tokens"
unit = "token"
dimensions = ["model", "project", "api_key"]

[[meters]]
name = "requests"
unit = "request"
dimensions = ["model"]

[[meters]]
name = "unpriced"
unit = "unit"

[card]
key = "standard"
name = "Standard"

[[versions]]
effective_from = "2026-10-01T00:00:00Z"
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
meter = "requests"
price = "0.01"

[[versions]]
effective_from = "2026-11-15T00:00:00Z"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "2.00"
[[versions.prices]]
meter = "requests"
price = "0.01"
"""

OLD_PER_MILLION_NANOS = 3 * NANOS_PER_CREDIT
NEW_PER_MILLION_NANOS = 2 * NANOS_PER_CREDIT
REQUEST_NANOS = NANOS_PER_CREDIT // 100


def seed_catalog(
    engine: Engine,
    at: datetime,
    *,
    accounts: tuple[str, ...] = ("acc_a", "acc_b"),
    grant_credits_each: int = 100,
    timezone: str = "UTC",
) -> None:
    """Meters, the standard card (two versions) and accounts on it, each with a grant."""
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, tomllib.loads(CARD_TOML), at=at, allow_backdated=True)
        for account_id in accounts:
            create_account(
                session,
                account_id=account_id,
                name=account_id,
                at=at,
                timezone=timezone,
                rate_card_key="standard",
                default_alerts=False,  # these tests set up the rules they are about
            )
            if grant_credits_each:
                grant_credits(
                    session,
                    account_id=account_id,
                    amount_nanos=grant_credits_each * NANOS_PER_CREDIT,
                    source="promotional",
                    at=at,
                )


def event(
    event_id: str,
    *,
    account_id: str = "acc_a",
    meter: str = "input_tokens",
    quantity: Any = 1_000_000,
    timestamp: str = "2026-11-20T11:00:00Z",
    dimensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "event_id": event_id,
        "account_id": account_id,
        "meter": meter,
        "quantity": quantity,
        "timestamp": timestamp,
    }
    if dimensions is not None:
        raw["dimensions"] = dimensions
    return raw
