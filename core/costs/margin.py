"""Margin per meter and model for a UTC month: revenue (rated usage) against the cost card.

- **Revenue** is the rated amount of the month's usage, from the hourly rollup (every account),
  in credits, read as dollars at 1 credit = $1.00 (``core.money.CREDIT_VALUE_USD``).
- **Cost** is each hour's quantity times the cost in force at that hour's start
  (``core.costs.cards``: cost versions start on whole UTC hours, so a cost change within the
  month applies from its own hour, exactly). One rounding (half-even, to the nano-dollar) per line.
- A line with usage that no cost covers (no cost card, or none for that meter and model at that
  hour) has no cost and no margin: it reads "no cost card", never a silent 100 % margin. The
  totals' cost and margin cover the costed lines only, and say how much revenue is left out.

Everything is exact: integers in nanos, ``Decimal`` for the margin percentage.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import CostCard, CostCardVersion, CostPrice, Meter, UsageRollupHourly
from core.errors import NotFound, ValidationError
from core.money import CREDIT_VALUE_USD, ROUNDING_MODE, div_round_half_even
from core.support.agents import SUPPORT_ADMIN, Agent, require_agent

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
PERCENT_PLACES = Decimal("0.01")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as the UTC instants ``[start, end)``; a ValidationError naming ``month`` otherwise."""
    found = _MONTH.match(month.strip()) if isinstance(month, str) else None
    if found is None or not 1 <= int(found[2]) <= 12 or not 1970 <= int(found[1]) <= 9998:
        raise ValidationError(
            f"month: give a month as YYYY-MM (e.g. 2026-11), not {str(month)[:20]!r}", field="month"
        )
    year, number = int(found[1]), int(found[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def usd_nanos_of_credits(credits_nanos: int) -> int:
    """Credits (nanos) worth in US dollars (nanos of a dollar), at ``CREDIT_VALUE_USD``."""
    value = Decimal(credits_nanos) * CREDIT_VALUE_USD
    assert value == value.to_integral_value(), "a credit is worth a whole number of nano-dollars"
    return int(value)


def margin_percent(margin_nanos: int, revenue_nanos: int) -> Decimal | None:
    """Margin as a percentage of revenue, two decimals (half-even); None without revenue."""
    if revenue_nanos == 0:
        return None
    return (Decimal(margin_nanos) * 100 / Decimal(revenue_nanos)).quantize(
        PERCENT_PLACES, rounding=ROUNDING_MODE
    )


@dataclass(frozen=True)
class MarginLine:
    """One meter and model over the month. Money in nanos of a US dollar."""

    meter: str
    meter_display: str
    unit: str
    model: str  # "" = usage without a model
    quantity: int
    revenue_nanos: int
    cost_nanos: int | None  # None: some of this usage has no cost card ("no cost card")
    uncosted_quantity: int

    @property
    def has_cost(self) -> bool:
        return self.cost_nanos is not None

    @property
    def margin_nanos(self) -> int | None:
        return None if self.cost_nanos is None else self.revenue_nanos - self.cost_nanos

    @property
    def margin_percent(self) -> Decimal | None:
        margin = self.margin_nanos
        return None if margin is None else margin_percent(margin, self.revenue_nanos)


@dataclass(frozen=True)
class MarginReport:
    month: str
    start: datetime
    end: datetime
    cost_card_key: str | None  # None: no cost card at all
    lines: list[MarginLine]

    @property
    def revenue_nanos(self) -> int:
        return sum(line.revenue_nanos for line in self.lines)

    @property
    def costed_revenue_nanos(self) -> int:
        return sum(line.revenue_nanos for line in self.lines if line.has_cost)

    @property
    def uncosted_revenue_nanos(self) -> int:
        return self.revenue_nanos - self.costed_revenue_nanos

    @property
    def cost_nanos(self) -> int:
        return sum(line.cost_nanos or 0 for line in self.lines)

    @property
    def margin_nanos(self) -> int:
        return self.costed_revenue_nanos - self.cost_nanos

    @property
    def margin_percent(self) -> Decimal | None:
        return margin_percent(self.margin_nanos, self.costed_revenue_nanos)

    @property
    def uncosted_lines(self) -> list[MarginLine]:
        return [line for line in self.lines if not line.has_cost]


@dataclass(frozen=True)
class _CostVersion:
    effective_from: datetime
    costs: dict[tuple[int, str], tuple[int, int]]  # (meter_id, model) -> (cost_nanos, per_units)

    def cost_of(self, meter_id: int, model: str) -> tuple[int, int] | None:
        return self.costs.get((meter_id, model)) or self.costs.get((meter_id, ""))


def _chosen_card(session: Session, key: str | None) -> CostCard | None:
    if key is not None:
        card = session.scalar(select(CostCard).where(CostCard.key == key))
        if card is None:
            raise NotFound(
                f"no cost card {key[:64]!r} (load one with `meterline costs load FILE`)", field="cost_card"
            )
        return card
    cards = list(session.scalars(select(CostCard).order_by(CostCard.key)))
    if len(cards) > 1:
        raise ValidationError(
            "several cost cards are loaded ("
            + ", ".join(c.key for c in cards)
            + "): name one with --cost-card",
            field="cost_card",
        )
    return cards[0] if cards else None


def _cost_versions(session: Session, card: CostCard | None) -> list[_CostVersion]:
    if card is None:
        return []
    versions = list(
        session.scalars(
            select(CostCardVersion)
            .where(CostCardVersion.cost_card_id == card.id)
            .order_by(CostCardVersion.effective_from)
        )
    )
    costs: dict[int, dict[tuple[int, str], tuple[int, int]]] = {v.id: {} for v in versions}
    if versions:
        for price in session.scalars(select(CostPrice).where(CostPrice.version_id.in_(costs))):
            costs[price.version_id][(price.meter_id, price.model)] = (price.cost_nanos, price.per_units)
    return [_CostVersion(v.effective_from, costs[v.id]) for v in versions]


def margin_for_month(session: Session, month: str, *, cost_card: str | None = None) -> MarginReport:
    """The month's margin per meter and model (operators; the console goes through ``margin_for_agent``).

    Read in the caller's transaction: run it in one snapshot (REPEATABLE READ on PostgreSQL) when
    ingestion runs meanwhile and the rows must agree to the nano.
    """
    start, end = month_bounds(month)
    card = _chosen_card(session, cost_card)
    versions = _cost_versions(session, card)
    starts = [v.effective_from for v in versions]
    hourly = UsageRollupHourly
    rows = session.execute(
        select(
            hourly.meter_id,
            hourly.model,
            hourly.hour_start,
            func.sum(hourly.quantity),
            func.sum(hourly.amount_nanos),
        )
        .where(hourly.hour_start >= start, hourly.hour_start < end)
        .group_by(hourly.meter_id, hourly.model, hourly.hour_start)
    ).all()
    quantity: dict[tuple[int, str], int] = {}
    revenue: dict[tuple[int, str], int] = {}
    cost: dict[tuple[int, str], Fraction] = {}
    uncosted: dict[tuple[int, str], int] = {}
    for meter_id, model, hour_start, hour_quantity, hour_amount in rows:
        key = (int(meter_id), str(model))
        hour_quantity, hour_amount = int(hour_quantity or 0), int(hour_amount or 0)
        quantity[key] = quantity.get(key, 0) + hour_quantity
        revenue[key] = revenue.get(key, 0) + hour_amount
        index = bisect.bisect_right(starts, hour_start) - 1
        found = versions[index].cost_of(*key) if index >= 0 else None
        if found is None:
            uncosted[key] = uncosted.get(key, 0) + hour_quantity
        else:
            cost_nanos, per_units = found
            cost[key] = cost.get(key, Fraction(0)) + Fraction(hour_quantity * cost_nanos, per_units)
    meters = {m.id: m for m in session.scalars(select(Meter))}
    lines = []
    for key in quantity:
        meter = meters[key[0]]
        exact = cost.get(key, Fraction(0))
        has_cost = key not in uncosted
        lines.append(
            MarginLine(
                meter=meter.name,
                meter_display=meter.display_name or meter.name,
                unit=meter.unit,
                model=key[1],
                quantity=quantity[key],
                revenue_nanos=usd_nanos_of_credits(revenue[key]),
                cost_nanos=div_round_half_even(exact.numerator, exact.denominator) if has_cost else None,
                uncosted_quantity=uncosted.get(key, 0),
            )
        )
    lines.sort(key=lambda line: (line.meter, line.model))
    return MarginReport(
        month=month.strip(), start=start, end=end, cost_card_key=card.key if card else None, lines=lines
    )


def margin_for_agent(
    session: Session, agent: Agent, month: str, *, cost_card: str | None = None
) -> MarginReport:
    """``margin_for_month`` for a support admin; PermissionDenied for anyone else (customers included)."""
    require_agent(agent, SUPPORT_ADMIN)
    return margin_for_month(session, month, cost_card=cost_card)
