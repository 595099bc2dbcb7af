"""The sign-in screen's lines about the demo people match the people the seed makes."""

from __future__ import annotations

from core.demo import personas, seed


def test_every_seeded_person_has_a_line_in_the_story_order() -> None:
    seeded = [email for email, _, _ in seed.USERS] + [seed.SUPPORT_EMAIL, seed.SUPPORT_ADMIN_EMAIL]
    assert list(personas.DEMO_PERSONAS) == seeded  # Maya, the story's lead, first
    assert personas.SUPPORT_EMAIL == seed.SUPPORT_EMAIL
    assert personas.SUPPORT_ADMIN_EMAIL == seed.SUPPORT_ADMIN_EMAIL
    assert all(line and len(line) <= 100 for line in personas.DEMO_PERSONAS.values())
