""" "View as customer": an agent sees an account's own pages read-only, under a banner, audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from core.db import unit_of_work
from core.db.models import AuditLog
from tests.app.harness import MAIN, open_page, page_text, signed_in
from tests.app.seed import ALICE, BOB

AGENT = "agent@meterline.test"
BANNER = "Viewing Borealis Bank as the customer sees it"


def _views() -> list[tuple[str, str, str]]:
    with unit_of_work(get_engine()) as session:
        rows = session.scalars(
            select(AuditLog).where(AuditLog.action == "support.view_as_customer").order_by(AuditLog.id)
        ).all()
    return [(row.actor, row.account_id or "", row.details["target"]) for row in rows]


def _viewing_borealis() -> AppTest:
    at = signed_in(AGENT, roles=["support"])
    at.query_params["open"] = "acc_borealis"
    open_page(at, "support_account")
    assert at.title[0].value == "Borealis Bank"
    at.button(key="support_account.view_as").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Overview"  # the router opened the customer's home page
    # AppTest asks again for the page last named by switch_page (the console's); name this one.
    return open_page(at, "overview")


def test_an_agent_sees_the_overview_under_a_banner_and_the_view_is_audited(portal_url: str) -> None:
    at = _viewing_borealis()
    assert at.title[0].value == "Overview"  # the customer's own home page
    assert BANNER in page_text(at)
    assert _views() == [(AGENT, "acc_borealis", "page:overview")]

    at.run()  # a rerun (a live page refreshing itself) is the same view, not a new one
    assert _views() == [(AGENT, "acc_borealis", "page:overview")]

    open_page(at, "balance")
    assert BANNER in page_text(at)
    assert _views()[-1] == (AGENT, "acc_borealis", "page:balance")


@pytest.mark.parametrize("page", ["buy_credits", "limits", "alerts", "members"])
def test_a_customer_view_offers_nothing_that_writes(portal_url: str, page: str) -> None:
    at = _viewing_borealis()
    open_page(at, page)
    text = page_text(at)
    assert BANNER in text
    assert "Read-only: you are viewing this account as its customer" in text
    labels = [b.label for b in at.button] + [b.label for b in at.get("form_submit_button")]
    assert not [label for label in labels if label not in ("Back to the console", "Sign out")], labels


@pytest.mark.parametrize("page", ["overview", "balance"])
def test_a_customer_view_of_the_read_pages_offers_no_action_either(portal_url: str, page: str) -> None:
    at = _viewing_borealis()
    open_page(at, page)
    assert BANNER in page_text(at)
    labels = [b.label for b in at.button] + [link.label for link in at.get("page_link")]
    assert not [label for label in labels if label not in ("Back to the console", "Sign out")], labels
    assert "Set alerts" not in page_text(at)


def test_back_to_the_console_ends_the_view(portal_url: str) -> None:
    at = _viewing_borealis()
    at.button(key="view_as.exit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Borealis Bank"  # the account in the console again
    assert BANNER not in page_text(at)
    at.run()  # the address may still name the view just left: it does not reopen it
    assert BANNER not in page_text(at)
    assert "nav.view_as" not in at.session_state


def test_a_customer_cannot_view_as_another_customer(portal_url: str) -> None:
    at = AppTest.from_file(str(MAIN), default_timeout=60)
    at.user = {"is_logged_in": True, "email": ALICE}
    at.query_params["view_as"] = "acc_borealis"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Borealis" not in page_text(at)
    assert "Acme Robotics" in page_text(at)  # their own account, as always
    assert _views() == []


def test_an_agent_reloading_a_customer_view_keeps_it(portal_url: str) -> None:
    """A reload is a new browser session: the address's ``view_as`` opens the view again, audited."""
    at = signed_in(AGENT, roles=["support"])
    fresh = AppTest.from_file(str(MAIN), default_timeout=60)
    fresh.user = {"is_logged_in": True, "email": AGENT, "roles": ["support"]}
    fresh.query_params["view_as"] = "acc_borealis"
    fresh.run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert BANNER in page_text(fresh)
    assert _views() == [(AGENT, "acc_borealis", "page:overview")]
    assert "Borealis" not in page_text(at)  # the other session is not in a customer view


def test_a_customer_of_the_account_is_not_disturbed_by_the_agent_viewing_it(portal_url: str) -> None:
    _viewing_borealis()
    at = signed_in(BOB)
    assert BANNER not in page_text(at)
    assert at.title[0].value == "Overview"


@pytest.mark.parametrize("param", ["view_as", "open"])
@pytest.mark.parametrize("value", ["acc\x00x", "x" * 5_000])
def test_a_hostile_account_id_in_the_address_is_not_found(portal_url: str, param: str, value: str) -> None:
    """A NUL (PostgreSQL cannot even be asked about it) or a pasted novel: "does not exist", no error."""
    at = AppTest.from_file(str(MAIN), default_timeout=60)
    at.user = {"is_logged_in": True, "email": AGENT, "roles": ["support"]}
    at.query_params[param] = value
    at.run()
    if param == "open":
        open_page(at, "support_account")
    assert not at.exception, [e.value for e in at.exception]
    shown = [e.value for e in at.error]
    assert any("does not exist" in text for text in shown), shown
    assert all(len(text) < 400 for text in shown), shown  # the id is not echoed whole
    assert _views() == []
