"""How money, quantities, dates and times are written for people: the one rule (docs/money.md).

Every page, export, email, notification and webhook text takes its figures from here, so
the same amount reads the same everywhere and two figures side by side are always comparable.

- **Credits** for everything that lives on the ledger or is measured against it: the balance,
  grants, usage cost and spend, projections and runway, caps and alert thresholds, ledger
  entries, rate-card prices. "1,284.10 credits"; in a table the column header names the unit
  ("Amount (credits)") and the cells carry the number only ("1,284.10").
- **Dollars** only for what moves on a card: a top-up's price, a refund to the card, a
  receipt, auto-recharge's charge. "$20.00". Where a purchase meets the ledger both appear:
  "$20.00 → 20.00 credits".
- **Two decimals** for every amount (credits and dollars), rounded half-even. A non-zero
  amount that rounds to zero reads "< 0.01 credits" ("> -0.01 credits" below zero), its
  exact value one ``exact_credits`` away (a tooltip). Prices are exact: as many decimals as
  the rate card has, at least two.
- **Exports keep exact values**: every digit, as decimal strings (``core.money.nanos_to_credits``).
- **Dates** "Dec 7, 2026"; **times** "Dec 7, 2026, 04:48 PST", in the account's time zone
  with the zone's abbreviation. Charts' axes may drop the year ("Dec 7").
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from core.money import (
    CREDIT_VALUE_USD,
    NANOS_PER_CREDIT,
    ROUNDING_MODE,
    exact_price_text,
    nanos_to_credits,
)

PLACES = 2
_STEP = Decimal(1).scaleb(-PLACES)
CREDITS_UNIT = "credits"
SMALLEST_SHOWN = "0.01"


def _rounded(value: Decimal) -> Decimal:
    return value.quantize(_STEP, rounding=ROUNDING_MODE)


def credits_number(nanos: int) -> str:
    """The number of a credit amount, for a cell under a "(credits)" header: "1,284.10",
    "-3.20", "< 0.01" (non-zero, rounds to zero), "0.00"."""
    value = nanos_to_credits(nanos)
    shown = _rounded(value)
    if shown == 0 and nanos != 0:
        return f"< {SMALLEST_SHOWN}" if nanos > 0 else f"> -{SMALLEST_SHOWN}"
    if shown == 0:
        shown = abs(shown)  # never "-0.00"
    return f"{shown:,f}"


def format_credits(nanos: int) -> str:
    """A credit amount for people: "1,284.10 credits", "< 0.01 credits"."""
    return f"{credits_number(nanos)} {CREDITS_UNIT}"


def credits_change_number(nanos: int) -> str:
    """A change of the balance, for a cell under a "(credits)" header: "+20.00", "-11.71", "0.00"."""
    text = credits_number(nanos)
    return f"+{text}" if nanos > 0 and not text.startswith("<") else text


def format_credits_change(nanos: int) -> str:
    """A change of the balance for people: "+20.00 credits", "-11.71 credits"."""
    return f"{credits_change_number(nanos)} {CREDITS_UNIT}"


def exact_credits(nanos: int) -> str:
    """Every digit of a credit amount, for a tooltip or an export: "0.00000046 credits"."""
    value = nanos_to_credits(nanos).normalize()
    if value.as_tuple().exponent > -PLACES:  # type: ignore[operator]
        value = value.quantize(_STEP)
    return f"{value:,f} {CREDITS_UNIT}"


def is_rounded(nanos: int) -> bool:
    """True when ``format_credits`` hides digits (then show ``exact_credits`` beside it)."""
    return nanos % (NANOS_PER_CREDIT // 10**PLACES) != 0


def credits_help(nanos: int) -> str | None:
    """The tooltip for a rounded amount ("Exactly 0.00000046 credits"), None when nothing is hidden."""
    return f"Exactly {exact_credits(nanos)}" if is_rounded(nanos) else None


def format_dollars_cents(cents: int) -> str:
    """A card amount in US cents: "$20.00", "-$3.20"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def format_dollars(nanos: int) -> str:
    """A card amount held in nanos (a refund of credits, 1 credit = $1): "$20.00", "< $0.01"."""
    value = nanos_to_credits(nanos) * CREDIT_VALUE_USD
    shown = _rounded(value)
    if shown == 0 and nanos != 0:
        return f"< ${SMALLEST_SHOWN}" if nanos > 0 else f"> -${SMALLEST_SHOWN}"
    sign = "-" if shown < 0 else ""
    return f"{sign}${abs(shown):,f}"


# What a credit is worth, where a page says it ("1 credit = $1.00").
CREDIT_WORTH = f"1 credit = {format_dollars(NANOS_PER_CREDIT)}"


def purchase_text(cents: int, credits_nanos: int) -> str:
    """Where a card payment meets the ledger: "$20.00 → 20.00 credits"."""
    return f"{format_dollars_cents(cents)} → {format_credits(credits_nanos)}"


def format_price(price_nanos: int, per_units: int = 1) -> str:
    """One unit's price exactly, never rounded: "2.405 credits", "0.000002405 credits",
    "1.00 credits / 3" (when it is not a finite decimal)."""
    return f"{exact_price_text(price_nanos, per_units)} {CREDITS_UNIT}"


def format_quantity(quantity: int, unit: str) -> str:
    """A whole quantity with its unit: "1,234,567 tokens"."""
    return f"{quantity:,} {unit}"


def format_date(day: date) -> str:
    """ "Dec 7, 2026"."""
    return f"{day:%b} {day.day}, {day.year}"


def format_date_range(start: date, end: date) -> str:
    """A span of days, the year once: "Nov 22, 2026", "Nov 1–22, 2026", "Oct 25 – Nov 22, 2026",
    "Dec 28, 2026 – Jan 3, 2027"."""
    if start == end:
        return format_date(start)
    if start.year != end.year:
        return f"{format_date(start)} – {format_date(end)}"
    if start.month != end.month:
        return f"{format_day_short(start)} – {format_date(end)}"
    return f"{format_day_short(start)}–{end.day}, {end.year}"


def format_day_short(day: date) -> str:
    """ "Dec 7" (chart axes, where the year is shown elsewhere)."""
    return f"{day:%b} {day.day}"


def local_time(moment: datetime, timezone: str) -> datetime:
    """``moment`` (aware) in ``timezone``."""
    return moment.astimezone(ZoneInfo(timezone))


def format_wall_time(local: datetime) -> str:
    """ "Dec 7, 2026, 04:48": a time already on the account's clock (a chart's hour bucket),
    its zone named elsewhere (an axis title, a note above the table)."""
    return f"{format_date(local.date())}, {local:%H:%M}"


def format_datetime(moment: datetime, timezone: str, *, zone: bool = True) -> str:
    """ "Dec 7, 2026, 04:48 PST" in the account's time zone (``zone=False`` drops the
    abbreviation where a header already names the zone)."""
    local = local_time(moment, timezone)
    text = format_wall_time(local)
    return f"{text} {local.tzname()}" if zone else text


# The same rule for ``st.column_config.DateColumn`` / ``DatetimeColumn`` (Moment.js tokens), where a
# table keeps real dates so that they sort as dates: "Dec 7, 2026" and "Dec 7, 2026, 04:48 PST".
DATE_COLUMN_FORMAT = "MMM D, YYYY"
DATETIME_COLUMN_FORMAT = "MMM D, YYYY, HH:mm z"
DATETIME_COLUMN_FORMAT_NO_ZONE = "MMM D, YYYY, HH:mm"


def zone_note(timezone: str, moment: datetime) -> str:
    """ "Times in America/Los_Angeles (PST)": for a table whose cells leave the zone out."""
    return f"Times in {timezone} ({local_time(moment, timezone).tzname()})"
