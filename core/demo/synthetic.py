"""Synthetic accounts for scale: ``meterline demo seed --accounts N`` (the support search benchmark).

Each account is made through the real commands: ``create_account``, ``add_member`` and
``grant_credits`` (a promotional starter grant of 1,000 credits), a thousand accounts per
transaction; its usage goes through ``ingest_events``. Ids continue after the synthetic
accounts already there, so running it twice adds more.

An account is drawn from a random generator seeded by its index (the same index always
gives the same account and days): a product (chat on ``atlas-mini`` or ``atlas-pro``,
embeddings on ``orbit-embed``, images on ``pixel-diffusion``), one to three projects, two
API keys, a daily volume spread over two orders of magnitude and a trend over the days.
Its gateway reports each day's usage in aggregate, once, for one of its projects and
keys: input and output tokens (chat), input tokens (embeddings) or images, with weekly
seasonality and noise. Every account has usage every day, one or two events.

Each day is sent as live traffic would send it, that day (23:00 UTC: nothing is late
usage), in batches of up to ``CHUNK_EVENTS`` events spanning a few thousand accounts
(never splitting an account's day: one ledger debit per account and day). Per account
and day, that debit, not the events, is most of the cost. 10,000 accounts x 90 days
(1.5 million events, 900,000 debits) took 269 s on SQLite and 310 s on PostgreSQL on two
cores (README, Benchmarks).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any

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
SEED = 2026
CHUNK_EVENTS = 10_000  # events per ingest call (one transaction), many accounts each
ACCOUNTS_PER_TRANSACTION = 1_000
MAX_ACCOUNTS = 1_000_000
MAX_DAYS = 400
STARTER_CREDITS = 1_000
SENT_AT = clock_time(23)  # each day's reports arrive that day (UTC): none is late usage
# Monday .. Sunday: busier on weekdays.
WEEKDAY_FACTOR = (1.0, 1.06, 1.1, 1.03, 0.9, 0.38, 0.32)
PROJECTS = ("default", "prod", "staging", "chatbot", "search", "evals", "support-bot", "docs")
# product -> (model, share of accounts, median input tokens a day; images a day for images).
# Not atlas-large: its tiered output price reads each account's monthly volume per batch,
# a query per account and day that cost 15 % of the seeding time for 5 % of the accounts.
PRODUCTS = {
    "chat-mini": ("atlas-mini", 0.6, 400_000),
    "chat-pro": ("atlas-pro", 0.1, 150_000),
    "embeddings": ("orbit-embed", 0.15, 2_000_000),
    "images": ("pixel-diffusion", 0.15, 40),
}


@dataclass(frozen=True)
class SyntheticRun:
    accounts: int
    events: int
    seconds: float


@dataclass
class _Profile:
    index: int
    rng: random.Random  # this account's own: its days do not depend on the other accounts
    product: str
    projects: tuple[str, ...]
    volume: float  # median units a day at the start (input tokens, or images)
    growth: float  # volume on the last day / volume on the first
    output_ratio: float  # output tokens per input token (chat)


def account_id(index: int) -> str:
    return f"{PREFIX}{index:06d}"


def api_key(index: int, key: int) -> str:
    return f"sk_syn{index:06d}_{key}"


def _profile(index: int) -> _Profile:
    rng = random.Random(f"{SEED}:{index}")
    product = rng.choices(list(PRODUCTS), weights=[share for _, share, _ in PRODUCTS.values()])[0]
    median = PRODUCTS[product][2]
    return _Profile(
        index=index,
        rng=rng,
        product=product,
        projects=tuple(rng.sample(PROJECTS, rng.choice((1, 1, 2, 3)))),
        volume=median * rng.lognormvariate(0, 1.0),
        growth=rng.uniform(0.6, 1.8),
        output_ratio=rng.uniform(0.05, 0.3),
    )


def _day_events(profile: _Profile, day: datetime, progress: float) -> Iterator[dict[str, object]]:
    """One account's usage report for one day (``progress`` 0 on the first, 1 on the last)."""
    rng = profile.rng
    dims = {
        "model": PRODUCTS[profile.product][0],
        "project": rng.choice(profile.projects),
        "api_key": api_key(profile.index, rng.randrange(2)),
    }
    stamp = (day + timedelta(hours=rng.randrange(23))).strftime("%Y-%m-%dT%H:00:00Z")
    base = {"account_id": account_id(profile.index), "timestamp": stamp, "dimensions": dims}
    tag = f"syn-{profile.index}-{day:%Y%m%d}"
    trend = 1 + (profile.growth - 1) * progress
    noise = rng.lognormvariate(0, 0.25)
    amount = max(1, round(profile.volume * trend * WEEKDAY_FACTOR[day.weekday()] * noise))
    if profile.product == "images":
        yield {**base, "event_id": f"{tag}-img", "meter": "images", "quantity": amount}
        return
    yield {**base, "event_id": f"{tag}-in", "meter": "input_tokens", "quantity": amount}
    if profile.product != "embeddings":
        tokens_out = max(1, round(amount * profile.output_ratio))
        yield {**base, "event_id": f"{tag}-out", "meter": "output_tokens", "quantity": tokens_out}


def _next_index(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        last = session.scalar(select(func.max(Account.id)).where(Account.id.like(PREFIX + "%")))
    return 0 if last is None else int(last.removeprefix(PREFIX)) + 1


def _ensure_card(engine: Engine, *, days: int, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        if session.scalar(select(RateCard.id).where(RateCard.key == CARD_KEY)) is None:
            first_day = datetime.combine((now - timedelta(days=days)).date(), clock_time(0), tzinfo=UTC)
            load_rate_card(session, dated_rate_card(first_day, now), at=first_day - timedelta(days=10))


def _progress(total: int, desc: str, unit: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=None)


@contextmanager
def _collect_per_transaction() -> Iterator[None]:
    """Python's cyclic garbage collector off, ``_collected`` after each transaction instead.

    A batch makes tens of thousands of ORM objects that stay alive until its commit; the
    collector, set off by every 700 of them, scanned them again and again (a third of the
    CPU time of the usage). Restored as it was at the end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _collected() -> None:
    gc.collect(0)  # only what was made since the last one: the transaction's garbage


def seed_synthetic_accounts(
    engine: Engine,
    *,
    count: int,
    now: datetime,
    days: int = 90,
    progress: bool = False,
) -> SyntheticRun:
    """Add ``count`` accounts, each with an owner, a starter grant and ``days`` days of usage."""
    if not 0 < count <= MAX_ACCOUNTS:
        raise ValidationError(f"--accounts must be 1 to {MAX_ACCOUNTS:,}", field="accounts")
    if not 0 <= days <= MAX_DAYS:
        raise ValidationError(f"--days must be 0 to {MAX_DAYS}", field="days")
    started = time.perf_counter()
    _ensure_card(engine, days=days, now=now)
    first = _next_index(engine)
    indexes = range(first, first + count)
    setup_at = datetime.combine((now - timedelta(days=days + 1)).date(), clock_time(0), tzinfo=UTC)
    with _collect_per_transaction():
        _create_accounts(engine, indexes, at=setup_at, progress=progress)
        events = _add_usage(engine, indexes, days=days, now=now, progress=progress)
    return SyntheticRun(count, events, time.perf_counter() - started)


def _create_accounts(engine: Engine, indexes: range, *, at: datetime, progress: bool) -> None:
    """Each account with its owner and starter grant, ``ACCOUNTS_PER_TRANSACTION`` per transaction."""
    bar = _progress(len(indexes), "synthetic accounts", " accounts", progress)
    for start in range(0, len(indexes), ACCOUNTS_PER_TRANSACTION):
        part = indexes[start : start + ACCOUNTS_PER_TRANSACTION]
        with unit_of_work(engine, write=True) as session:
            for index in part:
                create_account(
                    session,
                    account_id=account_id(index),
                    name=f"Synthetic {index:06d} Ltd",
                    at=at,
                    rate_card_key=CARD_KEY,
                )
                add_member(
                    session,
                    account_id=account_id(index),
                    email=f"owner@syn{index:06d}.example",
                    role="owner",
                    at=at,
                )
                grant_credits(
                    session,
                    account_id=account_id(index),
                    amount_nanos=credits_to_nanos(STARTER_CREDITS),
                    source="promotional",
                    at=at,
                    description="Starter credits",
                )
        _collected()
        if bar is not None:
            bar.update(len(part))
    if bar is not None:
        bar.close()


def _add_usage(engine: Engine, indexes: range, *, days: int, now: datetime, progress: bool) -> int:
    """``days`` days of usage for these accounts, day by day, each day's sent that day."""
    profiles = [_profile(index) for index in indexes]
    events = 0
    bar = _progress(days, "synthetic usage", " days", progress)
    for days_ago in range(days, 0, -1):
        day = datetime.combine((now - timedelta(days=days_ago)).date(), clock_time(0), tzinfo=UTC)
        sent_at = min(datetime.combine(day.date(), SENT_AT, tzinfo=UTC), now)
        share = (days - days_ago) / max(days - 1, 1)
        batch: list[dict[str, object]] = []
        for profile in profiles:
            batch.extend(_day_events(profile, day, share))
            if len(batch) >= CHUNK_EVENTS:  # whole accounts per batch: one debit per account and day
                events += _send(engine, batch, sent_at)
                batch = []
        if batch:
            events += _send(engine, batch, sent_at)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return events


def _send(engine: Engine, batch: list[dict[str, object]], at: datetime) -> int:
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(session, batch, at=at, source="seed")
    _collected()
    if result.rejected:
        raise ValidationError(f"synthetic events rejected: {result.rejected[:3]}", field="events")
    return result.accepted
