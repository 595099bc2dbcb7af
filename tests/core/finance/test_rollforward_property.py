"""The roll-forward over random histories, on both databases: grants (purchased at any price,
promotional, goodwill, with expiries), purchases paid by card, usage beyond the balance,
expiry, refunds and disputes of partly used purchases, and support voids."""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.core.finance.checks import assert_rolls_forward
from tests.core.finance.history import CREDIT, History, months_between

_IDS = itertools.count()

credits = st.integers(1, 400).map(lambda n: n * CREDIT // 4)  # quarter credits: 0.25 to 100
operation = st.one_of(
    st.tuples(st.just("buy"), st.sampled_from([500, 1_000, 2_500]), st.sampled_from([None, 7, 3])),
    st.tuples(
        st.just("grant"),
        credits,
        st.sampled_from(["promotional", "goodwill", "purchased"]),
        st.one_of(st.none(), st.integers(1, 60)),  # days until it expires
    ),
    st.tuples(st.just("use"), credits.map(lambda n: n // 3 + 1)),  # not round: nanos
    st.tuples(st.just("wait"), st.integers(1, 40)),  # days
    st.tuples(st.just("refund"), st.integers(0, 3), st.integers(1, 2_500)),
    st.tuples(
        st.just("dispute"),
        st.integers(0, 3),
        st.integers(1, 2_500),
        st.sampled_from(["needs_response", "won", "lost"]),
    ),
    st.tuples(st.just("void"), st.integers(0, 5)),
)


def play(history: History, op: tuple) -> None:  # type: ignore[type-arg]
    kind = op[0]
    if kind == "buy":
        _, cents, bonus = op
        # A bonus pack: ``bonus`` % more credits than the price buys, so a credit costs less than $1.
        credits_nanos = None if bonus is None else cents * CREDIT // 100 * (100 + bonus) // 100
        history.buy(cents, credits_nanos)
    elif kind == "grant":
        _, amount, source, days = op
        expires = None if days is None else timedelta(days=days, hours=5)
        history.grant(
            amount, source, expires, cents=amount // (CREDIT // 90) if source == "purchased" else None
        )
    elif kind == "use":
        history.use(op[1])
    elif kind == "wait":
        history.wait(timedelta(days=op[1], hours=7))
    elif kind == "refund":
        history.refund(op[1], op[2])
    elif kind == "dispute":
        history.dispute(op[1], op[2], op[3], version=int(history.clock.timestamp()))
    else:
        history.void(op[1])


@settings(
    max_examples=int(os.environ.get("RF_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(operation, min_size=1, max_size=14))
def test_the_roll_forward_holds_and_chains_over_any_history(
    engine: Engine, now: datetime, operations
) -> None:  # type: ignore[no-untyped-def]
    history = History(engine, f"acc_rf_{next(_IDS)}", now)
    for op in operations:
        play(history, op)
    assert_rolls_forward(engine, months_between(history.started, history.clock), [history.account_id])
