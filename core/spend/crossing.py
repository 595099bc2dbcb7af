"""The crossing engine (pure): given a rule's state and a new value, fire, resolve or nothing.

A threshold is a condition on one integer value (nano-credits or days):

- ``above``: the condition holds when ``value × denominator ≥ numerator``;
- ``below``: it holds when ``value × denominator < numerator``.

An absolute threshold X is ``numerator=X, denominator=1``; N % of a budget B is
``numerator=B×N, denominator=100``, compared exactly in integers, so a percentage is never
rounded and an absolute threshold is never mistaken for a percentage (the bug other metering
platforms shipped: absolute thresholds that never fired).

A rule fires once per crossing (``ok`` → ``firing``), resolves when the condition stops
holding (``firing`` → ``ok``), and can fire again only after it resolved. An unknown value
(None: no data yet, or a runway that never ends) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from core.money import div_round_half_even

Direction = Literal["above", "below"]


class State(StrEnum):
    OK = "ok"
    FIRING = "firing"


class Transition(StrEnum):
    FIRE = "fired"
    RESOLVE = "resolved"


@dataclass(frozen=True)
class Threshold:
    """``value`` crosses it when ``value × denominator`` reaches ``numerator`` (above) or drops under it."""

    direction: Direction
    numerator: int
    denominator: int = 1

    def __post_init__(self) -> None:
        if self.direction not in ("above", "below"):
            raise ValueError("direction is 'above' or 'below'")
        if self.denominator <= 0:
            raise ValueError("denominator must be positive")

    @classmethod
    def absolute(cls, direction: Direction, value: int) -> Threshold:
        return cls(direction, value, 1)

    @classmethod
    def percent_of(cls, direction: Direction, budget: int, percent: int) -> Threshold:
        """``percent`` % of ``budget`` (both integers), compared without rounding."""
        return cls(direction, budget * percent, 100)

    def holds(self, value: int) -> bool:
        scaled = value * self.denominator
        return scaled >= self.numerator if self.direction == "above" else scaled < self.numerator

    @property
    def value(self) -> int:
        """The threshold in the value's unit, for people (rounded half-even when a percentage)."""
        return div_round_half_even(self.numerator, self.denominator)


@dataclass(frozen=True)
class Step:
    state: State
    transition: Transition | None


def step(state: State | str, value: int | None, threshold: Threshold) -> Step:
    """The next state of a rule that saw ``value``, and what happened (fire, resolve or nothing)."""
    current = State(state)
    if value is None:
        return Step(current, None)
    holds = threshold.holds(value)
    if current is State.OK and holds:
        return Step(State.FIRING, Transition.FIRE)
    if current is State.FIRING and not holds:
        return Step(State.OK, Transition.RESOLVE)
    return Step(current, None)
