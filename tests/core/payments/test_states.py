"""The top-up state machine: what may follow what (pure)."""

from __future__ import annotations

import pytest

from core.payments import states


def test_the_happy_path_and_its_endings() -> None:
    assert states.move("created", "pending_payment") == "pending_payment"
    assert states.move("pending_payment", "paid") == "paid"
    assert states.move("paid", "credited") == "credited"
    assert states.move("credited", "refunded") == "refunded"
    for ending in ("failed", "canceled"):
        assert states.can_move("created", ending)
        assert states.can_move("pending_payment", ending)


def test_a_late_success_after_a_failure_or_cancel_still_credits() -> None:
    assert states.path_to_credited("failed") == ["paid", "credited"]
    assert states.path_to_credited("canceled") == ["paid", "credited"]
    assert states.path_to_credited("pending_payment") == ["paid", "credited"]
    assert states.path_to_credited("paid") == ["credited"]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("credited", "failed"),  # a failure event after the money was taken changes nothing
        ("credited", "canceled"),
        ("credited", "pending_payment"),
        ("refunded", "credited"),
        ("paid", "failed"),
        ("failed", "credited"),  # credits only through paid
        ("created", "credited"),
    ],
)
def test_transitions_that_cannot_happen(current: str, target: str) -> None:
    assert not states.can_move(current, target)
    with pytest.raises(states.InvalidTransition):
        states.move(current, target)


def test_settled_top_ups_have_no_path_to_credit_again() -> None:
    assert states.path_to_credited("credited") == []
    assert states.path_to_credited("refunded") == []


def test_every_state_is_known_to_the_machine_and_the_labels() -> None:
    assert set(states.LABELS) == set(states.STATES)
    with pytest.raises(ValueError):
        states.can_move("nonsense", "paid")
