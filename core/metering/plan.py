"""What one batch writes: its event rows, rollup sums, late-usage rows and debits. Pure.

Built in one pass over the rated events (``build_plan``); the ceilings are checked on its
sums (``BatchPlan.fits``) before anything is written, and per event (``event_keys``) only
when some total is large.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from core.metering.limits import EventKeys, batch_fits
from core.metering.model import ValidEvent

# (account_id, hour_start | usage_date, meter_id, model, project, api_key) -> [quantity, amount, count]
Rollup = dict[tuple[object, ...], list[int]]


def event_keys(
    events: Sequence[ValidEvent], usage_dates: Sequence[date], arrival_dates: dict[str, date]
) -> list[EventKeys]:
    """The stored totals each event adds to (the slow path of the ceiling checks)."""
    keys = []
    for event, usage_date in zip(events, usage_dates, strict=True):
        dims = event.dimensions
        where = (event.meter_id, dims.get("model", ""), dims.get("project", ""), dims.get("api_key", ""))
        hour = event.occurred_at.replace(minute=0, second=0, microsecond=0)
        arrived_on = arrival_dates[event.account_id]
        keys.append(
            EventKeys(
                hourly=("hourly", event.account_id, hour, *where),
                daily=("daily", event.account_id, usage_date, *where),
                late=("late", event.account_id, usage_date, arrived_on) if usage_date < arrived_on else None,
            )
        )
    return keys


@dataclass
class BatchPlan:
    """The rows and sums one batch writes."""

    rows: list[tuple[object, ...]] = field(default_factory=list)
    hourly: Rollup = field(default_factory=dict)
    daily: Rollup = field(default_factory=dict)
    late: dict[tuple[str, date, date], list[int]] = field(default_factory=dict)
    per_account: dict[str, int] = field(default_factory=dict)
    largest_amount: int = 0
    # ``[quantity, amount]`` of the whole batch, when the database sums the rollups and late
    # usage (``account_sums``): each of those sums is a part of it (all parts are non-negative).
    whole: list[int] | None = None

    def fits(self, deficits: dict[str, int]) -> bool:
        """True when the batch's own sums fit every ceiling (then no event needs checking)."""
        return batch_fits(
            largest_amount=self.largest_amount,
            per_account=self.per_account,
            deficits=deficits,
            rollup_sums=(*self.hourly.values(), *self.daily.values(), *([self.whole] if self.whole else [])),
            late_amounts=(amount for _, amount in self.late.values()),
        )


def event_rows(
    events: Sequence[ValidEvent],
    usage_dates: Sequence[date],
    rated: Sequence[tuple[int, int | None]],
    *,
    received_at: datetime,
) -> list[tuple[object, ...]]:
    """The ``usage_events`` rows of these rated events (``batch_id`` left as None)."""
    rows = []
    for event, usage_date, (amount, version_id) in zip(events, usage_dates, rated, strict=True):
        dims = event.dimensions
        rows.append(
            (
                event.account_id,
                event.event_id,
                event.meter_id,
                event.quantity,
                event.occurred_at,
                usage_date,
                dims.get("model", ""),
                dims.get("project", ""),
                dims.get("api_key", ""),
                dims,
                amount,
                version_id,
                event.content_hash,
                None,  # batch_id, known once the batch row is written
                received_at,
            )
        )
    return rows


def build_plan(
    events: Sequence[ValidEvent],
    usage_dates: Sequence[date],
    rated: Sequence[tuple[int, int | None]],
    arrival_dates: dict[str, date],
    *,
    received_at: datetime,
    rows: list[tuple[object, ...]] | None = None,
) -> BatchPlan:
    """Rows (``batch_id`` left as None; or ``rows`` when already built) and sums, in one pass."""
    plan = BatchPlan()
    plan.rows = rows if rows is not None else event_rows(events, usage_dates, rated, received_at=received_at)
    per_account = plan.per_account
    hourly = plan.hourly
    daily = plan.daily
    largest = 0
    for row, (amount, _) in zip(plan.rows, rated, strict=True):
        account_id, _, meter_id, quantity, occurred_at, usage_date, model, project, api_key = row[:9]
        # The rollup sums, inline: this loop runs once per event.
        key = (
            account_id,
            occurred_at.replace(minute=0, second=0, microsecond=0),
            meter_id,
            model,
            project,
            api_key,
        )  # type: ignore[union-attr]
        sums = hourly.get(key)
        if sums is None:
            hourly[key] = [quantity, amount, 1]
        else:
            sums[0] += quantity
            sums[1] += amount
            sums[2] += 1
        key = (account_id, usage_date, meter_id, model, project, api_key)
        sums = daily.get(key)
        if sums is None:
            daily[key] = [quantity, amount, 1]
        else:
            sums[0] += quantity
            sums[1] += amount
            sums[2] += 1
        per_account[account_id] = per_account.get(account_id, 0) + amount  # type: ignore[index]
        if amount > largest:
            largest = amount
        arrived_on = arrival_dates[account_id]  # type: ignore[index]
        if usage_date < arrived_on:  # type: ignore[operator]
            late = plan.late.setdefault((account_id, usage_date, arrived_on), [0, 0])  # type: ignore[arg-type]
            late[0] += 1
            late[1] += amount
    plan.largest_amount = largest
    return plan


def account_sums(
    events: Sequence[ValidEvent], rated: Sequence[tuple[int, int | None]], rows: list[tuple[object, ...]]
) -> BatchPlan:
    """The plan of a batch whose rollups and late usage the database sums from its rows.

    Python sums only what it needs: each account's amount (its debit), the largest amount,
    and the batch's whole quantity and amount, which bound every rollup and late-usage sum
    for ``BatchPlan.fits`` (hourly, daily and late stay empty).
    """
    plan = BatchPlan(rows=rows)
    per_account = plan.per_account
    quantity = amount_total = largest = 0
    for event, (amount, _) in zip(events, rated, strict=True):
        per_account[event.account_id] = per_account.get(event.account_id, 0) + amount
        quantity += event.quantity
        amount_total += amount
        if amount > largest:
            largest = amount
    plan.largest_amount = largest
    plan.whole = [quantity, amount_total]
    return plan
