"""Reading an amount a person typed: only what the forms' help texts promise, nothing else.

Accepted: ASCII digits, with thousands commas in groups of three if any ("1,250"), then
optionally a point and one or two decimals ("12.5", "12.50"); spaces around it, and a leading
"$" for dollars, are ignored. Refused with a message that says what to type: exponents
("1e1"), other scripts' digits ("١٢", which ``Decimal`` would read as 12), signs, "NaN",
underscores, more decimals than the field takes ("10.001"). The caller names the field.
"""

from __future__ import annotations

import re
from decimal import Decimal

from core.errors import ValidationError

PLACES = 2
_AMOUNT = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?", re.ASCII)
MAX_DIGITS = 15  # before the point: far past any amount the forms take, short of huge inputs


def typed_amount(text: str, *, field: str, what: str = "an amount", dollars: bool = False) -> Decimal:
    """The exact value of ``text`` ("1,250.50" -> Decimal("1250.50")), or ValidationError on ``field``.

    ``what`` says the unit in messages ("an amount in dollars"); ``dollars`` also allows a leading "$".
    """
    cleaned = text.strip(" ")
    if dollars and cleaned.startswith("$"):
        cleaned = cleaned[1:].lstrip(" ")
    example = "40 or 1,250.50"
    if not cleaned:
        raise ValidationError(f"type {what}, like {example}", code="required", field=field)
    match = _AMOUNT.fullmatch(cleaned)
    if match is None:
        raise ValidationError(
            f"type {what} with the digits 0-9 only, like {example} (no letters, signs or exponents)",
            code="not_an_amount",
            field=field,
        )
    decimals = match.group(1)
    if decimals is not None and len(decimals) > PLACES:
        raise ValidationError(
            f"give {what} with at most {PLACES} decimals, like 12.50", code="too_precise", field=field
        )
    whole = cleaned.split(".", 1)[0].replace(",", "")
    if len(whole.lstrip("0")) > MAX_DIGITS:
        raise ValidationError(f"{what} that large cannot be right", code="too_large", field=field)
    return Decimal(cleaned.replace(",", ""))
