"""Support actions that cannot be doubled by accident, in a real browser on the demo portal (sandbox
payments): a double-clicked grant makes one grant and leaves an empty form on the Act tab; an
approval without a reason is refused and grants nothing; a retried (double-clicked) refund refunds
once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import make_engine, unit_of_work
from core.db.models import Account, AuditLog, CreditGrant, SupportApproval, TopUp
from core.demo.seed import OVERDRAWN, PENDING_GRANT_REASON
from tests.e2e.conftest import Portal, _seed, free_port, run_portal
from tests.e2e.test_navigation_browser import (
    DESKTOP,
    TIMEOUT_MS,
    _context,
    heading,
    sign_in_from_here,
    wait_for_session_cookie,
    wait_idle,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

AGENT = "support@meterline.example"
LEAD = "support-lead@meterline.example"


@pytest.fixture(scope="module")
def console_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The demo-mode portal with the demo's support lead allowed to act as support admin."""
    work = tmp_path_factory.mktemp("console_portal")
    database_url = f"sqlite:///{work / 'meterline.db'}"
    _seed(database_url)
    env = {"METERLINE_JOBS": "off", "METERLINE_SUPPORT_ADMIN_EMAILS": LEAD}
    with run_portal(work, database_url, port=free_port(), env=env, what="the console portal") as running:
        yield running


@pytest.fixture
def context(browser: Any, console_portal: Portal, request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from _context(browser, console_portal, request, DESKTOP)


def _query(portal: Portal, statement: Any) -> Any:
    engine = make_engine(portal.database_url)
    try:
        with unit_of_work(engine) as session:
            return session.execute(statement).all()
    finally:
        engine.dispose()


def _open(page: Any, portal: Portal, email: str, account_id: str) -> None:
    page.goto(portal.base_url)
    sign_in_from_here(page, email)
    heading(page, "Support console")
    wait_for_session_cookie(page.context)  # the address below is a new page load: it needs the cookie
    page.goto(f"{portal.base_url}/support_account?open={account_id}")
    [(name,)] = _query(portal, select(Account.name).where(Account.id == account_id))
    heading(page, name)
    wait_idle(page)


def _act_tab(page: Any) -> Any:
    return page.get_by_role("tab", name="Act")


def test_a_double_clicked_grant_makes_one_grant_and_clears_the_form(
    context: Any, console_portal: Portal
) -> None:
    page = context.new_page()
    _open(page, console_portal, AGENT, "acc_quietharbor")
    reason = "Goodwill: double-click check, ticket 9001"
    _act_tab(page).click()
    page.locator('input[aria-label="Credits"]').fill("7.50")
    page.locator('textarea[aria-label="Reason (required; the customer may see it)"]').fill(reason)
    page.get_by_text("I confirm this grant").click()
    page.get_by_role("button", name="Grant credits").dblclick()
    page.get_by_text("Granted 7.50").wait_for(timeout=TIMEOUT_MS)
    wait_idle(page)
    page.wait_for_timeout(1_500)  # anything a second click started has run by now
    wait_idle(page)
    page.get_by_role("button", name="Grant credits").click()  # one more click after the answer
    page.get_by_text("Tick “I confirm this grant” first.").wait_for(timeout=TIMEOUT_MS)
    wait_idle(page)

    grants = _query(console_portal, select(CreditGrant.id).where(CreditGrant.description == reason))
    assert len(grants) == 1
    assert _act_tab(page).get_attribute("aria-selected") == "true"  # still on the form's tab
    assert page.locator('input[aria-label="Credits"]').input_value() == ""
    assert not page.get_by_role("checkbox", name="I confirm this grant").is_checked()


def test_an_approval_without_a_reason_is_refused_and_grants_nothing(
    context: Any, console_portal: Portal
) -> None:
    [(approval_id,)] = _query(
        console_portal,
        select(SupportApproval.id).where(
            SupportApproval.account_id == OVERDRAWN, SupportApproval.reason == PENDING_GRANT_REASON
        ),
    )
    page = context.new_page()
    _open(page, console_portal, LEAD, OVERDRAWN)
    request = page.locator(f".st-key-support_request_{approval_id}")
    request.get_by_text(f"Request #{approval_id}").wait_for(timeout=TIMEOUT_MS)
    request.get_by_text("I confirm this decision").click()
    request.get_by_role("button", name=f"Approve #{approval_id}").click()
    page.get_by_text("(field: reason)").wait_for(timeout=TIMEOUT_MS)
    wait_idle(page)

    [(state,)] = _query(
        console_portal, select(SupportApproval.state).where(SupportApproval.id == approval_id)
    )
    assert state == "pending"
    approved = _query(console_portal, select(AuditLog.id).where(AuditLog.action == "support.grant_approved"))
    assert approved == []


def test_a_retried_refund_refunds_once(context: Any, console_portal: Portal) -> None:
    rows = _query(
        console_portal,
        select(TopUp.id, TopUp.account_id)
        .where(TopUp.state == "credited", TopUp.refunded_cents == 0, TopUp.dispute_status == "")
        .order_by(TopUp.id),
    )
    assert rows, "the demo has a credited sandbox top-up"
    top_up_id, account_id = rows[0]
    page = context.new_page()
    _open(page, console_portal, LEAD, account_id)
    _act_tab(page).click()
    form = page.locator('[data-testid="stForm"]', has_text="Refund a top-up")
    # The first top-up is chosen, with what a refund would give back and take back.
    picker = form.locator('[data-testid="stSelectbox"]').first
    chosen = picker.get_by_role("combobox").input_value()
    assert re.match(rf"^#{top_up_id}: \$.* refundable · .* credits unspent of ", chosen), chosen
    form.locator('input[aria-label="Dollars (empty: all that is left)"]').fill("1")
    form.locator('textarea[aria-label="Reason (required)"]').fill("Charged twice (browser test)")
    form.get_by_text("I confirm this refund").click()
    form.get_by_role("button", name="Refund").dblclick()
    page.get_by_text(f"Refunded $1.00 of top-up #{top_up_id}").wait_for(timeout=TIMEOUT_MS)
    wait_idle(page)
    page.wait_for_timeout(1_500)
    wait_idle(page)
    form.get_by_role("button", name="Refund").click()  # and once more after the answer
    page.get_by_text("Tick “I confirm this refund” first.").wait_for(timeout=TIMEOUT_MS)
    wait_idle(page)

    [(refunded,)] = _query(console_portal, select(TopUp.refunded_cents).where(TopUp.id == top_up_id))
    assert refunded == 100
    audited = _query(
        console_portal,
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "support.refund_top_up"),
    )
    assert audited == [(1,)]
