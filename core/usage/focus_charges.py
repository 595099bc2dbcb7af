"""The charges of one account and one UTC month, read for the FOCUS export (``core.usage.focus``).

Three kinds, each from the table that records it exactly:

- **Usage**: the hourly rollup (UTC hours) summed per UTC day, meter, model, project and API key,
  split where a price version starts inside the day. The daily rollup is kept per *local* day of
  the account's timezone, so it cannot give UTC days for an account outside UTC; the hourly one can.
  An hour in which a version starts (a start that is not on the hour) is read from the raw events
  (from the month's Parquet file once they are archived: ``core.usage.archive``).
- **Purchase**: each purchased grant that took effect in the month (what the customer paid), and
  each refund or lost dispute of a card top-up last changed in the month (negative).
- **Credit**: promotional and goodwill credits *applied* in the month, per UTC day and grant: the
  ledger's usage and negative-balance repayments that those grants paid for (negative).

Every amount is an exact ``Fraction`` of credits (1 credit = 1 US dollar); nothing is rounded here.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, and_, case, func, or_, select
from sqlalchemy.orm import Session

from core.db.models import (
    Account,
    CreditGrant,
    LedgerEntry,
    Meter,
    PaymentFact,
    TopUp,
    UsageEvent,
    UsageRollupHourly,
)
from core.ledger import reasons
from core.metering.rater import current_rate_book
from core.money import NANOS_PER_CREDIT, div_round_half_even
from core.rating import AccountPricing
from core.usage.archive import archived_months, read_archived_events
from core.usage.focus_prices import (
    PriceResolver,
    RowPrice,
    card_versions,
    credits,
    exact_decimal,
    plural_unit,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TAG_PREFIX = "meterline/"  # provider-defined tags carry a prefix (FOCUS Tags)
PREPAID_CREDITS = "Prepaid credits"  # the service of purchases and credit rows
CREDIT_PRICING_CURRENCY = "Credits"  # usage is priced in credits, a virtual currency (FOCUS 1.2)


@dataclass(frozen=True)
class Charge:
    """One row of the export before it is written: exact numbers, None for null."""

    category: str  # Usage | Purchase | Credit
    frequency: str  # Usage-Based | One-Time
    period_start: datetime
    period_end: datetime
    description: str
    billed: Fraction
    effective: Fraction
    list_cost: Fraction
    contracted_cost: Fraction
    service_name: str
    pricing_currency: str
    charge_class: str | None = None
    list_unit_price: Fraction | None = None
    contracted_unit_price: Fraction | None = None
    pricing_quantity: Fraction | None = None
    pricing_unit: str | None = None
    pricing_category: str | None = None
    consumed_quantity: int | None = None
    consumed_unit: str | None = None
    sku_id: str | None = None
    sku_price_id: str | None = None
    sku_meter: str | None = None
    sku_price_details: dict[str, Any] | None = None
    sub_account: str | None = None  # the project
    resource_id: str | None = None
    resource_name: str | None = None
    resource_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Month:
    """A calendar month in UTC: [start, end)."""

    label: str  # "2026-11"
    start: datetime
    end: datetime

    def days(self) -> list[datetime]:
        count = (self.end - self.start) // DAY
        return [self.start + index * DAY for index in range(count)]


def _segment_case(column: Any, starts: Sequence[datetime]) -> ColumnElement[int]:
    """The index of the last of ``starts`` (sorted) at or before ``column``: a portable bucket."""
    whens = [(column >= start, index) for index, start in reversed(list(enumerate(starts)))]
    return case(*whens, else_=0).cast(Integer)


# --- usage ----------------------------------------------------------------------------------------


def _usage_sums(
    session: Session, account_id: str, month: Month, starts: list[datetime], mixed_hours: list[datetime]
) -> dict[tuple[int, int, str, str, str], tuple[int, int]]:
    """(segment, meter, model, project, api_key) -> (quantity, amount_nanos) over the month."""
    sums: dict[tuple[int, int, str, str, str], tuple[int, int]] = {}

    def add(rows: Sequence[Any]) -> None:
        for segment, meter_id, model, project, api_key, quantity, amount in rows:
            key = (int(segment), int(meter_id), model, project, api_key)
            old_quantity, old_amount = sums.get(key, (0, 0))
            sums[key] = (old_quantity + int(quantity), old_amount + int(amount))

    hourly = UsageRollupHourly
    segment = _segment_case(hourly.hour_start, starts)
    where = [hourly.account_id == account_id, hourly.hour_start >= month.start, hourly.hour_start < month.end]
    if mixed_hours:
        where.append(hourly.hour_start.not_in(mixed_hours))
    add(
        session.execute(
            select(
                segment,
                hourly.meter_id,
                hourly.model,
                hourly.project,
                hourly.api_key,
                func.sum(hourly.quantity).cast(BigInteger),
                func.sum(hourly.amount_nanos).cast(BigInteger),
            )
            .where(*where)
            .group_by(segment, hourly.meter_id, hourly.model, hourly.project, hourly.api_key)
        ).all()
    )
    if mixed_hours and archived_months(session, month.start, month.end):
        # The month's raw events were archived: read those hours from its Parquet file.
        archived_rows = []
        windows = [(hour, hour + HOUR) for hour in mixed_hours]
        columns = ("occurred_at", "meter_id", "model", "project", "api_key", "quantity", "amount_nanos")
        rows = read_archived_events(session, month.start.date(), account_id, columns=columns, windows=windows)
        for row in rows:
            index = max(bisect_right(starts, row["occurred_at"]) - 1, 0)  # as _segment_case buckets it
            archived_rows.append([index, *(row[name] for name in columns[1:])])
        add(archived_rows)
    elif mixed_hours:
        # A version starts inside these hours: their rollup mixes two prices, the events do not.
        event = UsageEvent
        segment = _segment_case(event.occurred_at, starts)
        windows = [and_(event.occurred_at >= hour, event.occurred_at < hour + HOUR) for hour in mixed_hours]
        add(
            session.execute(
                select(
                    segment,
                    event.meter_id,
                    event.model,
                    event.project,
                    event.api_key,
                    func.sum(event.quantity).cast(BigInteger),
                    func.sum(event.amount_nanos).cast(BigInteger),
                )
                .where(event.account_id == account_id, or_(*windows))
                .group_by(segment, event.meter_id, event.model, event.project, event.api_key)
            ).all()
        )
    return sums


def _hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _tags(model: str, project: str, api_key: str) -> dict[str, str]:
    dimensions = {"model": model, "project": project, "api_key": api_key}
    return {f"{TAG_PREFIX}{name}": value for name, value in dimensions.items() if value}


def _price_details(price: RowPrice) -> dict[str, Any] | None:
    """FOCUS SkuPriceDetails for a tiered price: its tiers by monthly volume (``x_`` = our own key)."""
    texts = [exact_decimal(unit_price) for _, unit_price in price.tiers]
    if not price.tiers or None in texts:
        return None
    return {
        "x_Tiers": [
            {"UpToMonthlyQuantity": up_to, "UnitPrice": format(text, "f")}
            for (up_to, _), text in zip(price.tiers, texts, strict=True)
        ]
    }


def usage_charges(session: Session, account: Account, month: Month) -> list[Charge]:
    """Usage rows: one per UTC day, meter, model, project, API key and price."""
    resolver = PriceResolver(
        current_rate_book(session),
        AccountPricing(account.id, account.rate_card_id, account.override_rate_card_id),
        card_versions(session),
    )
    boundaries = [start for start in resolver.version_starts() if month.start < start < month.end]
    starts = sorted({*month.days(), *boundaries})
    mixed_hours = sorted({_hour_of(start) for start in boundaries if start != _hour_of(start)})
    sums = _usage_sums(session, account.id, month, starts, mixed_hours)
    meters = {
        meter_id: (name, display or name, unit)
        for meter_id, name, display, unit in session.execute(
            select(Meter.id, Meter.name, Meter.display_name, Meter.unit)
        ).all()
    }

    # Segments of one day with the same price make one row.
    rows: dict[tuple[datetime, int, str, str, str, str], list[Any]] = {}
    for (segment, meter_id, model, project, api_key), (quantity, amount) in sums.items():
        if quantity == 0 and amount == 0:
            continue
        segment_start = starts[segment]
        meter_name, _, unit = meters[meter_id]
        price = resolver.price(meter_id, meter_name, unit, (model, project, api_key), segment_start)
        day = segment_start.replace(hour=0, minute=0, second=0, microsecond=0)
        key = (day, meter_id, model, project, api_key, price.sku_price_id)
        if key in rows:
            rows[key][1] += quantity
            rows[key][2] += amount
        else:
            rows[key] = [price, quantity, amount]

    charges = []
    for (day, meter_id, model, project, api_key, _), (price, quantity, amount) in sorted(rows.items()):
        _, display, unit = meters[meter_id]
        billed = credits(amount)
        pricing_quantity = Fraction(quantity, price.pricing_per)
        units = plural_unit(unit)
        subject = f"{display} on {model}" if model else display
        charges.append(
            Charge(
                category="Usage",
                frequency="Usage-Based",
                period_start=day,
                period_end=day + DAY,
                description=f"{subject}: {price.description}",
                billed=billed,
                effective=billed,
                list_cost=billed if price.list_unit is None else price.list_unit * pricing_quantity,
                contracted_cost=(
                    billed if price.contracted_unit is None else price.contracted_unit * pricing_quantity
                ),
                service_name=model or display,
                pricing_currency=CREDIT_PRICING_CURRENCY,
                list_unit_price=price.list_unit,
                contracted_unit_price=price.contracted_unit,
                pricing_quantity=pricing_quantity,
                pricing_unit=units if price.pricing_per == 1 else f"{price.pricing_per} {units}",
                pricing_category="Standard",
                consumed_quantity=quantity,
                consumed_unit=units,
                sku_id=price.sku_id,
                sku_price_id=price.sku_price_id,
                sku_meter=display,
                sku_price_details=_price_details(price),
                sub_account=project or None,
                resource_id=api_key or None,
                resource_type="API key" if api_key else None,
                tags=_tags(model, project, api_key),
            )
        )
    return charges


# --- purchases, refunds and disputes --------------------------------------------------------------


def _day_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _grant_tags(grant: CreditGrant, top_up_id: int | None) -> dict[str, str]:
    tags = {f"{TAG_PREFIX}grant_source": grant.source}
    if top_up_id is not None:
        tags[f"{TAG_PREFIX}top_up"] = str(top_up_id)
    return tags


def purchase_charges(session: Session, account_id: str, month: Month) -> list[Charge]:
    """Credits bought in the month (paid, face value), and refunds or lost disputes of top-ups (negative)."""
    charges: list[Charge] = []
    grants = session.scalars(
        select(CreditGrant)
        .where(
            CreditGrant.account_id == account_id,
            CreditGrant.source == "purchased",
            CreditGrant.effective_at >= month.start,
            CreditGrant.effective_at < month.end,
        )
        .order_by(CreditGrant.effective_at, CreditGrant.id)
    ).all()
    top_up_of = dict(
        session.execute(
            select(TopUp.grant_id, TopUp.id).where(TopUp.grant_id.in_([grant.id for grant in grants]))
        ).all()
    )
    for grant in grants:
        face_value = credits(grant.amount_nanos)
        paid = face_value if grant.cost_basis_cents is None else Fraction(grant.cost_basis_cents, 100)
        day = _day_of(grant.effective_at)
        unit_price: Fraction | None = paid / face_value
        if exact_decimal(unit_price) is None:
            unit_price = None  # no finite decimal: ContractedCost still says what was paid
        charges.append(
            Charge(
                category="Purchase",
                frequency="One-Time",
                period_start=day,
                period_end=day + DAY,
                description=f"Credits bought: {grant.description}" if grant.description else "Credits bought",
                billed=paid,
                effective=Fraction(0),  # the purchase pays for later usage, whose rows carry its cost
                list_cost=face_value,
                contracted_cost=paid,
                service_name=PREPAID_CREDITS,
                pricing_currency="USD",
                list_unit_price=Fraction(1),
                contracted_unit_price=unit_price,
                pricing_quantity=face_value,
                pricing_unit="Credits",
                pricing_category="Standard",
                sku_id="credits",
                sku_price_id="credits:usd",
                sku_meter="Credits",
                resource_id=f"grant:{grant.id}",
                resource_name=grant.description or None,
                resource_type="Credit grant",
                tags=_grant_tags(grant, top_up_of.get(grant.id)),
            )
        )

    # Money given back: a refund's total, or a dispute the bank decided against us (latest version).
    returned = session.execute(
        select(PaymentFact, TopUp, CreditGrant)
        .join(TopUp, TopUp.id == PaymentFact.top_up_id)
        .join(CreditGrant, CreditGrant.id == TopUp.grant_id)
        .where(
            TopUp.account_id == account_id,
            PaymentFact.updated_at >= month.start,
            PaymentFact.updated_at < month.end,
            PaymentFact.amount_cents > 0,
            or_(
                PaymentFact.kind == "refunded",
                and_(PaymentFact.kind == "dispute", PaymentFact.status == "lost"),
            ),
        )
        .order_by(PaymentFact.updated_at, PaymentFact.id)
    ).all()
    for fact, top_up, grant in returned:
        amount = -Fraction(fact.amount_cents, 100)
        day = _day_of(fact.updated_at)
        what = "refunded" if fact.kind == "refunded" else "taken back by a lost dispute"
        earlier = grant.effective_at < month.start
        charges.append(
            Charge(
                category="Purchase",
                frequency="One-Time",
                # A correction keeps the period of the charge it corrects (FOCUS ChargeClass).
                period_start=_day_of(grant.effective_at) if earlier else day,
                period_end=(_day_of(grant.effective_at) if earlier else day) + DAY,
                charge_class="Correction" if earlier else None,
                description=f"Payment for credits {what} (top-up {top_up.id})",
                billed=amount,
                effective=Fraction(0),
                list_cost=amount,
                contracted_cost=amount,
                service_name=PREPAID_CREDITS,
                pricing_currency="USD",
                pricing_quantity=_credits_bought(amount, top_up),
                pricing_unit="Credits",
                pricing_category="Standard",
                sku_id="credits",
                sku_price_id="credits:usd",
                sku_meter="Credits",
                resource_id=f"grant:{grant.id}",
                resource_name=grant.description or None,
                resource_type="Credit grant",
                tags=_grant_tags(grant, top_up.id),
            )
        )
    return charges


def _credits_bought(dollars: Fraction, top_up: TopUp) -> Fraction:
    """The credits ``dollars`` bought at ``top_up``'s price: exact, else to the nearest nano-credit
    (no unit price is given on these rows, so nothing has to multiply back to the cost)."""
    bought = dollars * credits(top_up.credits_nanos) / Fraction(top_up.amount_cents, 100)
    if exact_decimal(bought) is not None:
        return bought
    return credits(div_round_half_even(bought.numerator * NANOS_PER_CREDIT, bought.denominator))


# --- promotional and goodwill credits applied -----------------------------------------------------


def credit_charges(session: Session, account_id: str, month: Month) -> list[Charge]:
    """Promotional and goodwill credits that paid for usage in the month, per UTC day and grant."""
    starts = month.days()
    day = _segment_case(LedgerEntry.effective_at, starts)
    rows = session.execute(
        select(day, LedgerEntry.grant_id, func.sum(LedgerEntry.amount_nanos).cast(BigInteger))
        .join(CreditGrant, CreditGrant.id == LedgerEntry.grant_id)
        .where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.effective_at >= month.start,
            LedgerEntry.effective_at < month.end,
            LedgerEntry.reason.in_([reasons.USAGE, reasons.DEFICIT_REPAID]),
            LedgerEntry.amount_nanos < 0,
            CreditGrant.source.in_(["promotional", "goodwill"]),
        )
        .group_by(day, LedgerEntry.grant_id)
    ).all()
    grants = {
        grant.id: grant
        for grant in session.scalars(
            select(CreditGrant).where(CreditGrant.id.in_(sorted({grant_id for _, grant_id, _ in rows})))
        )
    }
    per_day: dict[tuple[datetime, int], int] = defaultdict(int)
    for index, grant_id, amount in rows:
        per_day[(starts[int(index)], int(grant_id))] += int(amount)
    charges = []
    for (start, grant_id), amount in sorted(per_day.items()):
        grant = grants[grant_id]
        applied = credits(amount)  # negative: what the grant paid for
        label = reasons.SOURCE_LABELS.get(grant.source, grant.source.capitalize())
        detail = f": {grant.description}" if grant.description else ""
        charges.append(
            Charge(
                category="Credit",
                frequency="Usage-Based",
                period_start=start,
                period_end=start + DAY,
                description=f"{label} credits applied to usage{detail}",
                billed=applied,
                effective=applied,
                list_cost=applied,
                contracted_cost=applied,
                service_name=PREPAID_CREDITS,
                pricing_currency=CREDIT_PRICING_CURRENCY,
                resource_id=f"grant:{grant.id}",
                resource_name=grant.description or None,
                resource_type="Credit grant",
                tags={f"{TAG_PREFIX}grant_source": grant.source},
            )
        )
    return charges
