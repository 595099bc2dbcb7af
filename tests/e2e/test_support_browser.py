"""The support console in a real browser: find an account by a member's email, grant credits
with a reason, and see the grant in the account's timeline and in the audit log."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import Portal
from tests.e2e.test_navigation_browser import (  # the demo-mode portal and its helpers
    TIMEOUT_MS,
    context,
    demo_portal,
    heading,
    sidebar_link,
    sign_in_from_here,
    wait_idle,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
__all__ = ["context", "demo_portal"]  # fixtures, imported so this module can use them

REASON = "Goodwill: the customs-docs import failed twice on Nov 19"


def grid_cell(page: Any, text: str) -> Any:
    """A table cell (the grid keeps an accessible copy of its cells in the page, not visible)."""
    return page.locator('[data-testid="stDataFrame"] [role="gridcell"]', has_text=text).first


def test_an_agent_finds_an_account_by_email_grants_credits_and_sees_it_in_the_timeline_and_audit_log(
    context: Any, demo_portal: Portal
) -> None:
    page = context.new_page()
    page.goto(demo_portal.base_url)
    sign_in_from_here(page, "support@meterline.example")
    heading(page, "Support console")

    # Results follow the typing: no Enter, no leaving the field.
    search = page.get_by_placeholder(re.compile(r"^Account name or id"))
    search.press_sequentially("olivia@enterprise", delay=40)
    page.get_by_text("Northwind Logistics").first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Open").first.click()
    heading(page, "Northwind Logistics")

    page.get_by_role("tab", name="Act").click()
    page.locator('input[aria-label="Credits"]').fill("7.50")
    page.locator('textarea[aria-label="Reason (required; the customer may see it)"]').fill(REASON)
    page.get_by_text("I confirm this grant").click()
    page.get_by_role("button", name="Grant credits").click()
    page.get_by_text("Granted 7.50").wait_for(timeout=TIMEOUT_MS)
    wait_idle(page)

    page.get_by_role("tab", name="Timeline").click()
    # The timeline holds both the ledger entry and the support action (the Grants tab has neither title).
    grid_cell(page, "Credits added: Goodwill").wait_for(state="attached", timeout=TIMEOUT_MS)
    grid_cell(page, "support.grant_credits").wait_for(state="attached", timeout=TIMEOUT_MS)
    grid_cell(page, REASON).wait_for(state="attached", timeout=TIMEOUT_MS)

    sidebar_link(page, "Support: audit log")
    heading(page, "Audit log")
    grid_cell(page, "support.grant_credits").wait_for(state="attached", timeout=TIMEOUT_MS)
    grid_cell(page, REASON).wait_for(state="attached", timeout=TIMEOUT_MS)


def test_an_agent_views_an_account_as_its_customer_read_only_and_goes_back(
    context: Any, demo_portal: Portal
) -> None:
    page = context.new_page()
    page.goto(demo_portal.base_url)
    sign_in_from_here(page, "support@meterline.example")
    heading(page, "Support console")
    page.get_by_placeholder(re.compile(r"^Account name or id")).press_sequentially("Pixel", delay=40)
    page.get_by_text("Pixel Forge").first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Open").first.click()
    heading(page, "Pixel Forge")

    page.get_by_role("button", name="View as customer").click()
    heading(page, "Overview")
    banner = page.get_by_text("Viewing Pixel Forge as the customer sees it")
    banner.wait_for(timeout=TIMEOUT_MS)
    assert "view_as=" in page.url

    page.reload()  # a reload keeps the customer view (the address names it)
    heading(page, "Overview")
    banner.wait_for(timeout=TIMEOUT_MS)

    sidebar_link(page, "Buy credits")
    heading(page, "Buy credits")
    page.get_by_text("Read-only: you are viewing this account as its customer").first.wait_for()
    assert page.get_by_role("button", name=re.compile(r"^(Continue to payment|Pay )")).count() == 0

    page.get_by_role("button", name="Back to the console").click()
    heading(page, "Pixel Forge")
    page.wait_for_url(re.compile(r"^(?!.*view_as=).*open=acc_"))
    wait_idle(page)
    assert page.get_by_text("as the customer sees it").count() == 0
