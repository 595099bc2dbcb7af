"""The credit roll-forward over the demo story, every month of it, on both databases."""

from __future__ import annotations

from datetime import timedelta

from core.finance import credit_rollforward
from core.usage.focus import focus_snapshot
from tests.core.demo.conftest import Seeded
from tests.core.finance.checks import assert_rolls_forward, lines_by_month
from tests.core.finance.history import months_between


def story_months(seeded: Seeded) -> list[str]:
    """From the month before the story starts (nothing yet) to the current one."""
    story = seeded.story
    return months_between(story.now - timedelta(days=story.days + 31), story.now)


def test_the_identity_holds_and_months_chain_over_the_whole_demo_story(seeded: Seeded) -> None:
    assert_rolls_forward(seeded.engine, story_months(seeded), seeded.story.names)


def test_the_demo_story_shows_in_the_roll_forward(seeded: Seeded) -> None:
    months = story_months(seeded)
    runs = lines_by_month(seeded.engine, months, seeded.story.names)
    purchased = sum(lines[a].purchased_usd_nanos for lines in runs for a in seeded.story.names)
    recognized = sum(lines[a].recognized_usd_nanos for lines in runs for a in seeded.story.names)
    refunded = sum(lines[a].refunded_usd_nanos for lines in runs for a in seeded.story.names)
    promotional = sum(lines[a].promotional_granted_nanos for lines in runs for a in seeded.story.names)
    assert purchased > 0 and recognized > 0 and promotional > 0
    assert refunded > 0  # Quiet Harbor's disputed top-up holds its credits back
    with focus_snapshot(seeded.engine) as session:
        after = credit_rollforward(session, "2099-01")  # nothing moves in a month to come
    assert after.totals.opening_deferred_usd_nanos == after.totals.closing_deferred_usd_nanos
    assert after.totals.purchased_usd_nanos == after.totals.recognized_usd_nanos == 0
