"""``authorize``: may this account spend now? One answer from an in-process snapshot, no writes.

The decision (``decide``) is pure: account status, balance plus overdraft allowance, and every
hard cap that applies to the request, each with its own period's spend (the local day, the
week from Monday or the month, in the account's zone), less what this process has already
allowed and its snapshot does not show yet (``held``; see
``core.spend.reservations``: each allowed request reserves its estimated cost until a snapshot
read ``ingestion_lag_s`` after it is installed, so one process allows at most the headroom
plus one estimate). ``Authorizer.authorize`` checks and reserves under one lock.

Which caps apply (they stack: every one must pass): an account cap always; a project cap only
to a request naming that project; a meter cap only to one naming that meter; an API key cap
only to one naming that key (``api_key``, the name usage carries). A request without
``project`` is never held to a project's cap, nor one without ``api_key`` to a key's.

The **binding cap** is the applicable hard cap with the least room (its limit less its period's
spend less what is held in its scope); a tie goes to the cap that resets last (then the lower
id), so its ``resets_at`` is when that room comes back. ``Decision.limit`` names it whatever the
answer (None when no hard cap applies), and ``Decision.resets_at`` is its reset.

The snapshot behind it (``Authorizer``) is read from the database per account and kept in
memory: a background thread reloads every account asked about in the last minute every
``REFRESH_S`` (0.5 s), a request never uses a snapshot older than ``MAX_AGE_S`` (1 s; older is
read again on the spot) nor one read before a cap period in it ended (a new day, week or month:
the cap starts over at its reset, not up to a second later), and ingestion in this process
refreshes its accounts right after its commit. So authorize sees new spend within a second, and
a hot request reads no database.

A refusal is counted in memory (``note_refusal``: a dict under a lock, no I/O) and the same
thread adds the counts to ``authorize_refusals`` every cycle (``flush``, one upsert; see
``core.spend.refusals``) and once more before it stops; it runs whenever refusals wait to be
written, and a failed flush keeps them for the next cycle. The API's lifespan flushes at shutdown.

Reasons, in the order they are checked:

- ``account_suspended``: the account is not active (suspended or closed);
- ``hard_cap_reached``: a hard cap on the account, the request's project, meter or API key has
  no room left for the estimated cost (or none at all); the binding cap is the one named;
- ``insufficient_credits``: the balance plus the overdraft allowance does not cover the
  estimated cost (with no estimate: the balance plus the allowance is zero or less).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.clock import Clock, system_clock
from core.db import unit_of_work
from core.db.models import Account, Meter, SpendCap, SpendSettings
from core.spend import reservations
from core.spend.cap_spend import read_cells, spent_in
from core.spend.measure import cap_period
from core.spend.refusals import RefusalKey, RefusalTally, add_refusals
from core.spend.reservations import Held, Reservations

log = logging.getLogger(__name__)

MAX_AGE_S = 1.0
REFRESH_S = 0.5
IDLE_FORGET_S = 60.0
MAX_ACCOUNTS = 100_000  # snapshots kept at most (the least recently asked are dropped first)

REASONS = ("hard_cap_reached", "insufficient_credits", "account_suspended")


@dataclass(frozen=True)
class CapSnapshot:
    """A hard cap with its own period's spend at the snapshot's read."""

    cap_id: int
    scope: str
    scope_value: str
    period: str  # day | week | month
    limit_nanos: int
    spent_nanos: int
    resets_at: datetime  # when its period ends (local midnight after it, UTC)


@dataclass(frozen=True)
class AccountSnapshot:
    account_id: str
    status: str
    balance_nanos: int
    overdraft_nanos: int
    hard_caps: tuple[CapSnapshot, ...]
    as_of: datetime  # the clock when it was read (UTC): what the answer is as of
    loaded_at: float  # time.monotonic() of the read

    @cached_property
    def next_reset(self) -> datetime | None:
        """When its first cap period ends: past it, its spends are an earlier period's."""
        return min((cap.resets_at for cap in self.hard_caps), default=None)


@dataclass(frozen=True)
class BindingCap:
    """The applicable hard cap with the least room, as a decision names it."""

    cap: CapSnapshot
    room_nanos: int  # its limit less its spend less what is held in its scope (may be negative)

    @property
    def spent_nanos(self) -> int:
        """Its period's spend plus what this process holds in its scope."""
        return self.cap.limit_nanos - self.room_nanos


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str | None
    remaining_nanos: int  # headroom: the least of the caps' room and the credits, less what is held
    resets_at: datetime | None  # when the binding cap resets; None when no hard cap applies
    limit: BindingCap | None = None  # the binding cap (least room); None when no hard cap applies
    as_of: datetime | None = None  # the snapshot's read time


def applies(cap: CapSnapshot, project: str | None, meter: str | None, api_key: str | None) -> bool:
    """Whether ``cap`` holds a request naming these (an account cap holds every request)."""
    if cap.scope == "account":
        return True
    if cap.scope == "project":
        return project is not None and cap.scope_value == project
    if cap.scope == "meter":
        return meter is not None and cap.scope_value == meter
    if cap.scope == "api_key":
        return api_key is not None and cap.scope_value == api_key
    return False


def binding_cap(
    caps: Iterable[CapSnapshot],
    *,
    project: str | None = None,
    meter: str | None = None,
    api_key: str | None = None,
    held: Held | None = None,
) -> BindingCap | None:
    """The applicable cap with the least room; a tie goes to the later reset, then the lower id."""
    best: BindingCap | None = None
    for cap in caps:
        if not applies(cap, project, meter, api_key):
            continue
        room = cap.limit_nanos - cap.spent_nanos
        if held is not None:
            room -= held.in_scope(cap.scope, cap.scope_value)
        if (
            best is None
            or room < best.room_nanos
            or (room == best.room_nanos and cap.resets_at > best.cap.resets_at)
        ):
            best = BindingCap(cap, room)
    return best


def decide(
    snapshot: AccountSnapshot,
    *,
    project: str | None = None,
    meter: str | None = None,
    api_key: str | None = None,
    cost_nanos: int = 0,
    held: Held | None = None,
) -> Decision:
    """Allowed or not, why, the headroom, the binding cap and when it resets (pure); ``held`` is
    what this process reserved for the account and the snapshot does not show yet."""
    if cost_nanos < 0:
        raise ValueError("the estimated cost cannot be negative")
    binding = binding_cap(snapshot.hard_caps, project=project, meter=meter, api_key=api_key, held=held)
    resets_at = None if binding is None else binding.cap.resets_at
    credits_left = snapshot.balance_nanos + snapshot.overdraft_nanos
    if held is not None:
        credits_left -= held.total_nanos
    cap_room = None if binding is None else binding.room_nanos
    remaining = max(0, credits_left if cap_room is None else min(credits_left, cap_room))
    as_of = snapshot.as_of
    if snapshot.status != "active":
        return Decision(False, "account_suspended", 0, resets_at, binding, as_of)
    if cap_room is not None and (cap_room <= 0 or cost_nanos > cap_room):
        return Decision(False, "hard_cap_reached", remaining, resets_at, binding, as_of)
    if credits_left <= 0 or cost_nanos > credits_left:
        return Decision(False, "insufficient_credits", remaining, resets_at, binding, as_of)
    return Decision(True, None, remaining, resets_at, binding, as_of)


def load_snapshots(
    session: Session, account_ids: Iterable[str], *, at: datetime, loaded_at: float | None = None
) -> dict[str, AccountSnapshot]:
    """Snapshots of the accounts that exist among ``account_ids`` (a few indexed reads).

    ``loaded_at`` (default: now, monotonic) is taken before the first read: every commit before it
    is in the snapshot, which is what releasing reservations relies on."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    loaded_at = time.monotonic() if loaded_at is None else loaded_at
    accounts = session.execute(
        select(Account.id, Account.status, Account.balance_nanos, Account.timezone).where(Account.id.in_(ids))
    ).all()
    if not accounts:
        return {}
    found = [row.id for row in accounts]
    overdrafts = dict(
        session.execute(
            select(SpendSettings.account_id, SpendSettings.overdraft_nanos).where(
                SpendSettings.account_id.in_(found)
            )
        ).all()
    )
    caps: dict[str, list[tuple[int, str, str, str, int]]] = {}
    # Plain rows, not ORM objects: this runs every REFRESH_S beside the event loop, so keep it light.
    for cap_id, cap_account, scope, scope_value, period, limit_nanos in session.execute(
        select(
            SpendCap.id,
            SpendCap.account_id,
            SpendCap.scope,
            SpendCap.scope_value,
            SpendCap.period,
            SpendCap.limit_nanos,
        )
        .where(SpendCap.account_id.in_(found), SpendCap.deleted_at.is_(None), SpendCap.mode == "hard")
        .order_by(SpendCap.id)
    ):
        caps.setdefault(cap_account, []).append((int(cap_id), scope, scope_value, period, int(limit_nanos)))
    meter_ids: dict[str, int] = {}
    if any(scope == "meter" for rows in caps.values() for _, scope, _, _, _ in rows):
        meter_ids = {name: int(meter_id) for meter_id, name in session.execute(select(Meter.id, Meter.name))}
    snapshots = {}
    for account_id, status, balance, timezone in accounts:
        hard: list[CapSnapshot] = []
        if account_id in caps:
            periods = {kind: cap_period(kind, timezone, at) for kind in {row[3] for row in caps[account_id]}}
            # One grouped read from the earliest period start any cap needs (a month's or a week's).
            cells = read_cells(
                session,
                account_id,
                min(p.start for p in periods.values()),
                max(p.end for p in periods.values()),
            )
            for cap_id, scope, scope_value, kind, limit_nanos in caps[account_id]:
                period = periods[kind]
                spent = spent_in(
                    cells,
                    scope=scope,
                    scope_value=scope_value,
                    start=period.start,
                    end=period.end,
                    meter_ids=meter_ids,
                )
                hard.append(
                    CapSnapshot(cap_id, scope, scope_value, kind, limit_nanos, spent, period.resets_at)
                )
        snapshots[account_id] = AccountSnapshot(
            account_id,
            status,
            int(balance),
            int(overdrafts.get(account_id, 0)),
            tuple(hard),
            at,
            loaded_at,
        )
    return snapshots


class Authorizer:
    """Per-process snapshots of the accounts the gateway asks about, kept within ``MAX_AGE_S``."""

    def __init__(
        self,
        engine_provider: Callable[[], Engine],
        *,
        clock: Clock = system_clock,
        max_age_s: float = MAX_AGE_S,
        refresh_s: float = REFRESH_S,
        default_estimate_nanos: int | None = None,
        ingestion_lag_s: float | None = None,
    ):
        self._engine_provider = engine_provider
        self._clock = clock
        self.max_age_s = max_age_s
        self.refresh_s = refresh_s
        # What a request without an estimate reserves, and how long a reservation outlives the
        # snapshots read before its usage can be in them (core.spend.reservations; settings).
        self.default_estimate_nanos = (
            reservations.default_estimate_nanos()
            if default_estimate_nanos is None
            else default_estimate_nanos
        )
        self.ingestion_lag_s = reservations.ingestion_lag_s() if ingestion_lag_s is None else ingestion_lag_s
        self._lock = threading.Lock()  # snapshots, reservations and asked-at times
        self._snapshots: dict[str, AccountSnapshot] = {}
        self._reservations = Reservations()
        self._asked_at: dict[str, float] = {}
        self._meters: frozenset[str] = frozenset()
        self._meters_at = float("-inf")
        self._thread: threading.Thread | None = None
        self._refusals = RefusalTally()
        self._flush_lock = threading.Lock()  # one flush at a time: the thread's, a test's, shutdown's

    # The request path: no I/O when the snapshot is fresh.
    def authorize(
        self,
        account_id: str,
        *,
        project: str | None = None,
        meter: str | None = None,
        api_key: str | None = None,
        cost_nanos: int | None = None,
        just_loaded: bool = False,
    ) -> Decision | None:
        """Decide from this process's snapshot and reserve what is allowed, under one lock.

        ``cost_nanos`` None (no estimate) is checked as 0 and reserves ``default_estimate_nanos``.
        None when there is no snapshot fresher than ``max_age_s``: ``load`` it, then ask again
        with ``just_loaded`` (which takes the snapshot whatever its age; None then: no account).
        """
        with self._lock:
            now = time.monotonic()  # inside the lock: a reservation is never older than its decision
            self._asked_at[account_id] = now
            snapshot = self._snapshots.get(account_id)
            if snapshot is None or (
                not just_loaded
                and (now - snapshot.loaded_at > self.max_age_s or self._past_a_reset(snapshot))
            ):
                return None
            decision = decide(
                snapshot,
                project=project,
                meter=meter,
                api_key=api_key,
                cost_nanos=cost_nanos or 0,
                held=self._reservations.held(account_id),
            )
            if decision.allowed:
                estimate = self.default_estimate_nanos if cost_nanos is None else cost_nanos
                self._reservations.reserve(account_id, now, project, meter, estimate, api_key=api_key)
        return decision

    def _past_a_reset(self, snapshot: AccountSnapshot) -> bool:
        """Whether a cap period in the snapshot has ended since it was read (a new day, week or
        month): then it is read again, so a cap starts over at its reset, not up to a second later."""
        if snapshot.next_reset is None:
            return False
        return self._clock() >= snapshot.next_reset

    def held_nanos(self, account_id: str) -> int:
        """What this process holds for the account now (tests, diagnostics)."""
        with self._lock:
            return self._reservations.total_nanos(account_id)

    def known_meter(self, name: str) -> bool | None:
        """True or False from a fresh meter list; None when the list must be read again first."""
        if time.monotonic() - self._meters_at > self.max_age_s:
            return None if name not in self._meters else True
        return name in self._meters

    def note_refusal(
        self, account_id: str, decision: Decision, *, project: str | None, meter: str | None, cost_nanos: int
    ) -> None:
        """Count a refused request (the request path: no I/O); the background thread writes it."""
        if decision.allowed or decision.reason is None:
            return
        at = self._clock()
        key = RefusalKey(
            account_id, at.replace(second=0, microsecond=0), decision.reason, project or "", meter or ""
        )
        with self._refusals.lock:
            self._refusals.note(key, at, cost_nanos, decision.remaining_nanos)
            # Read under the tally's lock: the thread decides to stop under it too, when the tally is empty.
            thread = self._thread
            start = thread is None or not thread.is_alive()
        if start:
            self._ensure_refresher()

    def pending_refusals(self) -> int:
        """How many tallied keys wait to be written (tests, diagnostics)."""
        return len(self._refusals)

    def flush(self) -> int:
        """Write the refusals tallied so far; returns the keys written (0 when it failed: they are
        kept for the next flush, and the failure is logged). Safe from any thread."""
        with self._flush_lock:
            taken, dropped = self._refusals.take()
            if dropped:
                log.warning("authorize refusals: %d not counted, the tally was full", dropped)
            if not taken:
                return 0
            try:
                with unit_of_work(self._engine_provider(), write=True) as session:
                    add_refusals(session, taken)
            except Exception:  # the database may be restarting: keep the counts for the next cycle
                lost = self._refusals.put_back(taken)
                log.exception(
                    "writing %d authorize refusal counts failed; kept for the next try%s",
                    len(taken),
                    f" ({lost} oldest dropped past the bound)" if lost else "",
                )
                return 0
            return len(taken)

    def load_meters(self) -> frozenset[str]:
        with unit_of_work(self._engine_provider()) as session:
            names = frozenset(session.scalars(select(Meter.name)))
        self._meters, self._meters_at = names, time.monotonic()
        return names

    def load(self, account_id: str) -> AccountSnapshot | None:
        """Read one account's snapshot now (a miss or a stale one); None if the account does not exist."""
        self.refresh([account_id])
        self._ensure_refresher()
        return self._snapshots.get(account_id)

    def refresh(self, account_ids: Iterable[str]) -> None:
        """Read these accounts' snapshots again and install them, releasing the reservations
        made ``ingestion_lag_s`` or more before each read began (their usage is in it)."""
        ids = set(account_ids)
        if not ids:
            return
        read_at = time.monotonic()  # before the session opens: every commit before it is read
        with unit_of_work(self._engine_provider()) as session:
            loaded = load_snapshots(session, ids, at=self._clock(), loaded_at=read_at)
        with self._lock:
            for account_id, snapshot in loaded.items():
                current = self._snapshots.get(account_id)
                if current is not None and current.loaded_at > snapshot.loaded_at:
                    continue  # a later read was installed meanwhile (and released by its time)
                self._snapshots[account_id] = snapshot
                self._reservations.release(account_id, snapshot.loaded_at - self.ingestion_lag_s)
            for missing in ids - loaded.keys():
                self._snapshots.pop(missing, None)
                self._reservations.forget(missing)

    def refresh_known(self, account_ids: Iterable[str]) -> None:
        """After ingestion: refresh those of ``account_ids`` this process keeps a snapshot of."""
        self.refresh([a for a in account_ids if a in self._snapshots])

    def _ensure_refresher(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._refresh_loop, name="meterline-authorize", daemon=True
            )
            self._thread.start()

    def _refresh_loop(self) -> None:
        """Reload every recently asked account every ``refresh_s`` and write the refusals tallied
        meanwhile; stop once nobody asks and every refusal is written."""
        while True:
            time.sleep(self.refresh_s)
            now = time.monotonic()
            with self._lock:
                for account_id, asked in list(self._asked_at.items()):
                    if now - asked > IDLE_FORGET_S or len(self._asked_at) > MAX_ACCOUNTS:
                        self._asked_at.pop(account_id, None)
                        self._snapshots.pop(account_id, None)
                        self._reservations.forget(account_id)
                active = [a for a in self._asked_at if a in self._snapshots]
            if active:
                try:
                    self.refresh(active)
                    self.load_meters()
                except Exception:  # the database may be restarting: the request path reads it itself then
                    log.exception("authorize snapshot refresh failed; retrying")
            self.flush()  # logs a failure and keeps the tally: this thread then stays to retry
            if active:
                continue
            with self._lock, self._refusals.lock:  # a request asking or refusing meanwhile keeps it going
                if not len(self._refusals) and not any(a in self._snapshots for a in self._asked_at):
                    self._thread = None
                    return
