"""Pure burn-down: fixed burn order, and postings that always add up (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.ledger.engine import GrantBalance, burn_key, is_burnable, plan_deficit_repayment, plan_usage_burn

T0 = datetime(2026, 11, 1, tzinfo=UTC)

grants_strategy = st.lists(
    st.builds(
        GrantBalance,
        grant_id=st.integers(1, 10_000),
        priority=st.integers(0, 3),
        effective_at=st.integers(-5, 5).map(lambda d: T0 + timedelta(days=d)),
        expires_at=st.one_of(st.none(), st.integers(-3, 30).map(lambda d: T0 + timedelta(days=d))),
        remaining_nanos=st.integers(0, 10**12),
    ),
    max_size=8,
    unique_by=lambda g: g.grant_id,
)


@given(grants_strategy, st.integers(0, 5 * 10**12))
def test_burn_postings_sum_to_the_usage_and_never_overdraw_a_grant(grants, amount):
    postings = plan_usage_burn(grants, amount, T0)
    assert sum(p.amount_nanos for p in postings) == -amount
    by_id = {g.grant_id: g for g in grants}
    for posting in postings:
        assert posting.amount_nanos < 0
        if posting.grant_id is not None:
            grant = by_id[posting.grant_id]
            assert is_burnable(grant, T0)
            assert -posting.amount_nanos <= grant.remaining_nanos
    # Only the last posting may be the deficit, and only when every burnable grant is empty.
    deficit = [p for p in postings if p.grant_id is None]
    if deficit:
        assert postings[-1].grant_id is None
        used = {p.grant_id: -p.amount_nanos for p in postings if p.grant_id is not None}
        for grant in grants:
            if is_burnable(grant, T0):
                assert used.get(grant.grant_id) == grant.remaining_nanos


@given(grants_strategy, st.integers(1, 5 * 10**12))
def test_burn_order_is_priority_then_soonest_expiry_then_oldest(grants, amount):
    postings = plan_usage_burn(grants, amount, T0)
    burned = [p.grant_id for p in postings if p.grant_id is not None]
    by_id = {g.grant_id: g for g in grants}
    keys = [burn_key(by_id[g]) for g in burned]
    assert keys == sorted(keys)
    # Every grant burned before the last one was used up entirely.
    for grant_id, posting in zip(burned[:-1], postings, strict=False):
        assert -posting.amount_nanos == by_id[grant_id].remaining_nanos


def test_expired_and_future_grants_are_not_burned():
    expired = GrantBalance(1, 0, T0 - timedelta(days=9), T0 - timedelta(seconds=1), 100)
    future = GrantBalance(2, 0, T0 + timedelta(days=1), None, 100)
    live = GrantBalance(3, 9, T0, None, 100)
    postings = plan_usage_burn([expired, future, live], 150, T0)
    assert [(p.grant_id, p.amount_nanos) for p in postings] == [(3, -100), (None, -50)]


def test_a_new_grant_pays_off_the_deficit_first():
    def plan(deficit: int) -> list[tuple[int | None, int]]:
        return [(p.grant_id, p.amount_nanos) for p in plan_deficit_repayment(deficit, 5, 100)]

    assert plan(-70) == [(5, -70), (None, 70)]
    assert plan(-700) == [(5, -100), (None, 100)]
    assert plan_deficit_repayment(0, 5, 100) == []
