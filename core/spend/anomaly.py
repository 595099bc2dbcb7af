"""Spend anomalies that know the week: is a day's spend unusually high *for its weekday*?

Pure (no I/O, no clock). The ``spend_spike`` alert rule and ``meterline spend anomalies`` share it.
A day is judged only from the days before it.

The baseline ("a usual Tuesday's" spend), from the last eight whole weeks before the day
(``WEEKS``; four at least):

1. **Weekday shape.** Each past week's days as shares of that week's mean; a weekday's factor is
   the median of its shares over the weeks (one spiky week does not move it).
2. **Level, trend-aware.** The last two weeks' days divided by their weekday factors, and the
   median of those fourteen (weekdays that are nearly always quiet, factor under 0.15, are left
   out): the level of the last fortnight, so a growing business is compared with what it spends
   now, not two months ago, and one spike moves it little.
3. **Usual = factor × level**, and the noise: day-to-day noise is multiplicative, so it is the
   median absolute deviation of the logarithm of every past day's ratio to its weekday's factor
   (up to 56 days pooled, scaled to a standard deviation σ), at least 0.05.

A day is **flagged** when its spend reaches the highest of

- ``K ×`` the usual (K, the rule's factor: "3 × a usual Tuesday's"),
- the usual × e^(3σ) (the false-alarm guard: three standard deviations of the log, about one
  day in 740 on pure lognormal noise; on a series whose days vary ±40% a 1.5× day is not news),
- the usual plus a quarter of a usual day's level (a quiet Sunday that goes from 2 to 5 credits
  is not an alarm on an account spending 300 a day; so a spike on a closed weekend that stays
  under that is not flagged, by design).

With fewer than four weeks of history the week's shape and its noise cannot be known: with 7 to
27 days a day is compared with the same weekday of the one to three weeks before (their median;
``K ×`` that, and at least a quarter of the last week's mean day above it: "is 3.0 times last
Tuesday's"); with fewer than 7 days, or nothing spent in the last week, a day is not judged (no
flag; a firing rule stays as it is until it can be judged).

**What K means now (migration of old rules):** existing ``spend_spike`` rules keep their K,
which now multiplies a usual day of the same weekday (trend-adjusted) instead of the last seven
days' mean; no data changes. A business quiet at weekends no longer gets Monday alarms, and a
doubled busy weekday is caught at K = 2 where the 7-day mean (lowered by the weekend) hid it.

Measured (``python -m bench anomalies``: 18 seeded synthetic daily series, 365 days each, three of
each of six shapes (closed at weekends, a mild weekly pattern, growth of 0.4% a day, a batch-job
Tuesday at 3×, flat with ±40% noise, a level that doubles mid-year), one day in 15 after the
first 8 weeks multiplied by 2 to 4; every later day judged from the days before it only; recall of
the injected days, false flags per 100 other days):

    rule                       K     recall   false flags / 100 days
    weekday baseline (new)     1.5   0.82      0.99
    7-day mean (old)           1.5   0.78     11.58
    weekday baseline (new)     2     0.78      0.25
    7-day mean (old)           2     0.65      3.24
    weekday baseline (new)     3     0.48      0.02
    7-day mean (old)           3     0.38      0.44

The stated false-alarm rate: about 1 false flag per 100 days at K = 1.5 and 0.25 at K = 2 (the
first days after the level doubles count as false flags: 0.9 per 100 days of that shape at K = 2).
On the series closed at weekends the old rule at K = 1.5 flags 18 days in 100 (the Mondays), the
new one 1.3.

The same protocol on five public daily series (``python -m bench anomalies --public``: US births
per day 2013-2014, Washington D.C. bike-share rides 2011-2012, pedestrian counts 2009-2010,
Wikipedia page views of the R language 2009-2010 and of Peyton Manning 2009-2010; files and
sources in ``bench/data/public/``), each injected three times, only on days that are not zero
(662 injected days, 8,872 others):

    rule                       K     recall   false flags / 100 days
    weekday baseline (new)     1.5   0.90      1.08
    7-day mean (old)           1.5   0.92      1.83
    weekday baseline (new)     2     0.87      0.70
    7-day mean (old)           2     0.75      0.69
    weekday baseline (new)     3     0.45      0.39
    7-day mean (old)           3     0.35      0.37

Where it does worse: at K = 1.5 the old rule's recall is a little higher, on the bike-share rides
(0.94 against 0.84: a noisy, weather-driven series, where the e^(3σ) guard puts the threshold
above 1.5 × the usual on a third of the days) and on the Peyton Manning page (0.86 against 0.74;
above it on half the days). At K = 2 and 3 the
false flags are level with the old rule's, and on the Peyton Manning page slightly above them at
K = 2 (3.67 against 3.49 per 100 days); nearly all are that page's own real spikes (game days),
not injected and so counted as false. On the other four series at K = 2: 1 false flag in 7,208
days (the old rule 3).

Floats live only inside the model; the threshold leaves it as integer nano-credits
(ROUND_HALF_EVEN, via ``core.spend.projection.nanos_from_model``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from core.display import format_credits
from core.money import NANOS_PER_CREDIT, div_round_half_even

WEEKS = 8  # past weeks the shape and the noise come from
MIN_WEEKS = 4  # fewer: the week's shape is not known (the 7-day fallback)
FALLBACK_DAYS = 7  # the old rule's window, and the least history judged at all
QUIET_FACTOR = 0.15  # a weekday quieter than this (closed on Sundays) does not set the level
LEVEL_WEEKS = 2  # the level is the median of the last two weeks' deseasonalised days
NOISE_Z = 3.0  # standard deviations (of the log) above the usual before a day is news
MIN_NOISE = 0.05  # a series is never assumed steadier than ±5% a day
MIN_RATIO = 0.05  # a day with nothing counts as 1/20 of its usual in the noise's logarithm
MIN_EXCESS_OF_LEVEL = 0.25  # a flag needs at least a quarter of a usual day's level above the usual
MAD_TO_SIGMA = 1.4826
HISTORY_DAYS = 7 * WEEKS
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Baseline:
    """What a day is compared with: its usual spend and the threshold a flag needs (nanos)."""

    usual_nanos: int  # "a usual Tuesday's" (or the 7-day mean in the fallback)
    threshold_nanos: int  # the day is flagged at this spend or more
    weeks: int  # weeks of the same weekday it comes from (1 to 3: short history); 0: the old 7-day rule

    @property
    def seasonal(self) -> bool:
        return self.weeks > 0


@dataclass(frozen=True)
class Flag:
    day: date
    spend_nanos: int
    usual_nanos: int
    weeks: int  # as ``Baseline.weeks``

    def explain(self) -> str:
        return explain(self.day, self.spend_nanos, self.usual_nanos, weeks=self.weeks)


def _nanos(credits: float) -> int:
    from core.spend.projection import nanos_from_model  # numpy: loaded only when a model runs

    return nanos_from_model(credits)


def _old_rule(past: Sequence[int], factor_percent: int) -> Baseline | None:
    recent = sum(past[-FALLBACK_DAYS:])
    if recent <= 0:
        return None
    usual = div_round_half_even(recent, FALLBACK_DAYS)
    # The old rule, exactly: today ≥ K × (recent / 7), rounded up so that ≥ holds on integers.
    threshold = -(-recent * factor_percent // (FALLBACK_DAYS * 100))
    return Baseline(usual, threshold, weeks=0)


def _same_weekday(past: Sequence[int], factor_percent: int) -> Baseline | None:
    """One to three weeks of history: the same weekday in those weeks (their median), no noise
    estimate (K decides), and at least a quarter of the last week's mean day above it."""
    weeks = min(MIN_WEEKS - 1, len(past) // 7)
    recent = sum(past[-FALLBACK_DAYS:])
    if weeks < 1 or recent <= 0:
        return None
    same = sorted(past[len(past) - 7 * k] for k in range(1, weeks + 1))
    middle = len(same) // 2
    usual = same[middle] if len(same) % 2 else div_round_half_even(same[middle - 1] + same[middle], 2)
    by_k = -(-usual * factor_percent // 100)
    floor = usual + div_round_half_even(recent, 4 * FALLBACK_DAYS)
    return Baseline(usual, max(1, by_k, floor), weeks=weeks)


def baseline(past: Sequence[int], factor_percent: int) -> Baseline | None:
    """The baseline of the day after ``past`` (daily spend in nanos, oldest first, up to that day);
    None when the day cannot be judged (see the module docstring)."""
    if len(past) < FALLBACK_DAYS:
        return None
    weeks = min(WEEKS, len(past) // 7)
    if weeks < MIN_WEEKS:
        return _same_weekday(past, factor_percent)
    credits = [amount / NANOS_PER_CREDIT for amount in past[len(past) - 7 * weeks :]]
    # blocks[0] is last week; position 0 of every block is the judged day's weekday.
    blocks = [credits[len(credits) - 7 * (m + 1) : len(credits) - 7 * m] for m in range(weeks)]
    shares: list[list[float]] = []
    for block in blocks:
        mean = sum(block) / 7
        if mean > 0:
            shares.append([value / mean for value in block])
    if len(shares) < MIN_WEEKS:
        return _same_weekday(past, factor_percent)
    factors = [statistics.median(week[p] for week in shares) for p in range(7)]
    busy = [p for p in range(7) if factors[p] >= QUIET_FACTOR]
    level_days = [blocks[m][p] / factors[p] for m in range(LEVEL_WEEKS) for p in busy]
    if not level_days:
        return None
    level = statistics.median(level_days)
    if level <= 0:
        return None
    # Day-to-day noise is multiplicative (a day at 2× is as likely as one at ½×): measured on
    # the logarithm of each day's ratio to its usual, robustly (MAD), pooled over the weeks.
    logs = [math.log(max(week[p] / factors[p], MIN_RATIO)) for week in shares for p in busy]
    centre = statistics.median(logs)
    noise = max(MIN_NOISE, MAD_TO_SIGMA * statistics.median(abs(x - centre) for x in logs))
    usual = factors[0] * level
    threshold = max(
        usual * factor_percent / 100,
        usual * math.exp(NOISE_Z * noise),
        usual + MIN_EXCESS_OF_LEVEL * level,
    )
    return Baseline(_nanos(usual), max(1, _nanos(threshold)), weeks=weeks)


def old_rule_baseline(past: Sequence[int], factor_percent: int) -> Baseline | None:
    """The rule before the weekday baseline: K × the mean of the last 7 days (for the comparison)."""
    if len(past) < FALLBACK_DAYS:
        return None
    return _old_rule(past, factor_percent)


def flag_days(first_day: date, amounts: Sequence[int], factor_percent: int) -> list[Flag]:
    """Walk the series forward: each day judged from the (at most 8 weeks of) days before it."""
    flags = []
    for index in range(FALLBACK_DAYS, len(amounts)):
        judged = baseline(amounts[max(0, index - HISTORY_DAYS) : index], factor_percent)
        if judged is not None and amounts[index] >= judged.threshold_nanos:
            day = first_day + timedelta(days=index)
            flags.append(Flag(day, amounts[index], judged.usual_nanos, judged.weeks))
    return flags


def format_ratio(spend_nanos: int, usual_nanos: int) -> str:
    """ "3.1" (one decimal, half-even, exact in integers); "many" when the usual is nothing."""
    if usual_nanos <= 0:
        return "many"
    tenths = div_round_half_even(spend_nanos * 10, usual_nanos)
    return f"{tenths // 10:,}.{tenths % 10}"


def explain(day: date, spend_nanos: int, usual_nanos: int, *, weeks: int = WEEKS) -> str:
    """The flag in words.

    "Tuesday's spend, 412.00 credits, is 3.1 times a usual Tuesday's (132.90 credits)"."""
    name = WEEKDAY_NAMES[day.weekday()]
    ratio = format_ratio(spend_nanos, usual_nanos)
    if weeks >= 2:
        usual = f"a usual {name}'s ({format_credits(usual_nanos)})"
    elif weeks == 1:
        usual = f"last {name}'s ({format_credits(usual_nanos)})"
    else:
        usual = f"the last 7 days' daily average ({format_credits(usual_nanos)})"
    if usual_nanos <= 0:
        return f"{name}'s spend, {format_credits(spend_nanos)}, is far above {usual}"
    return f"{name}'s spend, {format_credits(spend_nanos)}, is {ratio} times {usual}"


def report_json(series_days: int, flags: Sequence[Flag]) -> str:
    """``{"flagged": ["YYYY-MM-DD", ...], "days": N}`` for ``meterline spend anomalies --json``."""
    days = ", ".join(f'"{flag.day.isoformat()}"' for flag in flags)
    return f'{{"flagged": [{days}], "days": {series_days}}}'


def report_text(
    name: str, first_day: date, series_days: int, factor_percent: int, flags: Sequence[Flag]
) -> str:
    """What a person reads: the file, the rule, then one line per flagged day, explained."""
    last_day = first_day + timedelta(days=series_days - 1)
    whole, rest = divmod(factor_percent, 100)
    factor = f"{whole}" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0")
    lines = [
        f"{name}: {series_days:,} days, {first_day} to {last_day}",
        f"each day judged from the days before it: flagged at {factor}× a usual day of its weekday "
        f"(trend-adjusted, beyond its usual spread; with under {MIN_WEEKS * 7} days of history, "
        "the same weekday of the weeks there are)",
    ]
    if not flags:
        lines.append("no day flagged")
        return "\n".join(lines)
    lines.append(f"{len(flags):,} day(s) flagged:")
    lines += [f"{flag.day}  {flag.explain()}" for flag in flags]
    return "\n".join(lines)
