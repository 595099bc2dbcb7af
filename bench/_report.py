"""Timing statistics and the summary table every benchmark prints at its end."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    metric: str
    measured: str
    target: str = "-"
    passed: bool | None = None  # None: informative, no target

    @property
    def verdict(self) -> str:
        return "-" if self.passed is None else ("PASS" if self.passed else "FAIL")


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the value ``share`` (0.99 for p99) of the runs were at or under."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def p95(values: list[float]) -> float:
    """95th percentile, nearest rank (the value 95 % of runs were at or under)."""
    return percentile(values, 0.95)


def print_table(title: str, rows: list[Row]) -> None:
    headers = ("metric", "measured", "target", "result")
    cells = [(r.metric, r.measured, r.target, r.verdict) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "-+-".join("-" * w for w in widths)
    print()
    print(f"== {title} ==")
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(line)
    for cell in cells:
        print(" | ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)))
    print(flush=True)
