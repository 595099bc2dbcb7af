"""Authorize's reservations: what this process allowed that its snapshots cannot show yet.

``POST /api/v1/authorize`` answers from a snapshot of the account up to a second old, and the
usage of a request it allows reaches the database only once the gateway has served it and
sent the event. Without a hold, a burst inside that gap would be allowed without bound past a
hard cap. So every allowed request **reserves its estimated cost** in the process that allowed
it, against the account, the project, the meter and the API key it named and the account's
credits (so held amounts count against every cap in the stack that holds the request); a
decision subtracts what is held from the snapshot's headroom.

The estimate is the request's ``estimated_cost``; a request without one is checked as before
(allowed while any room is left) and reserves ``METERLINE_AUTHORIZE_DEFAULT_ESTIMATE`` credits
(default 0.01). An explicit ``estimated_cost`` of 0 reserves nothing.

**Release rule.** A reservation made at ``t`` (monotonic seconds) is released when a snapshot
whose read began at or after ``t + lag`` is installed, ``lag`` being
``METERLINE_AUTHORIZE_INGESTION_LAG_S`` (default 5 s, at most 60): the time within which the
usage of an allowed request is committed. Such a snapshot includes that usage, so keeping the
reservation would count it twice. Until then it may count twice (a conservative refusal, never
an extra allowance). A snapshot read earlier than one already installed is not installed. Holds
are kept in buckets of ``BUCKET_S`` (10 ms) and a bucket goes once its end is ``lag`` before the
read: a hold may last up to 10 ms longer, never shorter, and a release pops at most a hundred
buckets per second of traffic, whatever the request rate.

**Bound.** Requests with an estimate are allowed only while it fits the room left after the
reservations, so their total stays within the headroom; one without an estimate is allowed
while any room is left and holds the default estimate. So one process allows at most the
headroom plus one estimate (in estimated cost) before its snapshot shows the spend. Each
process holds only its own reservations: N processes allow at most N × (headroom + one
estimate), plus the estimates of requests whose usage arrives later than ``lag`` after their
allowance (released before their spend shows). The README states it; ``python -m bench
authorize`` measures it.

Nothing here is thread-safe: the authorizer's lock guards check and reserve together.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field

from core.errors import ValidationError
from core.money import credits_to_nanos

DEFAULT_ESTIMATE = "0.01"  # credits held for a request that carries no estimated cost
DEFAULT_INGESTION_LAG_S = 5.0
BUCKET_S = 0.01  # holds made within the same 10 ms are kept (and released) together
MAX_INGESTION_LAG_S = 60.0  # an account not asked about for a minute is forgotten, reservations and all
ESTIMATE_SETTING = "METERLINE_AUTHORIZE_DEFAULT_ESTIMATE"
LAG_SETTING = "METERLINE_AUTHORIZE_INGESTION_LAG_S"


def _bad(setting: str, message: str) -> ValidationError:
    return ValidationError(f"{setting} {message}", code="bad_setting", field=setting)


def default_estimate_nanos() -> int:
    """Nano-credits reserved for a request without ``estimated_cost`` (the setting, default 0.01)."""
    raw = os.environ.get(ESTIMATE_SETTING, "").strip() or DEFAULT_ESTIMATE
    try:
        nanos = credits_to_nanos(raw, field=ESTIMATE_SETTING)
    except (ValueError, ArithmeticError):
        nanos = 0
    if nanos <= 0 or nanos > 10**18:
        raise _bad(ESTIMATE_SETTING, f"must be credits above 0 with at most 9 decimals, not {raw!r}")
    return nanos


def ingestion_lag_s() -> float:
    """Seconds within which an allowed request's usage is committed (the setting, default 5)."""
    raw = os.environ.get(LAG_SETTING, "").strip()
    if not raw:
        return DEFAULT_INGESTION_LAG_S
    try:
        lag = float(raw)
    except ValueError:
        lag = -1.0
    if not 0.0 <= lag <= MAX_INGESTION_LAG_S:
        raise _bad(LAG_SETTING, f"must be seconds from 0 to {MAX_INGESTION_LAG_S:g}, not {raw!r}")
    return lag


ScopeKey = tuple[str | None, str | None, str | None]  # (project, meter, api_key) a request named


@dataclass
class Held:
    """One account's reservations in buckets, oldest first (each: its end, and nano-credits per
    project, meter and API key named), with running totals per scope."""

    buckets: deque[tuple[float, dict[ScopeKey, int]]] = field(default_factory=deque)
    total_nanos: int = 0
    by_project: dict[str, int] = field(default_factory=dict)
    by_meter: dict[str, int] = field(default_factory=dict)
    by_api_key: dict[str, int] = field(default_factory=dict)

    def in_scope(self, scope: str, scope_value: str) -> int:
        """What is held against a cap of this scope (an account cap: everything)."""
        if scope == "project":
            return self.by_project.get(scope_value, 0)
        if scope == "meter":
            return self.by_meter.get(scope_value, 0)
        if scope == "api_key":
            return self.by_api_key.get(scope_value, 0)
        return self.total_nanos


def _add(totals: dict[str, int], key: str | None, nanos: int) -> None:
    if key is None:
        return
    left = totals.get(key, 0) + nanos
    if left:
        totals[key] = left
    else:
        del totals[key]


class Reservations:
    """Per-account holds of this process (guarded by the caller's lock)."""

    def __init__(self) -> None:
        self._held: dict[str, Held] = {}

    def held(self, account_id: str) -> Held | None:
        return self._held.get(account_id)

    def reserve(
        self,
        account_id: str,
        at: float,
        project: str | None,
        meter: str | None,
        nanos: int,
        *,
        api_key: str | None = None,
    ) -> None:
        if nanos <= 0:
            return
        held = self._held.get(account_id)
        if held is None:
            held = self._held[account_id] = Held()
        end = max(at, (at // BUCKET_S + 1) * BUCKET_S)  # every hold in a bucket was made by its end
        if held.buckets and held.buckets[-1][0] >= end:
            amounts = held.buckets[-1][1]
        else:
            amounts = {}
            held.buckets.append((end, amounts))
        key = (project, meter, api_key)
        amounts[key] = amounts.get(key, 0) + nanos
        held.total_nanos += nanos
        _add(held.by_project, project, nanos)
        _add(held.by_meter, meter, nanos)
        _add(held.by_api_key, api_key, nanos)

    def release(self, account_id: str, made_by: float) -> int:
        """Release the buckets of reservations all made before ``made_by``; returns the nano-credits."""
        held = self._held.get(account_id)
        if held is None:
            return 0
        released = 0
        buckets = held.buckets
        while buckets and buckets[0][0] <= made_by:
            _, amounts = buckets.popleft()
            for (project, meter, api_key), nanos in amounts.items():
                held.total_nanos -= nanos
                _add(held.by_project, project, -nanos)
                _add(held.by_meter, meter, -nanos)
                _add(held.by_api_key, api_key, -nanos)
                released += nanos
        if not buckets:
            del self._held[account_id]
        return released

    def forget(self, account_id: str) -> None:
        self._held.pop(account_id, None)

    def total_nanos(self, account_id: str) -> int:
        held = self._held.get(account_id)
        return 0 if held is None else held.total_nanos
