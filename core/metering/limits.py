"""Pure ceiling checks of a rated batch: which events would overflow what. No I/O in here.

An event is rejected, never rounded or wrapped, when its own rated amount passes
``MAX_EVENT_AMOUNT_NANOS``, when it takes its account's share of the batch past
``MAX_BATCH_AMOUNT_NANOS``, when it takes the account's deficit below ``-TOTAL_CEILING``,
or when it takes a stored total it adds to (hourly or daily rollup row, late-usage row)
past ``TOTAL_CEILING``. Events are taken in request order, so the first ones that fit are
kept and the rest named.

Stored totals are not read on the fast path: the database refuses a rollup row past the
ceiling (a CHECK constraint), and only then are they read (``StoredTotals``) and the batch
checked again exactly. The proof that the addition itself cannot overflow: a stored row is
at most ``TOTAL_CEILING`` (4e18) and a batch adds at most ``TOTAL_CEILING`` to it (checked
here, starting from zero when stored totals are unknown), so the sum is at most 8e18, under
2**63 - 1.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from core.metering.model import Rejection, ValidEvent
from core.metering.settings import MAX_BATCH_AMOUNT_NANOS, MAX_EVENT_AMOUNT_NANOS, TOTAL_CEILING


@dataclass(frozen=True)
class StoredTotals:
    """``(quantity, amount_nanos)`` already stored under each key the batch adds to."""

    rows: Mapping[Hashable, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventKeys:
    """The stored totals one event adds to: its hourly and daily rollup rows, its late-usage row."""

    hourly: Hashable
    daily: Hashable
    late: Hashable | None


def batch_fits(
    *,
    largest_amount: int,
    per_account: Mapping[str, int],
    deficits: Mapping[str, int],
    rollup_sums: Iterable[Sequence[int]],
    late_amounts: Iterable[int],
) -> bool:
    """True when the whole batch fits every ceiling by its own sums (the fast path).

    Sums of non-negative parts bound every partial sum, so when the batch's own totals fit,
    ``over_ceilings`` (with nothing stored yet) would reject nothing: it need not run.
    ``rollup_sums`` are ``[quantity, amount, …]`` per rollup key.
    """
    if largest_amount > MAX_EVENT_AMOUNT_NANOS:
        return False
    for account_id, total in per_account.items():
        if total > MAX_BATCH_AMOUNT_NANOS or deficits.get(account_id, 0) - total < -TOTAL_CEILING:
            return False
    if any(sums[0] > TOTAL_CEILING or sums[1] > TOTAL_CEILING for sums in rollup_sums):
        return False
    return all(amount <= TOTAL_CEILING for amount in late_amounts)


def _credits(nanos: int) -> str:
    return f"{nanos // 10**9:,} credits"


def over_ceilings(
    events: Sequence[ValidEvent],
    amounts: Sequence[int],
    keys: Sequence[EventKeys],
    *,
    deficits: Mapping[str, int],
    stored: StoredTotals | None = None,
) -> list[Rejection]:
    """The events (in ``events`` order) that would pass a ceiling; the others fit together.

    ``deficits`` is each account's deficit now (zero or negative): usage no grant covers
    lands there, so the batch may take it down to ``-TOTAL_CEILING`` and no further.
    """
    known = stored.rows if stored is not None else {}
    batch_amount: dict[str, int] = {}
    totals: dict[Hashable, list[int]] = {}
    rejected: list[Rejection] = []

    def reject(event: ValidEvent, code: str, message: str) -> None:
        rejected.append(Rejection(event.index, event.event_id, "quantity", code, message))

    for event, amount, event_keys in zip(events, amounts, keys, strict=True):
        if amount > MAX_EVENT_AMOUNT_NANOS:
            reject(
                event,
                "amount_too_large",
                f"this event is rated {_credits(amount)}, over the ceiling of "
                f"{_credits(MAX_EVENT_AMOUNT_NANOS)} per event",
            )
            continue
        account_total = batch_amount.get(event.account_id, 0) + amount
        if account_total > MAX_BATCH_AMOUNT_NANOS:
            reject(
                event,
                "batch_amount_too_large",
                f"this request's events for {event.account_id} pass {_credits(MAX_BATCH_AMOUNT_NANOS)}; "
                "send this event in another request",
            )
            continue
        if deficits.get(event.account_id, 0) - account_total < -TOTAL_CEILING:
            reject(
                event,
                "total_too_large",
                f"the balance of {event.account_id} would fall below -{_credits(TOTAL_CEILING)}",
            )
            continue
        # Rollup rows hold quantity and amount; a late-usage row holds an amount (and a count).
        targets = [(event_keys.hourly, event.quantity), (event_keys.daily, event.quantity)]
        if event_keys.late is not None:
            targets.append((event_keys.late, 0))
        sums = []
        for key, quantity in targets:
            current = totals.get(key)
            if current is None:
                current = totals[key] = list(known.get(key, (0, 0)))
            sums.append((current, current[0] + quantity, current[1] + amount))
        if any(quantity > TOTAL_CEILING or total > TOTAL_CEILING for _, quantity, total in sums):
            reject(
                event,
                "total_too_large",
                f"this event would take a stored usage total (one hour or day of this meter) past "
                f"{TOTAL_CEILING:,}; such totals cannot be stored exactly",
            )
            continue
        batch_amount[event.account_id] = account_total
        for current, quantity, total in sums:
            current[0] = quantity
            current[1] = total
    return rejected
