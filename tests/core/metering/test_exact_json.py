"""The compiled parser of event bodies (``loads_usage``) returns what ``loads_exact`` returns, and
fails where it fails with the same message: numbers exact (int or Decimal), never a float."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.metering.exact_json import NotJSON, loads_exact, loads_usage


def same(text: bytes) -> None:
    try:
        expected = loads_exact(text)
    except NotJSON as error:
        with pytest.raises(NotJSON) as raised:
            loads_usage(text)
        assert str(raised.value) == str(error)
        return
    got = loads_usage(text)
    assert got == expected
    assert repr(got) == repr(expected)  # the same types: Decimal('1.50') stays Decimal('1.50')


@pytest.mark.parametrize(
    "text",
    [
        b'{"events": [{"quantity": 1.5}]}',
        b'{"quantity": 2.9999999999999999}',
        b'{"quantity": 9007199254740993.0}',
        b'{"quantity": 1e400, "b": -0.0, "c": 1E5, "d": -0, "e": 1.50}',
        b'{"quantity": 18446744073709551616, "n": -9223372036854775809}',
        b'{"a": "\\ud83d\\ude00", "b": "\\u0000", "c": "\\/\\u00e9", "d": 1, "d": 2}',
        b' {"events": []} ',
        b'[1, "x", null, true, false, {}]',
        b"",
        b"   ",
        b'{"quantity": NaN}',
        b'{"quantity": Infinity}',
        b'{"quantity": -Infinity}',
        b'{"a": "\\ud800"}',  # a lone surrogate: the standard library reads it (validation rejects it)
        b'{"a": "\xff"}',  # not UTF-8
        b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 byte order mark: read by the standard library
        '{"a": 1}'.encode("utf-16"),  # UTF-16: read by the standard library
        b'{"a": "\x01"}',  # a raw control character
        b'{"a": 1,}',
        b'{"a": 1} x',
        b'{"a": 01}',
        b'{"quantity": ' + b"9" * 4301 + b"}",  # past the int limit: a Decimal, as before
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
    ],
)
def test_same_answer_as_the_standard_library(text: bytes) -> None:
    same(text)


def test_fractions_are_decimals_never_floats() -> None:
    document = loads_usage(b'{"q": [0.1, 3.0, 1e-7, 123456789012345678901234567890.5]}')
    assert all(type(value) is Decimal for value in document["q"])
    assert document["q"][0] == Decimal("0.1")


def test_long_integers_stay_exact() -> None:
    # 41 to 4,300 digits: an int here, a Decimal in loads_exact; equal, and past any ceiling either way.
    text = b'{"quantity": ' + b"9" * 60 + b"}"
    assert loads_usage(text)["quantity"] == loads_exact(text)["quantity"] == int("9" * 60)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**39) + 1, max_value=10**39 - 1)  # longer: test_long_integers
    | st.decimals(allow_nan=False, allow_infinity=False).map(str).map(Decimal)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_random_documents_parse_alike(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, default=lambda d: float(d), ensure_ascii=ascii_only)
    same(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40) | st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_random_bytes_parse_or_fail_alike(text: bytes) -> None:
    same(text)
