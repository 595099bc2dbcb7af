"""A customer buys credits end to end in sandbox mode and sees the balance rise.

Maya signs in (OIDC), opens Buy credits, picks $25 with a new card, goes to the sandbox's
checkout in a new tab and pays with the test Visa; that tab comes back to the portal, which
asks the provider and shows the payment received, while the first tab's status updates on
its own. The Balance page then shows the balance 25 credits higher, exactly once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import make_engine, unit_of_work
from core.db.models import Account, TopUp
from core.demo.seed import STARTUP
from core.display import format_credits
from core.money import credits_to_nanos
from tests.e2e.conftest import Portal, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

Page = Any  # playwright.sync_api.Page
TIMEOUT_MS = 60_000


def _balance_nanos(portal: Portal) -> int:
    engine = make_engine(portal.database_url)
    try:
        with unit_of_work(engine) as session:
            return int(session.scalar(select(Account.balance_nanos).where(Account.id == STARTUP)) or 0)
    finally:
        engine.dispose()


def _checkout_top_ups(portal: Portal) -> list[tuple[str, int]]:
    engine = make_engine(portal.database_url)
    try:
        with unit_of_work(engine) as session:
            rows = session.execute(
                select(TopUp.state, TopUp.amount_cents).where(
                    TopUp.kind == "checkout", TopUp.amount_cents == 2_500
                )
            ).all()
            assert (
                session.scalar(
                    select(func.count()).select_from(TopUp).where(TopUp.state == "pending_payment")
                )
                == 0
            )
            return [(state, cents) for state, cents in rows]
    finally:
        engine.dispose()


BALANCE_LABEL = re.compile(r"^\s*Balance\b")  # "Balance (as of …)" / "Balance, as of …"


def balance_shown(page: Page) -> str:
    label = page.locator('[data-testid="stMetricLabel"]', has_text=BALANCE_LABEL).first
    label.wait_for(timeout=TIMEOUT_MS)
    metric = page.locator('[data-testid="stMetric"]').filter(has=label).first
    return str(metric.locator('[data-testid="stMetricValue"]').first.inner_text()).strip()


def test_buy_credits_in_the_sandbox_and_see_the_balance_rise(page: Page, portal: Portal) -> None:
    before = _balance_nanos(portal)
    sign_in(page, portal)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Buy credits").click()
    page.get_by_role("heading", name="Buy credits").wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("Sandbox mode").first.wait_for()

    page.locator('[data-testid="stRadio"]').first.get_by_text("$25.00", exact=True).click()
    page.get_by_text("25.00 credits").first.wait_for()
    page.get_by_text("A new card (secure checkout)", exact=True).click()
    page.get_by_role("button", name=re.compile(r"Continue to payment · \$25\.00")).click()
    checkout_link = page.get_by_role("link", name=re.compile("Open the secure checkout"))
    checkout_link.wait_for(timeout=TIMEOUT_MS)

    with page.context.expect_page() as opened:
        checkout_link.click()
    checkout = opened.value
    checkout.wait_for_load_state()
    assert "SANDBOX" in checkout.content() and "$25.00" in checkout.content()
    checkout.get_by_role("button", name=re.compile("4242 4242 4242 4242")).click()
    # Back in the portal (still signed in): the page asked the provider and shows the real state.
    checkout.wait_for_url(re.compile(r".*/buy_credits\?.*top_up=\d+.*"), timeout=TIMEOUT_MS)
    checkout.get_by_text(re.compile("Payment received: 25.00 credits")).first.wait_for(timeout=TIMEOUT_MS)
    checkout.close()

    # The first tab saw it settle by itself.
    page.get_by_text(re.compile("Payment received: 25.00 credits")).first.wait_for(timeout=TIMEOUT_MS)
    after = _balance_nanos(portal)
    assert after - before == credits_to_nanos(25)
    assert _checkout_top_ups(portal) == [("credited", 2_500)]

    page.locator('[data-testid="stSidebarNav"]').get_by_text("Balance & credits").click()
    page.get_by_role("heading", name="Balance & credits").wait_for()
    assert balance_shown(page) == format_credits(after)
