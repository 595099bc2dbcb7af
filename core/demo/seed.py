"""The demo story, written through the same code paths as real traffic (no raw inserts).

Four customers on the "standard" rate card, 90 days of usage with weekly seasonality:

- **Brightpath AI** (``acc_brightpath``, a startup): burns credits fast; bought its
  starter pack by card (sandbox checkout, card saved) and its auto-recharge buys 500
  credits whenever a day ends under 250 (real top-up records, see ``core.demo.payments``);
  its launch promotion expired.
- **Northwind Logistics** (``acc_northwind``, an enterprise): a large purchased grant
  plus promotional pilot credits that expire in four to five days.
- **Quiet Harbor** (``acc_quietharbor``): dormant, no usage for the last 60 days.
- **Pixel Forge** (``acc_pixelforge``): image generation past its credits: a negative
  balance that its next top-up pays off first.

Work for the support console: Quiet Harbor's win-back promotion expired unused, and the
$20 of credits it bought today, after two dormant months, is disputed by the bank; and a
support agent has asked for 250 goodwill credits for Pixel Forge, above the agent's
limit, so the grant awaits a second agent
(``support-lead@meterline.example``, a support admin where ``METERLINE_SUPPORT_ADMIN_EMAILS``
lists it, as ``make run`` does).

The rate card's launch version starts before the history; a price change 45 days ago
makes grandfathering visible (older usage keeps the old price). Each simulated day's
events are ingested in a few parts, each on the (account-local) day its events belong
to, so ledger entries and the balance chart read like real history. Four hours of
Brightpath's usage three days ago arrive late, at ``now`` (the Usage page then says that
past numbers changed). Deterministic for a given ``now`` and ``seed``.
"""

from __future__ import annotations

import random
import time
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.accounts import add_member, create_account, ensure_user
from core.costs import load_cost_card
from core.db import unit_of_work
from core.db.models import Account, TopUp
from core.demo.payments import (
    SeedClock,
    buy_starter_pack,
    demo_payments,
    recharge_if_due,
    turn_on_auto_recharge,
)
from core.display import format_credits
from core.errors import ValidationError
from core.ledger import expire_due_grants, grant_credits
from core.metering import ingest_events
from core.money import credits_to_nanos
from core.payments import Actor, Payments, start_checkout
from core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from core.rating import load_rate_card, read_rate_card_file
from core.support.actions import grant_credits_as_agent
from core.support.agents import SUPPORT, Agent, SupportLimits

RATE_CARD_FILE = Path(__file__).with_name("rate_card.toml")
COST_CARD_FILE = Path(__file__).with_name("cost_card.toml")
COST_CHANGE_DAYS_AGO = 20
DEFAULT_SEED = 2026
DEFAULT_DAYS = 90
PRICE_CHANGE_DAYS_AGO = 45
# Monday .. Sunday: customers' products are busier on weekdays.
WEEKDAY_FACTOR = (1.0, 1.06, 1.1, 1.03, 0.9, 0.38, 0.32)
SUPPORT_EMAIL = "support@meterline.example"
SUPPORT_ADMIN_EMAIL = "support-lead@meterline.example"
PENDING_GRANT_CREDITS = 250
DISPUTED_BUYER = "dana@quietharbor.example"
DISPUTED_TOP_UP_CENTS = 2_000
PENDING_GRANT_REASON = "Pixel Forge: images billed twice during the Nov 3 incident (ticket 4471)"

STARTUP = "acc_brightpath"
ENTERPRISE = "acc_northwind"
DORMANT = "acc_quietharbor"
OVERDRAWN = "acc_pixelforge"

# A late delivery: Brightpath's events of a few hours, three days ago, arrive only now.
LATE_DAYS_AGO = 3
LATE_HOURS = range(13, 17)
# Brightpath's first purchase (checkout, card saved) and the page its return link points at.
STARTER_PACK_BUYER = "maya@startup.example"
DEMO_BUY_PAGE = f"http://localhost:8501/buy_credits?account={STARTUP}"


@dataclass(frozen=True)
class Profile:
    """How one demo customer uses the product."""

    account_id: str
    name: str
    timezone: str
    calls_per_weekday: int
    models: dict[str, float]  # model -> share of calls
    projects: tuple[str, ...]
    api_keys: tuple[str, ...]
    input_tokens_mean: int
    growth: tuple[float, float] = (1.0, 1.0)  # activity at the first and at the last day
    active_days: tuple[int, int] | None = None  # (from, to) day indexes; None = every day


PROFILES = (
    Profile(
        STARTUP,
        "Brightpath AI",
        "America/Los_Angeles",
        calls_per_weekday=110,
        models={"atlas-large": 0.55, "atlas-mini": 0.45},
        projects=("copilot", "support-bot", "evals"),
        api_keys=("key_prod_7f3a", "key_staging_19c2", "key_ci_a04e"),
        input_tokens_mean=150_000,
        growth=(0.6, 1.5),
    ),
    Profile(
        ENTERPRISE,
        "Northwind Logistics",
        "Europe/Berlin",
        calls_per_weekday=160,
        models={"atlas-large": 0.3, "atlas-mini": 0.5, "orbit-embed": 0.2},
        projects=("route-planner", "customs-docs", "search"),
        api_keys=("key_eu_prod_2b7d", "key_eu_batch_88e1"),
        input_tokens_mean=200_000,
    ),
    Profile(
        DORMANT,
        "Quiet Harbor",
        "UTC",
        calls_per_weekday=25,
        models={"atlas-mini": 1.0},
        projects=("pilot",),
        api_keys=("key_pilot_5c0b",),
        input_tokens_mean=20_000,
        active_days=(0, 29),
    ),
    Profile(
        OVERDRAWN,
        "Pixel Forge",
        "UTC",
        calls_per_weekday=40,
        models={"pixel-diffusion": 0.75, "atlas-mini": 0.25},
        projects=("thumbnails", "marketing"),
        api_keys=("key_live_e93f", "key_test_0d4c"),
        input_tokens_mean=4_000,
        growth=(0.8, 1.2),
    ),
)

# (email, display name, [(account, role)]): an owner per account, a user in two
# accounts (Sam), a viewer (Victor). The support agent has no membership: the portal
# treats them as support through METERLINE_SUPPORT_EMAILS.
USERS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("maya@startup.example", "Maya Chen", ((STARTUP, "owner"),)),
    ("leo@startup.example", "Leo Park", ((STARTUP, "admin"),)),
    ("olivia@enterprise.example", "Olivia Brandt", ((ENTERPRISE, "owner"),)),
    ("victor@enterprise.example", "Victor Hale", ((ENTERPRISE, "viewer"),)),
    ("sam@consulting.example", "Sam Rivera", ((STARTUP, "billing"), (ENTERPRISE, "admin"))),
    ("dana@quietharbor.example", "Dana Okafor", ((DORMANT, "owner"),)),
    ("ravi@pixelforge.example", "Ravi Menon", ((OVERDRAWN, "owner"),)),
)


@dataclass(frozen=True)
class PlannedGrant:
    account_id: str
    day: int  # day index; granted at 09:00 UTC that day
    credits: int
    source: str
    description: str
    cost_basis_cents: int | None = None
    expires_in: timedelta | None = None  # from the grant time
    expires_in_days_from_now: int | None = None  # or: at midnight UTC that many days after ``now``


def planned_grants(days: int) -> list[PlannedGrant]:
    """The grants of the story, by day index (0 = the first day of history)."""
    last = days  # today
    return [
        PlannedGrant(
            STARTUP,
            0,
            300,
            "promotional",
            "Launch promotion",
            expires_in=timedelta(days=max(days - 30, 1)),
        ),
        PlannedGrant(
            ENTERPRISE, 0, 5_000, "purchased", "Annual contract, tranche 1", cost_basis_cents=450_000
        ),
        PlannedGrant(
            ENTERPRISE,
            max(last - 20, 0),
            1_500,
            "promotional",
            "Pilot credits for the customs-docs project",
            expires_in_days_from_now=5,
        ),
        PlannedGrant(DORMANT, 0, 100, "purchased", "Pilot pack", cost_basis_cents=10_000),
        PlannedGrant(
            DORMANT,
            max(last - 50, 0),
            40,
            "promotional",
            "Win-back offer: 40 credits to try the new models",
            expires_in=timedelta(days=20),
        ),
        PlannedGrant(OVERDRAWN, 0, 150, "purchased", "Starter pack", cost_basis_cents=15_000),
        PlannedGrant(OVERDRAWN, max(last - 40, 0), 25, "goodwill", "Sorry for the outage on the 3rd"),
    ]


@dataclass
class SeedStory:
    """What the seeder made (printed by ``meterline demo seed``)."""

    now: datetime
    days: int
    events: int = 0
    top_ups: int = 0
    balances_nanos: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        lines = [
            f"demo data seeded in {self.seconds:.1f} s: {self.events:,} usage events over {self.days} days, "
            f"{self.top_ups} automatic top-ups"
        ]
        for account_id, balance in self.balances_nanos.items():
            lines.append(f"  {self.names[account_id]} ({account_id}): balance {format_credits(balance)}")
        users = ", ".join(email for email, _, _ in USERS)
        lines.append(f"  users: {users}")
        lines.append(
            f"  support agent: {SUPPORT_EMAIL} (a support agent where METERLINE_SUPPORT_EMAILS lists it)"
        )
        lines.append(
            f"  support admin: {SUPPORT_ADMIN_EMAIL} (where METERLINE_SUPPORT_ADMIN_EMAILS lists it); "
            f"a {PENDING_GRANT_CREDITS}-credit grant awaits approval"
        )
        return "\n".join(lines)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _hour(event: dict[str, object]) -> int:
    return int(str(event["timestamp"])[11:13])


def _windows(
    events: list[dict[str, object]], until: datetime, cuts: list[datetime]
) -> list[tuple[datetime, list[dict[str, object]]]]:
    """The day's events split at ``cuts`` (sorted), each part with the last instant before its cut.

    Ingesting each part at that instant keeps arrivals on the day the events belong to
    (every account's local midnight is a cut), as live traffic would, in a few batches.
    """
    parts: list[list[dict[str, object]]] = [[] for _ in cuts]
    for event in events:
        parts[bisect_right(cuts, datetime.fromisoformat(str(event["timestamp"])))].append(event)
    return [
        (min(cut - timedelta(microseconds=1), until), part)
        for cut, part in zip(cuts, parts, strict=True)
        if part
    ]


def _day_cuts(day_start: datetime, timezones: set[str], grant_at: datetime) -> list[datetime]:
    """Where a UTC day is cut: each account's local midnight, the grant time and the day's end."""
    end = day_start + timedelta(days=1)
    cuts = {end, grant_at}
    for name in timezones:
        zone = ZoneInfo(name)
        local = day_start.astimezone(zone).date()
        for day in (local, local + timedelta(days=1)):
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
            if day_start < midnight < end:
                cuts.add(midnight)
    return sorted(cuts)


def _ingest(session: Session, events: list[dict[str, object]], *, at: datetime, story: SeedStory) -> None:
    result = ingest_events(session, events, at=at, source="seed")
    if result.rejected:
        first = result.rejected[0]
        raise AssertionError(f"demo event rejected: {first.field}: {first.message}")
    story.events += result.accepted


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def dated_rate_card(first_day: datetime, now: datetime) -> dict[str, object]:
    """The demo card with its launch version before the history and the price change 45 days ago."""
    document = read_rate_card_file(RATE_CARD_FILE)
    versions = document["versions"]
    change = _midnight((now - timedelta(days=PRICE_CHANGE_DAYS_AGO)).date())
    versions[0]["effective_from"] = _stamp(first_day - timedelta(days=1))
    versions[1]["effective_from"] = _stamp(max(change, first_day))
    return document


def dated_cost_card(first_day: datetime, now: datetime) -> dict[str, object]:
    """The demo cost card: its first version before the history, the GPU contract 20 days ago."""
    document = read_rate_card_file(COST_CARD_FILE)
    versions = document["versions"]
    change = _midnight((now - timedelta(days=COST_CHANGE_DAYS_AGO)).date())
    versions[0]["effective_from"] = _stamp(first_day - timedelta(days=1))
    versions[1]["effective_from"] = _stamp(max(change, first_day))
    return document


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _calls_today(rng: random.Random, profile: Profile, day_index: int, days: int, weekday: int) -> int:
    if profile.active_days is not None:
        start, end = profile.active_days
        if not start <= day_index <= end:
            return 0
    first, last = profile.growth
    growth = first + (last - first) * day_index / max(days, 1)
    mean = profile.calls_per_weekday * WEEKDAY_FACTOR[weekday] * growth
    return max(0, round(rng.gauss(mean, mean * 0.12)))


def day_events(
    rng: random.Random, profile: Profile, day_index: int, days: int, day_start: datetime, until: datetime
) -> Iterator[dict[str, object]]:
    """One customer's usage events for one day (only those before ``until``)."""
    calls = _calls_today(rng, profile, day_index, days, day_start.weekday())
    requests: dict[tuple[str, str, str], int] = {}
    tag = f"{profile.account_id}-{day_start:%Y%m%d}"
    for call in range(calls):
        # Busiest in the (UTC) afternoon; a little traffic all night.
        moment = day_start + timedelta(seconds=int(rng.triangular(0, 86_399, 14 * 3600)))
        model = _pick(rng, profile.models)
        dims = {
            "model": model,
            "project": rng.choice(profile.projects),
            "api_key": rng.choice(profile.api_keys),
        }
        if moment >= until:
            continue
        stamp = _stamp(moment)
        base = {"account_id": profile.account_id, "timestamp": stamp, "dimensions": dims}
        key = (dims["model"], dims["project"], dims["api_key"])
        requests[key] = requests.get(key, 0) + 1
        if model == "pixel-diffusion":
            yield {**base, "event_id": f"{tag}-{call}-img", "meter": "images", "quantity": rng.randint(1, 4)}
            continue
        tokens_in = int(rng.lognormvariate(0, 0.6) * profile.input_tokens_mean * 0.84)
        yield {**base, "event_id": f"{tag}-{call}-in", "meter": "input_tokens", "quantity": tokens_in}
        if model != "orbit-embed":
            tokens_out = int(tokens_in * rng.uniform(0.06, 0.16))
            yield {**base, "event_id": f"{tag}-{call}-out", "meter": "output_tokens", "quantity": tokens_out}
    # One requests event per day and dimension set: request counts are reported in aggregate.
    last = min(day_start + timedelta(hours=23, minutes=59), until - timedelta(seconds=1))
    for number, ((model, project, api_key), count) in enumerate(sorted(requests.items())):
        yield {
            "event_id": f"{tag}-req-{number}",
            "account_id": profile.account_id,
            "meter": "requests",
            "quantity": count,
            "timestamp": _stamp(last),
            "dimensions": {"model": model, "project": project, "api_key": api_key},
        }


def _grant(session: Session, plan: PlannedGrant, *, at: datetime, now: datetime) -> None:
    expires_at = None
    if plan.expires_in is not None:
        expires_at = at + plan.expires_in
    elif plan.expires_in_days_from_now is not None:
        expires_at = _midnight((now + timedelta(days=plan.expires_in_days_from_now)).date())
    grant_credits(
        session,
        account_id=plan.account_id,
        amount_nanos=credits_to_nanos(plan.credits),
        source=plan.source,
        at=at,
        expires_at=expires_at,
        cost_basis_cents=plan.cost_basis_cents,
        description=plan.description,
        idempotency_key=f"demo:{plan.account_id}:{plan.day}:{plan.source}",
        created_by="demo-seed",
    )


def _create_people(session: Session, at: datetime) -> None:
    for profile in PROFILES:
        create_account(
            session,
            account_id=profile.account_id,
            name=profile.name,
            at=at,
            timezone=profile.timezone,
            rate_card_key="standard",
        )
    for email, name, memberships in USERS:
        ensure_user(session, email=email, at=at, display_name=name)
        for account_id, role in memberships:
            add_member(session, account_id=account_id, email=email, role=role, at=at)
    ensure_user(session, email=SUPPORT_EMAIL, at=at, display_name="Meterline Support")
    ensure_user(session, email=SUPPORT_ADMIN_EMAIL, at=at, display_name="Meterline Support Lead")


def _support_work(engine: Engine, payments: Payments, *, now: datetime) -> None:
    """What the support agent finds waiting: an expired, unused promotion, a dispute, an approval."""
    with unit_of_work(engine, write=True) as session:
        expire_due_grants(session, at=now)  # Quiet Harbor's win-back offer, never used
    # Quiet Harbor, dormant for two months, buys $20 of credits by card; the bank disputes it.
    provider = payments.provider
    assert isinstance(provider, SandboxProvider)
    view = start_checkout(
        engine,
        provider,
        payments.config,
        actor=Actor.member(DISPUTED_BUYER),
        account_id=DORMANT,
        amount_cents=DISPUTED_TOP_UP_CENTS,
        save_card=False,
        request_key="demo:quiet-harbor-top-up",
        page_url=f"http://localhost:8501/buy_credits?account={DORMANT}",
        clock=payments.clock,
    )
    with unit_of_work(engine) as session:
        session_id = session.scalar(select(TopUp.checkout_session_id).where(TopUp.id == view.top_up_id))
    assert session_id
    intent_id = provider.pay_checkout(session_id, CARD_SUCCEEDS)["payment_intent"]
    provider.dispute(str(intent_id))  # charge.dispute.created -> the webhook handler holds the credits
    limits = SupportLimits(
        support_grant_nanos=credits_to_nanos(100), approval_threshold_nanos=credits_to_nanos(1_000)
    )
    with unit_of_work(engine, write=True) as session:
        grant_credits_as_agent(
            session,
            Agent(SUPPORT_EMAIL, SUPPORT),
            account_id=OVERDRAWN,
            amount_nanos=credits_to_nanos(PENDING_GRANT_CREDITS),
            reason=PENDING_GRANT_REASON,
            at=now,
            limits=limits,
        )


def seed_demo(
    engine: Engine,
    *,
    now: datetime,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
) -> SeedStory:
    """Seed the demo story into an empty, migrated database; refuses if the demo accounts exist."""
    if now.tzinfo is None:
        raise ValueError("seed_demo needs an aware 'now'")
    if not 7 <= days <= 365:
        raise ValueError("days must be between 7 and 365")
    started = time.perf_counter()
    rng = random.Random(seed)
    story = SeedStory(now=now, days=days, names={p.account_id: p.name for p in PROFILES})
    first_day = _midnight((now - timedelta(days=days)).date())
    setup_at = first_day - timedelta(days=10)

    with unit_of_work(engine, write=True) as session:
        if session.get(Account, STARTUP) is not None:
            raise ValidationError(
                "the demo data is already seeded (use --if-empty, or a fresh database)", field="database"
            )
        load_rate_card(session, dated_rate_card(first_day, now), at=setup_at)
        load_cost_card(session, dated_cost_card(first_day, now), at=setup_at)
        _create_people(session, setup_at)
    # Brightpath signs up and buys its starter pack by card (saved), then turns auto-recharge on.
    clock = SeedClock(setup_at)
    payments = demo_payments(engine, clock)
    buy_starter_pack(payments, account_id=STARTUP, buyer=STARTER_PACK_BUYER, page_url=DEMO_BUY_PAGE)
    turn_on_auto_recharge(payments, account_id=STARTUP, owner=STARTER_PACK_BUYER)

    held_back: list[dict[str, object]] = []
    timezones = {profile.timezone for profile in PROFILES}
    grants_by_day: dict[int, list[PlannedGrant]] = {}
    for plan in planned_grants(days):
        grants_by_day.setdefault(plan.day, []).append(plan)

    day_indexes: Iterator[int] | range = range(days + 1)
    if progress:
        from tqdm import tqdm

        day_indexes = tqdm(day_indexes, desc="demo seed", unit=" days", disable=None)
    for day_index in day_indexes:
        day_start = first_day + timedelta(days=day_index)
        if day_start >= now:
            break
        at = min(day_start + timedelta(days=1), now)
        events = [
            event
            for profile in PROFILES
            for event in day_events(rng, profile, day_index, days, day_start, at)
        ]
        if day_index == days - LATE_DAYS_AGO:
            # Brightpath's retry queue stalls for a few hours; those events arrive days later.
            stalled = [e["account_id"] == STARTUP and _hour(e) in LATE_HOURS for e in events]
            held_back += [e for e, late in zip(events, stalled, strict=True) if late]
            events = [e for e, late in zip(events, stalled, strict=True) if not late]
        with unit_of_work(engine, write=True) as session:
            grant_at = min(day_start + timedelta(hours=9), at)
            # As live traffic would, events arrive on the (local) day they belong to; the
            # day's grants land at 09:00 UTC, a cut between two parts, so entries stay in time order.
            parts = _windows(events, at, _day_cuts(day_start, timezones, grant_at))
            for part_at, part in parts:
                if part_at < grant_at:
                    _ingest(session, part, at=part_at, story=story)
            for plan in grants_by_day.get(day_index, []):
                _grant(session, plan, at=grant_at, now=now)
            for part_at, part in parts:
                if part_at >= grant_at:
                    _ingest(session, part, at=part_at, story=story)
            if day_start + timedelta(days=1) >= now and held_back:
                _ingest(session, held_back, at=now, story=story)
        # The day's end: Brightpath's auto-recharge buys $500 when the balance is under 250 credits
        # (a sandbox payment, credited by the webhook handler, like any other top-up).
        clock.now = at
        if recharge_if_due(payments, account_id=STARTUP):
            story.top_ups += 1

    clock.now = now
    _support_work(engine, payments, now=now)

    with unit_of_work(engine) as session:
        for account_id, balance in session.execute(
            select(Account.id, Account.balance_nanos).order_by(Account.id)
        ):
            story.balances_nanos[account_id] = balance
    story.seconds = time.perf_counter() - started
    return story
