"""Prices page: the card in force now and the upcoming versions with their dates."""

from __future__ import annotations

from tests.app.harness import open_page, page_text, signed_in, table
from tests.app.seed import ALICE


def test_current_and_upcoming_versions(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "prices")
    text = page_text(at)
    assert "Standard pay-as-you-go" in text
    assert any(h.value == "In force now: version 1, since Jan 1, 2026, 00:00 UTC" for h in at.subheader)
    current = table(at, 0)
    assert {"Meter": "Input tokens · atlas-large", "Applies to": "model = atlas-large"}.items() <= current[
        1
    ].items()
    assert current[0]["Price"] == "3.00 credits per 1M tokens"
    assert current[2]["Price"] == "0.01 credits per request"
    assert list(current[0])[:2] == ["Meter", "Price"]  # both on a phone's first screen
    assert "Version 2, from Jan 1, 2027, 00:00 UTC" in text
    upcoming = table(at, 1)
    assert upcoming[0]["Price"] == "2.50 credits per 1M tokens"
    assert "$" not in text.replace("1 credit = $1.00", "")


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


def test_prices_are_shown_with_every_digit(portal_url: str) -> None:
    """2.405 and 0.00125 credits are printed as they are, not rounded to 2.40 and 0.00."""
    from core.accounts import add_member, create_account
    from core.clock import system_clock
    from core.db import make_engine, unit_of_work
    from core.rating import load_rate_card

    card = {
        "card": {"key": "exact", "name": "Exact prices"},
        "versions": [
            {
                "effective_from": "2026-01-01T00:00:00Z",
                "prices": [
                    {"meter": "input_tokens", "per": 1_000_000, "price": "2.405"},
                    {
                        "meter": "input_tokens",
                        "model": "atlas-large",
                        "per": 1_000_000,
                        "tiers": [{"up_to": 1_000_000_000, "price": "2.405"}, {"price": "0.00125"}],
                    },
                    {"meter": "requests", "price": "0.00125"},
                ],
            }
        ],
    }
    engine = make_engine(portal_url)
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, card, at=system_clock(), allow_backdated=True)
        create_account(
            session, account_id="acc_exact", name="Exact Co", at=system_clock(), rate_card_key="exact"
        )
        add_member(session, account_id="acc_exact", email="erin@exact.test", role="owner", at=system_clock())
    engine.dispose()
    at = open_page(signed_in("erin@exact.test"), "prices")
    rows = [(row["Meter"], row["Price"], row["Monthly volume"]) for row in table(at, 0)]
    assert rows == [
        ("Input tokens", "2.405 credits per 1M tokens", "All"),
        # A graduated price: one row per tier, each with its monthly volume.
        ("Input tokens · atlas-large", "2.405 credits per 1M tokens", "0–1,000,000,000 tokens"),
        ("Input tokens · atlas-large", "0.00125 credits per 1M tokens", "Above 1,000,000,000 tokens"),
        ("Requests", "0.00125 credits per request", "All"),
    ]


def test_past_and_upcoming_versions_are_listed_with_their_dates(portal_url: str) -> None:
    """The card's history: each version with its dates, the one in force marked, past prices kept."""
    from core.accounts import add_member, create_account
    from core.clock import system_clock
    from core.db import make_engine, unit_of_work
    from core.rating import load_rate_card

    def version(start: str, price: str) -> dict[str, object]:
        return {
            "effective_from": start,
            "notes": f"From {start[:10]}",
            "prices": [{"meter": "input_tokens", "per": 1_000_000, "price": price}],
        }

    card = {
        "card": {"key": "dated", "name": "Dated prices"},
        "versions": [
            version("2026-01-01T00:00:00Z", "4.125"),
            version("2026-06-01T00:00:00Z", "3.50"),
            version("2099-01-01T00:00:00Z", "2.00"),
        ],
    }
    engine = make_engine(portal_url)
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, card, at=system_clock(), allow_backdated=True)
        create_account(
            session, account_id="acc_dated", name="Dated Co", at=system_clock(), rate_card_key="dated"
        )
        add_member(session, account_id="acc_dated", email="dora@dated.test", role="owner", at=system_clock())
    engine.dispose()
    at = open_page(signed_in("dora@dated.test"), "prices")
    assert any(h.value == "In force now: version 2, since Jun 1, 2026, 00:00 UTC" for h in at.subheader)
    assert any(h.value == "Version history" for h in at.subheader)
    history = table(at, 2)
    assert history == [
        {
            "Version": "1",
            "From": "Jan 1, 2026, 00:00 UTC",
            "Until": "Jun 1, 2026, 00:00 UTC",
            "Status": "Past",
            "Notes": "From 2026-01-01",
        },
        {
            "Version": "2",
            "From": "Jun 1, 2026, 00:00 UTC",
            "Until": "Jan 1, 2099, 00:00 UTC",
            "Status": "In force now",
            "Notes": "From 2026-06-01",
        },
        {
            "Version": "3",
            "From": "Jan 1, 2099, 00:00 UTC",
            "Until": "—",
            "Status": "Upcoming",
            "Notes": "From 2099-01-01",
        },
    ]
    (past,) = at.expander
    assert past.label == "Version 1 (past), from Jan 1, 2026, 00:00 UTC until Jun 1, 2026, 00:00 UTC"
    assert table(at, 3)[0]["Price"] == "4.125 credits per 1M tokens"  # every digit, as the card has it
