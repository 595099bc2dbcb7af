"""Spike detection measured: the weekday baseline (``core.spend.anomaly``) against the old rule
(K × the mean of the last 7 days) on daily series with injected spikes: seeded synthetic ones, or
with ``--public`` real public ones.

    python -m bench anomalies [--seeds 3] [--days 365] [--every 15] [--factors 1.5,2,3] [--by-shape]
    python -m bench anomalies --public [--seeds 3] [--every 15] [--factors 1.5,2,3] [--by-series]

Synthetic: six shapes of series (``SHAPES``), ``--seeds`` of each, ``--days`` long, lognormal
day-to-day noise. After the first 8 weeks, each day is a spike with probability 1 / ``--every``:
its spend is multiplied by a factor drawn uniformly from 2 to 4 (seeded: the same numbers every
run).

Public (``--public``): the real daily series in ``bench/data/public/`` (births, bike-share rides,
pedestrians, Wikipedia page views; sources in its README.md), read as ``meterline spend`` reads a
file; each is injected ``--seeds`` times by the same protocol, only on days where it is not zero.
Their own unusual days (a Super Bowl's page views) are not injected, so a flag on one counts as a
false flag.

Every day after the first 8 weeks is judged from the days before it only (spikes earlier in the
history included, as a real account's would be), by both rules at each K. Reported: recall (the
share of spike days flagged) and false flags per 100 days that were not spikes; ``--by-shape``
(``--by-series``) adds a row per shape or public series. Nothing is asserted; the numbers are in
``core/spend/anomaly.py``'s docstring and README.
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.money import NANOS_PER_CREDIT
from core.spend.anomaly import HISTORY_DAYS, Baseline, baseline, old_rule_baseline
from core.spend.backtest import read_daily_series

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_DIR = ROOT / "bench" / "data" / "public"  # real daily series; sources in its README.md

WARM_UP_DAYS = HISTORY_DAYS  # both rules judge the same days: those with 8 weeks before them
MILD_WEEK = (1.0, 1.1, 1.1, 1.05, 0.95, 0.45, 0.35)


def _weekly(shape: Sequence[float]) -> Callable[[int], float]:
    return lambda day: shape[day % 7]  # day 0 is a Monday


SHAPES: dict[str, tuple[float, float, Callable[[int], float]]] = {
    # name: (mean daily credits, noise σ (lognormal), the day's multiplier)
    "closed at weekends": (300.0, 0.25, _weekly((1, 1, 1, 1, 1, 0.08, 0.08))),
    "mild weekly pattern": (120.0, 0.2, _weekly(MILD_WEEK)),
    "growing 0.4% a day": (50.0, 0.2, lambda day: MILD_WEEK[day % 7] * 1.004**day),
    "batch-job Tuesday": (100.0, 0.2, _weekly((1, 3, 1, 1, 1, 0.5, 0.5))),
    "flat, noisy": (80.0, 0.4, lambda day: 1.0),
    "level doubles mid-year": (100.0, 0.2, lambda day: MILD_WEEK[day % 7] * (2.0 if day >= 180 else 1.0)),
}


@dataclass
class Series:
    shape: str
    amounts_nanos: list[int]
    spikes: set[int]


def make_series(shape: str, seed: int, days: int, every: int) -> Series:
    mean, sigma, multiplier = SHAPES[shape]
    rng = random.Random(f"{shape}/{seed}")
    amounts: list[int] = []
    spikes: set[int] = set()
    for day in range(days):
        credits = mean * multiplier(day) * rng.lognormvariate(-sigma * sigma / 2, sigma)
        if day >= WARM_UP_DAYS and rng.random() < 1 / every:
            credits *= rng.uniform(2.0, 4.0)
            spikes.add(day)
        amounts.append(round(credits * NANOS_PER_CREDIT))
    return Series(shape, amounts, spikes)


@dataclass
class Score:
    spikes: int = 0
    caught: int = 0
    other_days: int = 0
    false_flags: int = 0

    def add(self, other: Score) -> None:
        self.spikes += other.spikes
        self.caught += other.caught
        self.other_days += other.other_days
        self.false_flags += other.false_flags

    @property
    def recall(self) -> float:
        return self.caught / self.spikes if self.spikes else math.nan

    @property
    def false_per_100(self) -> float:
        return 100 * self.false_flags / self.other_days if self.other_days else math.nan


Rule = Callable[[Sequence[int], int], Baseline | None]
RULES: dict[str, Rule] = {"weekday baseline (new)": baseline, "7-day mean (old)": old_rule_baseline}


def score(series: Series, rule: Rule, factor_percent: int) -> Score:
    result = Score()
    amounts = series.amounts_nanos
    for index in range(WARM_UP_DAYS, len(amounts)):
        judged = rule(amounts[index - HISTORY_DAYS : index], factor_percent)
        flagged = judged is not None and amounts[index] >= judged.threshold_nanos
        if index in series.spikes:
            result.spikes += 1
            result.caught += flagged
        else:
            result.other_days += 1
            result.false_flags += flagged
    return result


def measure_series(all_series: Sequence[Series], factors: Sequence[str]) -> list[tuple[str, str, str, Score]]:
    """(series group or "all", rule, K, score) for every group of series (``Series.shape``), rule and K."""
    groups = list(dict.fromkeys(series.shape for series in all_series))
    rows: list[tuple[str, str, str, Score]] = []
    for factor in factors:
        factor_percent = round(float(factor) * 100)
        for name, rule in RULES.items():
            total = Score()
            for group in groups:
                by_group = Score()
                for series in (s for s in all_series if s.shape == group):
                    by_group.add(score(series, rule, factor_percent))
                rows.append((group, name, factor, by_group))
                total.add(by_group)
            rows.append(("all", name, factor, total))
    return rows


def measure(
    *, seeds: int, days: int, every: int, factors: Sequence[str]
) -> list[tuple[str, str, str, Score]]:
    """(shape or "all", rule, K, score) for every shape, rule and K."""
    all_series = [make_series(shape, seed, days, every) for shape in SHAPES for seed in range(seeds)]
    return measure_series(all_series, factors)


def load_public(directory: Path = PUBLIC_DIR) -> dict[str, list[int]]:
    """The public daily series (``bench/data/public/*.csv``, read as ``meterline spend`` reads a
    file), by file name without ``.csv``."""
    return {
        path.stem: list(read_daily_series(path).amounts_nanos) for path in sorted(directory.glob("*.csv"))
    }


def inject_spikes(name: str, amounts_nanos: Sequence[int], seed: int, every: int) -> Series:
    """A real series with spikes injected as in the synthetic protocol: after the first 8 weeks, a
    day where the series is not zero is a spike with probability 1 / ``every``, its amount multiplied
    by a factor drawn uniformly from 2 to 4 (seeded by the series' name and ``seed``)."""
    rng = random.Random(f"public/{name}/{seed}")
    amounts = list(amounts_nanos)
    spikes: set[int] = set()
    for day in range(WARM_UP_DAYS, len(amounts)):
        if amounts[day] > 0 and rng.random() < 1 / every:
            amounts[day] = round(amounts[day] * rng.uniform(2.0, 4.0))
            spikes.add(day)
    return Series(name, amounts, spikes)


def measure_public(
    *, seeds: int, every: int, factors: Sequence[str], directory: Path = PUBLIC_DIR
) -> tuple[dict[str, list[int]], list[tuple[str, str, str, Score]]]:
    """The public series and (series or "all", rule, K, score) rows, ``seeds`` injections each."""
    public = load_public(directory)
    all_series = [
        inject_spikes(name, amounts, seed, every) for name, amounts in public.items() for seed in range(seeds)
    ]
    return public, measure_series(all_series, factors)


def print_rows(rows: Sequence[tuple[str, str, str, Score]], *, per_group: bool, width: int = 24) -> None:
    header = f"{'series':<{width}} {'rule':<24} {'K':>4} {'recall':>7} {'false flags / 100 days':>23}"
    print(header)
    print("-" * len(header))
    for group, name, factor, result in rows:
        if group != "all" and not per_group:
            continue
        print(
            f"{group:<{width}} {name:<24} {factor:>4} {result.recall:>7.2f} {result.false_per_100:>23.2f}"
            f"   ({result.caught}/{result.spikes} spikes, "
            f"{result.false_flags}/{result.other_days} other days)"
        )


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench anomalies", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--seeds", type=int, default=3, help="series of each shape; injections per public series (default 3)"
    )
    parser.add_argument("--days", type=int, default=365, help="days per synthetic series (default 365)")
    parser.add_argument("--every", type=int, default=15, help="one day in N is a spike (default 15)")
    parser.add_argument("--factors", default="1.5,2,3", help="the rules' K values (default 1.5,2,3)")
    parser.add_argument(
        "--by-shape",
        "--by-series",
        dest="by_shape",
        action="store_true",
        help="a row per shape (per public series) as well",
    )
    parser.add_argument(
        "--public", action="store_true", help="the public daily series in bench/data/public/ instead"
    )
    args = parser.parse_args(list(argv))
    factors = [f.strip() for f in args.factors.split(",") if f.strip()]
    if args.public:
        public, rows = measure_public(seeds=args.seeds, every=args.every, factors=factors)
        lengths = ", ".join(f"{name} {len(amounts)}" for name, amounts in public.items())
        print(
            f"{len(public)} public daily series (days: {lengths}), {args.seeds} seeded injections each; "
            f"one day in {args.every} after the first {WARM_UP_DAYS} (where not zero) multiplied by 2 to 4"
        )
        print_rows(rows, per_group=args.by_shape, width=max(24, *(len(name) for name in public)))
        return
    rows = measure(seeds=args.seeds, days=args.days, every=args.every, factors=factors)
    total_series = args.seeds * len(SHAPES)
    print(
        f"{total_series} series ({args.seeds} of each of {len(SHAPES)} shapes), {args.days} days each; "
        f"one day in {args.every} after the first {WARM_UP_DAYS} multiplied by 2 to 4"
    )
    print_rows(rows, per_group=args.by_shape)
