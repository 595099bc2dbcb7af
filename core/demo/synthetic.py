"""Synthetic accounts for scale: ``meterline demo seed --accounts N`` (the support search benchmark).

Each account is made through the real commands: ``create_account``, ``add_member``,
``grant_credits`` (a promotional starter grant) and ``ingest_events`` (a few events a day
for ``days`` days, two API keys, sent in chunks). Ids continue after the synthetic
accounts already there, so running it twice adds more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time

from sqlalchemy import Engine, func, select

from core.accounts import add_member, create_account
from core.db import unit_of_work
from core.db.models import Account, RateCard
from core.demo.seed import dated_rate_card
from core.errors import ValidationError
from core.ledger.service import grant_credits
from core.metering import ingest_events
from core.money import credits_to_nanos
from core.rating import load_rate_card

PREFIX = "acc_syn_"
CARD_KEY = "standard"
CHUNK_EVENTS = 2_000
MAX_ACCOUNTS = 1_000_000
MODELS = ("atlas-mini", "atlas-pro")


@dataclass(frozen=True)
class SyntheticRun:
    accounts: int
    events: int
    seconds: float


def account_id(index: int) -> str:
    return f"{PREFIX}{index:06d}"


def api_key(index: int, key: int) -> str:
    return f"sk_syn{index:06d}_{key}"


def _next_index(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        last = session.scalar(select(func.max(Account.id)).where(Account.id.like(PREFIX + "%")))
    return 0 if last is None else int(last.removeprefix(PREFIX)) + 1


def _ensure_card(engine: Engine, *, days: int, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        if session.scalar(select(RateCard.id).where(RateCard.key == CARD_KEY)) is None:
            first_day = datetime.combine((now - timedelta(days=days)).date(), clock_time(0), tzinfo=UTC)
            load_rate_card(session, dated_rate_card(first_day, now), at=first_day - timedelta(days=10))


def seed_synthetic_accounts(
    engine: Engine,
    *,
    count: int,
    now: datetime,
    days: int = 90,
    events_per_day: int = 2,
    progress: bool = False,
) -> SyntheticRun:
    """Add ``count`` accounts, each with an owner, a starter grant and ``days`` days of usage."""
    if not 0 < count <= MAX_ACCOUNTS:
        raise ValidationError(f"--accounts must be 1 to {MAX_ACCOUNTS:,}", field="accounts")
    if not 0 <= days <= 400 or not 1 <= events_per_day <= 100:
        raise ValidationError("days must be 0 to 400 and events per day 1 to 100", field="days")
    started = time.perf_counter()
    _ensure_card(engine, days=days, now=now)
    first = _next_index(engine)
    indexes = range(first, first + count)
    setup_at = datetime.combine((now - timedelta(days=days + 1)).date(), clock_time(0), tzinfo=UTC)
    for start in range(0, count, 500):
        with unit_of_work(engine, write=True) as session:
            for index in indexes[start : start + 500]:
                create_account(
                    session,
                    account_id=account_id(index),
                    name=f"Synthetic {index:06d} Ltd",
                    at=setup_at,
                    rate_card_key=CARD_KEY,
                )
                add_member(
                    session,
                    account_id=account_id(index),
                    email=f"owner@syn{index:06d}.example",
                    role="owner",
                    at=setup_at,
                )
                grant_credits(
                    session,
                    account_id=account_id(index),
                    amount_nanos=credits_to_nanos(1_000),
                    source="promotional",
                    at=setup_at,
                    description="Starter credits",
                )
    events = 0
    day_range: range | object = range(days, 0, -1)
    if progress:
        from tqdm import tqdm

        day_range = tqdm(day_range, desc="synthetic usage", unit=" days", disable=None)
    for days_ago in day_range:  # type: ignore[attr-defined]
        day_at = datetime.combine((now - timedelta(days=days_ago)).date(), clock_time(12), tzinfo=UTC)
        batch: list[dict[str, object]] = []
        for index in indexes:
            for n in range(events_per_day):
                batch.append(
                    {
                        "event_id": f"syn-{index}-{days_ago}-{n}",
                        "account_id": account_id(index),
                        "meter": "input_tokens",
                        "quantity": 1_000 + (index * 7 + days_ago * 13 + n) % 50_000,
                        "timestamp": (day_at + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
                        "dimensions": {
                            "model": MODELS[n % 2],
                            "project": "default",
                            "api_key": api_key(index, n % 2),
                        },
                    }
                )
            if len(batch) >= CHUNK_EVENTS:
                events += _send(engine, batch, day_at)
                batch = []
        if batch:
            events += _send(engine, batch, day_at)
    return SyntheticRun(count, events, time.perf_counter() - started)


def _send(engine: Engine, batch: list[dict[str, object]], at: datetime) -> int:
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(session, batch, at=at + timedelta(hours=1), source="seed")
    if result.rejected:
        raise ValidationError(f"synthetic events rejected: {result.rejected[:3]}", field="events")
    return result.accepted
