"""The support console's pages: only agents reach them; search, open, grant with a reason, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from core.db import unit_of_work
from core.db.models import AuditLog, CreditGrant
from tests.app.console import field, submit
from tests.app.harness import open_page, page_text, signed_in
from tests.app.seed import ALICE, BOB

QUERY_KEY = "support_search.query"

AGENT = "agent@meterline.test"
ADMIN = "admin@meterline.test"
CONSOLE = ("support_search", "support_account", "support_audit")


def search(at: AppTest, query: str) -> None:
    """Type into the console's search box (a keyup component: AppTest reaches it through its
    widget state, as the browser would report a keystroke)."""
    at.session_state[f"_st_keyup_{QUERY_KEY}"] = {"value": query}
    at.run()


@pytest.mark.parametrize("page", CONSOLE)
def test_a_customer_cannot_reach_any_console_page(portal_url: str, page: str) -> None:
    at = signed_in(ALICE)
    with pytest.raises(ValueError):
        at.switch_page(f"../pages/{page}.py")
    assert "Support role" not in page_text(at)


def test_an_agent_who_is_also_a_member_keeps_their_customer_pages(portal_url: str) -> None:
    at = signed_in(ALICE, roles=["support"])
    assert at.title[0].value != "Support console"  # their Overview, as before
    open_page(at, "support_search")
    assert at.title[0].value == "Support console"


def test_search_by_email_opens_the_account_and_a_grant_with_a_reason_is_audited(portal_url: str) -> None:
    at = signed_in(AGENT, roles=["support"])
    assert at.title[0].value == "Support console"  # an agent with no account lands in the console
    search(at, BOB)
    assert "Borealis Bank" in page_text(at)
    at.button(key="support_search.open.acc_borealis").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Borealis Bank"
    assert "support admin role" in page_text(at)  # a plain agent sees no refund form

    at.text_input(key=field(at, "grant", "amount")).input("12.50")
    at.text_area(key=field(at, "grant", "reason")).input("Sorry for Tuesday's outage")
    at.checkbox(key=field(at, "grant", "confirm")).check()
    at.button(key=submit(at, "grant", "Grant credits")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Granted 12.50" in s.value for s in at.success), [s.value for s in at.success]
    assert "Sorry for Tuesday's outage" in page_text(at)  # in the timeline

    with unit_of_work(get_engine()) as session:
        grant = session.scalars(select(CreditGrant).where(CreditGrant.source == "goodwill")).one()
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "support.grant_credits")).one()
    assert (grant.account_id, grant.amount_nanos, grant.created_by) == ("acc_borealis", 12_500_000_000, AGENT)
    assert (entry.actor, entry.reason) == (AGENT, "Sorry for Tuesday's outage")

    open_page(at, "support_audit")
    assert "support.grant_credits" in page_text(at)
    assert at.get("download_button")


def test_a_grant_without_a_reason_is_refused_and_nothing_is_granted(portal_url: str) -> None:
    at = signed_in(AGENT, roles=["support"])
    search(at, "acc_acme")
    at.button(key="support_search.open.acc_acme").click().run()
    at.text_input(key=field(at, "grant", "amount")).input("5")
    at.checkbox(key=field(at, "grant", "confirm")).check()
    at.button(key=submit(at, "grant", "Grant credits")).click().run()
    assert any("reason is required" in e.value for e in at.error), [e.value for e in at.error]
    with unit_of_work(get_engine()) as session:
        assert session.scalars(select(CreditGrant).where(CreditGrant.source == "goodwill")).all() == []


def test_a_grant_not_confirmed_asks_for_the_tick_and_grants_nothing(portal_url: str) -> None:
    at = signed_in(AGENT, roles=["support"])
    search(at, "acc_acme")
    at.button(key="support_search.open.acc_acme").click().run()
    at.text_input(key=field(at, "grant", "amount")).input("5")
    at.text_area(key=field(at, "grant", "reason")).input("Outage credit")
    at.button(key=submit(at, "grant", "Grant credits")).click().run()
    assert [e.value for e in at.error] == ["Tick “I confirm this grant” first."]
    with unit_of_work(get_engine()) as session:
        assert session.scalars(select(CreditGrant).where(CreditGrant.source == "goodwill")).all() == []


def test_a_support_admin_sees_refunds_caps_and_suspension(portal_url: str) -> None:
    at = signed_in(ADMIN, roles=["support_admin"])
    search(at, "Acme")
    at.button(key="support_search.open.acc_acme").click().run()
    text = page_text(at)
    assert "Refund a top-up" in text and "Suspend the account" in text


def test_a_support_admin_sets_a_daily_cap_on_an_api_key(portal_url: str) -> None:
    from core.spend.caps import list_caps

    at = signed_in(ADMIN, roles=["support_admin"])
    search(at, "Acme")
    at.button(key="support_search.open.acc_acme").click().run()
    at.selectbox(key=field(at, "cap", "scope")).set_value("api_key")
    at.text_input(key=field(at, "cap", "scope_value")).input("key_1")
    at.selectbox(key=field(at, "cap", "period")).set_value("day")
    at.text_input(key=field(at, "cap", "limit")).input("5")
    at.text_area(key=field(at, "cap", "reason")).input("Runaway CI key, ticket 42")
    at.button(key=submit(at, "cap", "Set cap")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    with unit_of_work(get_engine()) as session:
        (cap,) = list_caps(session, "acc_acme")
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "support.set_cap")).one()
    assert (cap.scope, cap.scope_value, cap.period, cap.limit_nanos) == ("api_key", "key_1", "day", 5 * 10**9)
    assert entry.details["after"]["period"] == "day"
    assert "API key key_1" in page_text(at) and "daily" in page_text(at)
