"""Small, explicit test data for the portal tests, made through core functions only."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.accounts import add_member, create_account
from core.db import unit_of_work
from core.ledger import grant_credits
from core.metering import ingest_events
from core.money import credits_to_nanos
from core.rating import load_rate_card

RATE_CARD = {
    "meters": [
        {
            "name": "input_tokens",
            "display_name": "Input tokens",
            "unit": "token",
            "dimensions": ["model", "project", "api_key"],
        },
        {"name": "requests", "display_name": "Requests", "unit": "request", "dimensions": ["project"]},
    ],
    "card": {"key": "standard", "name": "Standard pay-as-you-go"},
    "versions": [
        {
            "effective_from": "2026-01-01T00:00:00Z",
            "notes": "Launch prices",
            "prices": [
                {"meter": "input_tokens", "per": 1_000_000, "price": "3.00"},
                {"meter": "input_tokens", "model": "atlas-large", "per": 1_000_000, "price": "10.00"},
                {"meter": "requests", "price": "0.01"},
            ],
        },
        {
            "effective_from": "2027-01-01T00:00:00Z",
            "notes": "New year prices",
            "prices": [
                {"meter": "input_tokens", "per": 1_000_000, "price": "2.50"},
                {"meter": "requests", "price": "0.01"},
            ],
        },
    ],
}

ALICE = "alice@acme.test"  # owner of Acme, viewer of Globex
BOB = "bob@borealis.test"  # owner of Borealis only
VIVIAN = "vivian@acme.test"  # viewer of Acme
NOBODY = "nobody@example.test"  # signed in, member of nothing


def seed_accounts(engine: Engine, *, at: datetime) -> None:
    """Three accounts on the standard card, members, and grants (no usage)."""
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, RATE_CARD, at=at, allow_backdated=True)
        # No default alert rules: the page tests start from an empty Alerts page (the defaults
        # have their own test, tests/app/test_alerts_expiring.py).
        quiet = {"rate_card_key": "standard", "default_alerts": False}
        create_account(session, account_id="acc_acme", name="Acme Robotics", at=at, **quiet)
        create_account(session, account_id="acc_borealis", name="Borealis Bank", at=at, **quiet)
        create_account(
            session, account_id="acc_globex", name="Globex Labs", at=at, timezone="America/New_York", **quiet
        )
        add_member(session, account_id="acc_acme", email=ALICE, role="owner", at=at)
        add_member(session, account_id="acc_globex", email=ALICE, role="viewer", at=at)
        add_member(session, account_id="acc_acme", email=VIVIAN, role="viewer", at=at)
        add_member(session, account_id="acc_borealis", email=BOB, role="owner", at=at)
        grant_credits(
            session,
            account_id="acc_acme",
            amount_nanos=credits_to_nanos("100"),
            source="purchased",
            cost_basis_cents=10_000,
            at=at - timedelta(days=10),
            description="Top-up",
        )
        grant_credits(
            session,
            account_id="acc_acme",
            amount_nanos=credits_to_nanos("25"),
            source="promotional",
            at=at - timedelta(days=10),
            expires_at=at + timedelta(days=5),
            description="Welcome credits",
        )
        grant_credits(
            session,
            account_id="acc_borealis",
            amount_nanos=credits_to_nanos("777"),
            source="purchased",
            cost_basis_cents=77_700,
            at=at - timedelta(days=3),
            description="Borealis top-up",
        )


def event(
    event_id: str, account_id: str, meter: str, quantity: int, when: datetime, **dimensions: str
) -> dict[str, object]:
    return {
        "event_id": event_id,
        "account_id": account_id,
        "meter": meter,
        "quantity": quantity,
        "timestamp": when.isoformat(),
        "dimensions": dimensions,
    }


def seed_usage(engine: Engine, *, at: datetime) -> None:
    """A few days of usage for Acme and Borealis, through the real ingestion path."""
    # "Today" stays today even in the first half hour of a UTC day.
    earlier_today = max(at - timedelta(minutes=30), at.replace(hour=0, minute=0, second=0, microsecond=0))
    events = [
        # Acme: 2M input tokens on atlas-small today ($6.00), 1M on atlas-large yesterday ($10.00),
        # 300 requests two days ago ($3.00).
        event(
            "a1",
            "acc_acme",
            "input_tokens",
            2_000_000,
            earlier_today,
            model="atlas-small",
            project="chatbot",
            api_key="key_1",
        ),
        event(
            "a2",
            "acc_acme",
            "input_tokens",
            1_000_000,
            at - timedelta(days=1),
            model="atlas-large",
            project="search",
            api_key="key_2",
        ),
        event("a3", "acc_acme", "requests", 300, at - timedelta(days=2), project="chatbot"),
        # Borealis: 9M tokens ($27.00): must never show up for Acme's members.
        event(
            "b1",
            "acc_borealis",
            "input_tokens",
            9_000_000,
            at - timedelta(hours=2),
            model="atlas-small",
            project="vault",
            api_key="key_b",
        ),
    ]
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(session, events, at=at, source="seed")
    assert not result.to_dict().get("rejected"), result.to_dict()
