"""Prices page: the card in force now and the upcoming versions with their dates."""

from __future__ import annotations

from tests.app.harness import open_page, page_text, signed_in, table
from tests.app.seed import ALICE


def test_current_and_upcoming_versions(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "prices")
    text = page_text(at)
    assert "Standard pay-as-you-go" in text
    assert any(h.value.startswith("In force now: version 1, since Jan 01, 2026") for h in at.subheader)
    current = table(at, 0)
    assert {"Meter": "Input tokens", "Applies to": "model = atlas-large"}.items() <= current[1].items()
    assert current[0]["Price"] == "$3.00 per 1,000,000 tokens"
    assert current[2]["Price"] == "$0.01 per request"
    assert "Version 2, from Jan 01, 2027" in text
    upcoming = table(at, 1)
    assert upcoming[0]["Price"] == "$2.50 per 1,000,000 tokens"


def test_account_without_a_card_says_what_to_do(portal_url: str) -> None:
    from core.accounts import add_member, create_account
    from core.clock import system_clock
    from core.db import make_engine, unit_of_work

    engine = make_engine(portal_url)
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_new", name="Newco", at=system_clock())
        add_member(session, account_id="acc_new", email="nina@newco.test", role="owner", at=system_clock())
    engine.dispose()
    at = open_page(signed_in("nina@newco.test"), "prices")
    assert any("not on a rate card yet" in info.value for info in at.info)
