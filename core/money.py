"""Exact money: integers in a fixed minor unit, and the one rounding function.

The ledger counts **nano-credits** (1 credit = 10**9 nanos). One credit is worth
one US dollar (``CREDIT_VALUE_USD``). Nanos are fine enough that a per-token price
as low as $0.001 per million tokens (1 nano per 1,000 tokens) rates a single event
exactly enough, and an int64 still holds ±9.2 billion credits per account.

Rating multiplies integer quantities by integer prices and divides once, with
``div_round_half_even`` (ROUND_HALF_EVEN, "banker's rounding", so rounding errors
do not drift one way over millions of events). Floats never enter.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from math import gcd

NANOS_PER_CREDIT = 1_000_000_000
CREDIT_VALUE_USD = Decimal("1.00")
ROUNDING_MODE = ROUND_HALF_EVEN
CURRENCY = "USD"
CENTS_PER_CREDIT = 100
# Every stored total (an account's balance, a usage rollup's quantity and amount) stays within
# ±TOTAL_CEILING, so adding a batch (at most TOTAL_CEILING more) to it can never overflow a
# signed 64-bit integer: 8e18 < 2**63 - 1 ≈ 9.22e18. See core.metering.settings for the rest.
TOTAL_CEILING = 4 * 10**18
CENT = Decimal("0.01")


def div_round_half_even(numerator: int, denominator: int) -> int:
    """Return numerator / denominator rounded to an integer, ties to even (ROUND_HALF_EVEN)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def to_decimal(value: object, *, field: str = "amount") -> Decimal:
    """Parse an int, str or Decimal into a finite Decimal; floats are refused, not rounded."""
    if isinstance(value, (bool, float)):
        raise ValueError(f"{field}: give an exact number as a string or integer, not a float")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip().replace(",", "").replace("_", "").lstrip("$"))
        except InvalidOperation:
            raise ValueError(f"{field}: {value!r} is not a number") from None
    else:
        raise ValueError(f"{field}: expected a number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{field}: must be a finite number")
    return result


def credits_to_nanos(value: object, *, field: str = "amount") -> int:
    """Convert an exact credit amount ("12.50", 3, Decimal) to nanos; refuse sub-nano precision."""
    scaled = to_decimal(value, field=field) * NANOS_PER_CREDIT
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{field}: {value} has more than 9 decimal places")
    return int(scaled)


def nanos_to_credits(nanos: int) -> Decimal:
    """Exact credit value of an amount in nanos."""
    return Decimal(nanos).scaleb(-9)


def quantize_credits(nanos: int, places: int = 2) -> Decimal:
    """Credits rounded for display to ``places`` decimals with ``ROUNDING_MODE``."""
    return nanos_to_credits(nanos).quantize(Decimal(1).scaleb(-places), rounding=ROUNDING_MODE)


def cents_to_nanos(cents: int) -> int:
    """Credits bought for an amount in US cents (1 credit = $1.00)."""
    return cents * (NANOS_PER_CREDIT // CENTS_PER_CREDIT)


def _exact_decimal_text(nanos: int, scale: int) -> str:
    """ "1,284.10" for ``nanos * 10**-scale`` nanos: every digit, at least two decimals."""
    digits = str(abs(nanos))
    # Built from the digits and padded in a context wide enough for all of them: nothing rounds.
    with localcontext() as context:
        context.prec = len(digits) + 2
        value = Decimal((0, tuple(int(d) for d in digits), -(9 + scale))).normalize()
        if value.as_tuple().exponent > -2:  # type: ignore[operator]
            value = value.quantize(CENT)  # "3.00", "2.50", "300.00": zeros added, none dropped
    sign = "-" if nanos < 0 else ""
    return f"{sign}{value:,f}"


def exact_price_text(price_nanos: int, per_units: int = 1) -> str:
    """One unit's price in credits exactly, never rounded, when ``price_nanos`` buys ``per_units`` units.

    "2.405", "0.00125", "3.00" (at least two decimals), "0.000002405" (a per-million
    price per token, finer than a nano). When one unit's price is not a finite decimal
    (a price per 3 units) it reads as the exact quotient: "1.00 / 3".
    """
    if per_units <= 0:
        raise ValueError("per_units must be positive")
    divisor = gcd(price_nanos, per_units) or 1
    units = per_units // divisor  # one unit's price is (price_nanos // divisor) / units nanos
    twos = fives = 0
    while units % 2 == 0:
        units, twos = units // 2, twos + 1
    while units % 5 == 0:
        units, fives = units // 5, fives + 1
    if units != 1:
        return f"{_exact_decimal_text(price_nanos, 0)} / {per_units:,}"
    # per_units // divisor = 2**twos * 5**fives divides 10**scale: scale up rather than divide.
    scale = max(twos, fives)
    return _exact_decimal_text(price_nanos // divisor * (10**scale // (per_units // divisor)), scale)
