"""The crossing engine: a rule fires once per crossing, resolves when back, re-arms only after resolving;
absolute and percentage thresholds both work, compared exactly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.spend.crossing import State, Threshold, Transition, step

money = st.integers(min_value=-(10**15), max_value=10**15)
values = st.lists(st.one_of(st.none(), money), max_size=60)


def thresholds() -> st.SearchStrategy[Threshold]:
    absolute = st.builds(Threshold.absolute, st.sampled_from(["above", "below"]), money)
    percent = st.builds(
        Threshold.percent_of,
        st.sampled_from(["above", "below"]),
        st.integers(min_value=1, max_value=10**12),
        st.integers(min_value=1, max_value=10_000),
    )
    return st.one_of(absolute, percent)


def run(series: list[int | None], threshold: Threshold) -> list[Transition | None]:
    state = State.OK
    out = []
    for value in series:
        result = step(state, value, threshold)
        state = result.state
        out.append(result.transition)
    return out


@given(values, thresholds())
def test_fires_and_resolves_alternate_starting_with_a_fire(
    series: list[int | None], threshold: Threshold
) -> None:
    transitions = [t for t in run(series, threshold) if t is not None]
    expected = [Transition.FIRE, Transition.RESOLVE] * len(transitions)
    assert transitions == expected[: len(transitions)]


@given(values, thresholds())
def test_a_fire_happens_exactly_when_the_condition_starts_to_hold(
    series: list[int | None], threshold: Threshold
) -> None:
    holding = False  # what the engine last saw (None values change nothing)
    for value, transition in zip(series, run(series, threshold), strict=True):
        if value is None:
            assert transition is None
            continue
        now = threshold.holds(value)
        if now and not holding:
            assert transition is Transition.FIRE
        elif holding and not now:
            assert transition is Transition.RESOLVE
        else:
            assert transition is None  # staying over (or under) the threshold never fires again
        holding = now


@given(st.integers(min_value=1, max_value=60), thresholds(), money)
def test_staying_past_the_threshold_fires_once(repeats: int, threshold: Threshold, value: int) -> None:
    transitions = run([value] * repeats, threshold)
    assert transitions.count(Transition.FIRE) == (1 if threshold.holds(value) else 0)
    assert Transition.RESOLVE not in transitions


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=1, max_value=10_000), money)
def test_percentage_threshold_is_exact(budget: int, percent: int, value: int) -> None:
    threshold = Threshold.percent_of("above", budget, percent)
    # value ≥ budget × percent / 100, without rounding either side.
    assert threshold.holds(value) == (value * 100 >= budget * percent)


def test_absolute_threshold_fires_at_its_amount_not_as_a_percentage() -> None:
    # The bug other platforms shipped: an absolute threshold of 50 read as "50 %" never fired.
    threshold = Threshold.absolute("above", 50_000_000_000)  # $50
    assert run([49_999_999_999, 50_000_000_000, 60_000_000_000], threshold) == [None, Transition.FIRE, None]


def test_percentage_of_a_budget_fires_at_that_share() -> None:
    threshold = Threshold.percent_of("above", 500_000_000_000, 80)  # 80 % of $500 = $400
    assert threshold.value == 400_000_000_000
    assert run([399_999_999_999, 400_000_000_000], threshold) == [None, Transition.FIRE]


def test_below_resolves_when_back_and_fires_again_after() -> None:
    threshold = Threshold.absolute("below", 10)
    assert run([20, 5, 3, 15, 9, None, 9, 11], threshold) == [
        None,
        Transition.FIRE,
        None,
        Transition.RESOLVE,
        Transition.FIRE,
        None,
        None,
        Transition.RESOLVE,
    ]
