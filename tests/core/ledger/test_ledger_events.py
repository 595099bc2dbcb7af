"""The ledger read as events: one row per thing that happened, the grants in its details."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.accounts import create_account
from core.db import unit_of_work
from core.ledger import grant_credits, ledger_view, lock_accounts, post_usage
from core.ledger.events import ledger_events, readable_reference
from core.money import credits_to_nanos


def test_references_read_as_words() -> None:
    assert readable_reference("batch:364") == "Usage batch 364"
    assert readable_reference("grant:12") == "Grant #12"
    assert readable_reference("") == ""
    assert readable_reference("something else") == "something else"
    assert readable_reference("mystery:7") == "mystery:7"


def _story(engine: Engine, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_e", name="E", at=now - timedelta(days=9))
        grant_credits(
            session,
            account_id="acc_e",
            amount_nanos=credits_to_nanos("10"),
            source="promotional",
            description="Welcome",
            at=now - timedelta(days=9),
        )
        grant_credits(
            session,
            account_id="acc_e",
            amount_nanos=credits_to_nanos("5"),
            source="purchased",
            cost_basis_cents=500,
            description="Pack",
            at=now - timedelta(days=8),
        )
    with unit_of_work(engine, write=True) as session:
        account = lock_accounts(session, ["acc_e"])["acc_e"]
        # 12 credits of one batch: 10 from the promotion, 2 from the pack.
        post_usage(
            session,
            account=account,
            amount_nanos=credits_to_nanos("12"),
            at=now - timedelta(days=7),
            reference="batch:1",
        )
    with unit_of_work(engine, write=True) as session:
        account = lock_accounts(session, ["acc_e"])["acc_e"]
        # 8 more: 3 from the pack, 5 not covered (a negative balance).
        post_usage(
            session,
            account=account,
            amount_nanos=credits_to_nanos("8"),
            at=now - timedelta(days=6),
            reference="batch:2",
        )
    with unit_of_work(engine, write=True) as session:
        grant_credits(
            session,
            account_id="acc_e",
            amount_nanos=credits_to_nanos("20"),
            source="purchased",
            cost_basis_cents=2_000,
            description="Top-up",
            at=now - timedelta(days=5),
        )


def test_one_event_per_batch_and_a_payoff_is_part_of_its_grant(engine: Engine, now: datetime) -> None:
    _story(engine, now)
    with unit_of_work(engine) as session:
        lines = ledger_view(session, "acc_e")
    events = ledger_events(lines)
    assert (
        len(lines) == 2 + 2 + 2 + 3
    )  # grants, batch 1 (two grants), batch 2 (grant + deficit), top-up + payoff
    assert [e.reference_label for e in events] == [
        "Grant #3",
        "Usage batch 2",
        "Usage batch 1",
        "Grant #2",
        "Grant #1",
    ]
    top_up, second, first = events[0], events[1], events[2]
    assert first.change_nanos == -credits_to_nanos("12")
    assert first.details == "Promotional #1 — Welcome: -10.00 credits; Purchased #2 — Pack: -2.00 credits"
    assert second.change_nanos == -credits_to_nanos("8") and second.balance_after_nanos == -credits_to_nanos(
        "5"
    )
    assert "Negative balance: -5.00 credits" in second.details
    # The payoff's +5 / -5 pair is not two rows of opposite sign: one "Credits added" of +20.
    assert top_up.change_nanos == credits_to_nanos("20")
    assert top_up.label == "Credits added, 5.00 credits of them paying off the negative balance"
    assert top_up.balance_after_nanos == credits_to_nanos("15")
    assert len(top_up.entries) == 3
    # Every entry is in exactly one event, and the events add up to the balance.
    assert sorted(e.entry_id for event in events for e in event.entries) == sorted(
        line.entry_id for line in lines
    )
    assert sum(event.change_nanos for event in events) == credits_to_nanos("15")
