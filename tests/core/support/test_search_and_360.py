"""Search finds an account by each key; the 360 view and its timeline tell the balance's story."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from core.accounts import add_member, create_account
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import PaymentCustomer
from core.errors import PermissionDenied
from core.metering import ingest_events
from core.money import credits_to_nanos
from core.support import SUPPORT, Agent, account_360, grant_credits_as_agent, search_accounts
from tests.core.payments.helpers import ACCOUNT, make_priced_account, spend
from tests.core.payments.test_refunds_and_disputes import _bought

SAM = Agent("sam@meterline.example", SUPPORT)


def _hits(engine: Engine, query: str) -> list[tuple[str, str]]:
    with unit_of_work(engine) as session:
        return [(h.account_id, h.matched) for h in search_accounts(session, query)]


def _with_api_key_usage(engine: Engine, now: datetime) -> None:
    make_priced_account(engine, now)
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id="acc_other", name="Other Corp", at=now)
        add_member(session, account_id="acc_other", email="zed@other.test", role="owner", at=now)
        session.add(
            PaymentCustomer(account_id=ACCOUNT, provider="stripe", customer_id="cus_ABC123", created_at=now)
        )
    event = {
        "event_id": "k1",
        "account_id": ACCOUNT,
        "meter": "units",
        "quantity": 1,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "dimensions": {"api_key": "sk_live_7f3a9"},
    }
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(session, [event], clock=fixed_clock(now))
    assert result.accepted == 1, result.rejected


def test_search_finds_an_account_by_each_key(engine: Engine, now: datetime) -> None:
    _with_api_key_usage(engine, now)
    assert _hits(engine, ACCOUNT) == [(ACCOUNT, "account id")]
    assert _hits(engine, "acc_p") == [(ACCOUNT, "account id")]
    assert _hits(engine, "paying") == [(ACCOUNT, "name")]
    assert _hits(engine, "OLGA@pay") == [(ACCOUNT, "email")]
    assert _hits(engine, "zed@other.test") == [("acc_other", "email")]
    assert _hits(engine, "cus_ABC123") == [(ACCOUNT, "customer")]
    assert _hits(engine, "sk_live_7f") == [(ACCOUNT, "API key")]
    assert _hits(engine, "sk_live_7F") == []  # keys are case-sensitive
    assert _hits(engine, "100%") == [] and _hits(engine, "_") == []
    with unit_of_work(engine) as session:
        [hit] = search_accounts(session, "paying")
    assert (hit.name, hit.status, hit.balance_nanos) == ("Paying Co", "active", -credits_to_nanos(1))


@pytest.mark.parametrize(
    "query",
    ["ab\x00cd", "acc_\ud800", "\U0010ffff\U0010ffff", "sk_live_\U0010ffff", "#" + "9" * 30, "x" * 5_000],
)
def test_a_hostile_query_finds_nothing_and_never_fails(engine: Engine, now: datetime, query: str) -> None:
    """A NUL or a lone surrogate (PostgreSQL cannot be asked about them), the last code point (no
    prefix range above it), an id past 64 bits, a very long paste: no match, no error."""
    _with_api_key_usage(engine, now)
    assert _hits(engine, query) == []


def test_an_api_key_prefix_ending_in_the_last_code_point_still_bounds_its_range() -> None:
    from core.support.search import _prefix_upper

    assert _prefix_upper("sk_a") == "sk_b"
    assert _prefix_upper("sk_a\U0010ffff") == "sk_b"
    assert _prefix_upper("\U0010ffff") is None


def test_search_finds_an_account_by_top_up_and_payment_id(engine: Engine, now: datetime) -> None:
    _payments, top_up_id, intent_id = _bought(engine, now)
    assert _hits(engine, f"#{top_up_id}") == [(ACCOUNT, "top-up")]
    assert _hits(engine, intent_id) == [(ACCOUNT, "payment")]


def test_the_360_view_joins_grants_usage_top_ups_and_support_actions_newest_first(
    engine: Engine, now: datetime
) -> None:
    _payments, top_up_id, _intent = _bought(engine, now)
    spend(engine, credits_to_nanos(5), now + timedelta(minutes=1))
    with unit_of_work(engine, write=True) as session:
        grant_credits_as_agent(
            session,
            SAM,
            account_id=ACCOUNT,
            amount_nanos=credits_to_nanos(3),
            reason="sorry for the outage",
            at=now + timedelta(minutes=2),
        )
    with unit_of_work(engine) as session:
        view = account_360(session, SAM, ACCOUNT, at=now + timedelta(minutes=3))
        with pytest.raises(PermissionDenied):
            account_360(session, "olga@pay.test", ACCOUNT, at=now)  # type: ignore[arg-type]
    assert view.balance.balance_nanos == credits_to_nanos(23)
    assert {m.role for m in view.members} == {"owner", "billing", "viewer"}
    assert [g.source for g in view.grants] == ["goodwill", "purchased"]
    assert [t.top_up_id for t in view.top_ups] == [top_up_id]
    assert view.usage_total_nanos == credits_to_nanos(5)
    kinds = [item.kind for item in view.timeline]
    assert {"ledger", "top-up", "webhook", "support"} <= set(kinds)
    assert view.timeline == sorted(view.timeline, key=lambda item: item.at, reverse=True)
    newest = view.timeline[0]
    assert newest.at == now + timedelta(minutes=2)
    assert any(item.kind == "support" and item.detail == "sorry for the outage" for item in view.timeline)
