"""JSON decoding that keeps numbers exact: the one parser of usage input (API bodies, JSON lines).

``json.loads`` turns ``2.9999999999999999`` into the float 3.0 and ``9007199254740993.0`` into
…992, and refuses integers of more than 4,300 digits with a ``ValueError`` that would fail a
whole request. Here a number with a fraction or an exponent becomes a ``Decimal`` (exact,
whatever its size), an integer of up to 40 digits an ``int``, and a longer one a ``Decimal``
too (validation then rejects it as too large, per event). ``NaN`` and ``Infinity`` are not
JSON: they make the document invalid.

``loads_usage`` is the same parser for the events of a request body, compiled (msgspec): twice
as fast, and what it returns equals ``loads_exact``'s except that an integer written with 41
to 4,300 characters stays an ``int`` (usage validation gives it the same answer either way:
not a string, or a quantity over the ceiling). Whatever msgspec refuses (bad JSON, a lone surrogate, an
integer past 4,300 digits, deeper nesting than it takes) goes to ``loads_exact``, so errors,
their messages and the documents only the standard library reads stay as they were.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec

_MAX_INT_DIGITS = 40


class NotJSON(ValueError):
    """The text is not a JSON document (the message says where)."""


def _integer(text: str) -> int | Decimal:
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


def _constant(name: str) -> Any:
    raise NotJSON(f"{name} is not a JSON value")


def loads_exact(data: str | bytes) -> Any:
    """Parse one JSON document; numbers come back as ``int`` or ``Decimal``, never ``float``."""
    try:
        return json.loads(data, parse_float=Decimal, parse_int=_integer, parse_constant=_constant)
    except NotJSON:
        raise
    except RecursionError:
        raise NotJSON("the document is nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, and bytes that are not UTF-8
        message = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        position = (
            f" (line {error.lineno}, column {error.colno})" if isinstance(error, json.JSONDecodeError) else ""
        )
        raise NotJSON(f"{message}{position}") from None


# Fractions and exponents come to ``float_hook`` as their text: Decimal(text) is exact.
_USAGE_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def loads_usage(data: bytes) -> Any:
    """``loads_exact`` for usage events, compiled: numbers are ``int`` or ``Decimal``, never ``float``."""
    try:
        return _USAGE_DECODER.decode(data)
    except (msgspec.MsgspecError, RecursionError):
        return loads_exact(data)  # the standard library's answer, and its message when it is an error
