"""Sizes in bytes, written for people ("16 KiB", "8 MiB"), for limits stated in messages and docs."""

from __future__ import annotations

_UNITS = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def format_bytes(size: int) -> str:
    """``size`` in the largest binary unit it is a whole number of, else in bytes: never rounded."""
    if size < 0:
        raise ValueError("a size is never negative")
    for name, unit in _UNITS:
        if size >= unit and size % unit == 0:
            return f"{size // unit:,} {name}"
    return f"{size:,} byte" if size == 1 else f"{size:,} bytes"
