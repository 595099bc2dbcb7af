"""A typed amount is read only as the forms' help texts say ("40", "12.50", "1,250.50", "$40"),
never as Python's ``Decimal`` would read it: "1e1" is not $10 and "١٢" is not $12. Each refusal is
a ValidationError naming the field and saying what to type."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.amount_input import typed_amount
from core.errors import ValidationError
from core.payments.config import dollars_to_cents

GOOD = {
    "40": Decimal("40"),
    "12.5": Decimal("12.5"),
    "12.50": Decimal("12.50"),
    " 10 ": Decimal("10"),  # spaces around a paste are not part of the amount
    "1,250.50": Decimal("1250.50"),
    "1250.50": Decimal("1250.50"),
    "0.01": Decimal("0.01"),
    "007": Decimal("7"),
}
BAD = {
    "1e1": "not_an_amount",  # Decimal reads 10
    "1E1": "not_an_amount",
    "١٢": "not_an_amount",  # Arabic-Indic digits: Decimal reads 12
    "１２": "not_an_amount",  # full-width digits
    "10.001": "too_precise",
    "-5": "not_an_amount",
    "+5": "not_an_amount",
    "NaN": "not_an_amount",
    "Infinity": "not_an_amount",
    "1_000": "not_an_amount",
    "12,34": "not_an_amount",  # a comma is a thousands separator, in groups of three
    "1,2345": "not_an_amount",
    ".5": "not_an_amount",
    "5.": "not_an_amount",
    "1 000": "not_an_amount",
    "\u00a010": "not_an_amount",  # a no-break space is not an ASCII space
    "ten": "not_an_amount",
    "": "required",
    "   ": "required",
    "9" * 40: "too_large",
}


@pytest.mark.parametrize(("text", "value"), GOOD.items())
def test_what_the_help_text_says_is_read_exactly(text: str, value: Decimal) -> None:
    assert typed_amount(text, field="amount") == value


@pytest.mark.parametrize(("text", "code"), BAD.items())
def test_anything_else_is_refused_naming_the_field(text: str, code: str) -> None:
    with pytest.raises(ValidationError) as raised:
        typed_amount(text, field="threshold", what="a number of credits")
    assert raised.value.field == "threshold" and raised.value.code == code
    assert "credits" in raised.value.message  # says what to type


def test_dollars_take_a_leading_dollar_sign_and_become_cents() -> None:
    assert dollars_to_cents("$1,250.50") == 125_050
    assert dollars_to_cents(" $ 40 ") == 4_000
    with pytest.raises(ValidationError) as raised:
        dollars_to_cents("1e1", field="monthly_max")
    assert raised.value.field == "monthly_max" and "dollars" in raised.value.message
