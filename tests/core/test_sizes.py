"""Sizes stated in messages read as people write them, never rounded down to nothing."""

from __future__ import annotations

import pytest

from core.sizes import format_bytes


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (16 * 1024, "16 KiB"),
        (4096, "4 KiB"),
        (1024 * 1024, "1 MiB"),
        (8 * 1024 * 1024, "8 MiB"),
        (64 * 1024 * 1024, "64 MiB"),
        (2 * 1024**3, "2 GiB"),
        (1536 * 1024, "1,536 KiB"),  # 1.5 MiB: a whole number of KiB, not a rounded MiB
        (1500, "1,500 bytes"),
        (1, "1 byte"),
        (0, "0 bytes"),
    ],
)
def test_a_size_reads_in_the_largest_unit_it_fills_exactly(size: int, text: str) -> None:
    assert format_bytes(size) == text


def test_a_negative_size_is_a_bug() -> None:
    with pytest.raises(ValueError):
        format_bytes(-1)
