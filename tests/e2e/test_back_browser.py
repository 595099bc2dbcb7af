"""The browser's Back button, as on any web site: Back undoes a view change (and the page then
shows the previous view), and a page left by the sidebar is one Back away.

Each step a person takes adds exactly one history entry (``app/browser.py``,
``one_history_entry_per_step``), however many times the address is rewritten on its way.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from core.demo.seed import STARTUP
from tests.e2e.test_navigation_browser import (  # the demo-mode portal and its helpers
    TIMEOUT_MS,
    context,
    demo_portal,
    heading,
    sidebar_link,
    sign_in_from_here,
    wait_for_session_cookie,
    wait_idle,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
__all__ = ["context", "demo_portal"]  # fixtures, imported so this module can use them

Page = Any


def entries(page: Page) -> int:
    return int(page.evaluate("() => window.history.length"))


def folded(page: Page, label: str) -> Any:
    """The combobox ``label``; the Usage view's own choices ("Stack by") sit in the popover whose
    button says the view ("By day · by meter · spend"): opened first when closed."""
    combo = page.get_by_role("combobox", name=label)
    if label != "Range" and not combo.is_visible():
        page.get_by_role("button", name=re.compile(r"^By (day|hour) · ")).click()
        combo.wait_for(timeout=TIMEOUT_MS)
    return combo


def close_popover(page: Page) -> None:
    page.keyboard.press("Escape")
    wait_idle(page)


def choose(page: Page, label: str, option: str) -> None:
    folded(page, label).click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(page.get_by_role("combobox", name=label)).to_have_value(option)
    wait_idle(page)
    if label != "Range":
        close_popover(page)


def back(page: Page) -> None:
    page.go_back()
    wait_idle(page)


def shows(page: Page, **choices: str) -> None:
    for label, option in choices.items():
        expect(folded(page, label.replace("_", " "))).to_have_value(option)
    if set(choices) - {"Range"}:
        close_popover(page)


def test_back_undoes_each_view_change_and_a_sidebar_page_switch_is_one_entry(
    context: Any, demo_portal: Any
) -> None:
    page = context.new_page()
    page.goto(demo_portal.base_url)
    sign_in_from_here(page, "maya@startup.example")
    heading(page, "Overview")
    wait_for_session_cookie(context)
    wait_idle(page)

    sidebar_link(page, "Usage")
    heading(page, "Usage")
    wait_idle(page)
    start = entries(page)
    choose(page, "Range", "Last 7 days")
    page.wait_for_url(re.compile(r".*/usage\?.*range=7d"))
    choose(page, "Stack by", "Model")
    page.wait_for_url(re.compile(r".*/usage\?.*range=7d.*stack=model"))
    assert entries(page) == start + 2  # one entry per view change

    # Leaving by the sidebar after a view change is one entry, and one Back returns to that view.
    sidebar_link(page, "Balance & credits")
    heading(page, "Balance & credits")
    page.wait_for_url(re.compile(rf".*/balance\?account={STARTUP}$"))
    wait_idle(page)
    assert entries(page) == start + 3
    back(page)
    heading(page, "Usage")
    assert re.search(r"/usage\?.*range=7d.*stack=model", page.url)
    shows(page, Range="Last 7 days", Stack_by="Model")

    # Back undoes one view change at a time, and the page shows the view it undid to.
    back(page)
    heading(page, "Usage")
    assert re.search(r"/usage\?.*range=7d", page.url) and "stack=" not in page.url
    shows(page, Range="Last 7 days", Stack_by="Meter")
    back(page)
    assert page.url == f"{demo_portal.base_url}/usage?account={STARTUP}"  # not rewritten
    shows(page, Range="Last 30 days", Stack_by="Meter")

    # Forward redoes it; one more Back leaves Usage for the page it was opened from.
    page.go_forward()
    wait_idle(page)
    shows(page, Range="Last 7 days", Stack_by="Meter")
    back(page)
    back(page)
    heading(page, "Overview")
    assert page.url == f"{demo_portal.base_url}/?account={STARTUP}"


def test_a_page_opened_by_its_address_is_one_entry(context: Any, demo_portal: Any) -> None:
    """The router adds ``?account=`` to the address of a page just opened: no entry of its own, so
    one Back leaves the page."""
    page = context.new_page()
    page.goto(demo_portal.base_url)
    sign_in_from_here(page, "maya@startup.example")
    heading(page, "Overview")
    wait_for_session_cookie(context)
    page.goto(f"{demo_portal.base_url}/prices")
    heading(page, "Prices")
    page.wait_for_url(f"{demo_portal.base_url}/prices?account={STARTUP}")
    wait_idle(page)
    page.goto(f"{demo_portal.base_url}/usage")
    heading(page, "Usage")
    page.wait_for_url(f"{demo_portal.base_url}/usage?account={STARTUP}")
    wait_idle(page)

    back(page)
    heading(page, "Prices")
    assert page.url == f"{demo_portal.base_url}/prices?account={STARTUP}"
