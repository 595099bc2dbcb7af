"""On a phone (390 px) the unread-notifications badge is on the page itself, with the sidebar
folded away; the sidebar still opens, and closes again once a page is picked in it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.test_navigation_browser import (  # the demo-mode portal and its helpers
    TIMEOUT_MS,
    demo_portal,
    heading,
    phone,
    sidebar_link,
    sign_in_from_here,
    wait_idle,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
__all__ = ["demo_portal", "phone"]  # fixtures, imported so this module can use them

BADGE = re.compile(r"Notifications · (\d+ unread|none unread)")


def sidebar_right(page: Any) -> float:
    return float(
        page.evaluate("""() => document.querySelector('[data-testid="stSidebar"]')
                                          .getBoundingClientRect().right""")
    )


def test_the_notifications_badge_is_on_the_page_and_the_sidebar_still_folds(
    phone: Any, demo_portal: Any
) -> None:
    page = phone.new_page()
    page.goto(demo_portal.base_url)
    sign_in_from_here(page, "maya@startup.example")
    heading(page, "Overview")
    wait_idle(page)
    assert sidebar_right(page) <= 0  # folded away

    main = page.locator('[data-testid="stMain"]')
    badge = main.locator(".st-key-phone-notifications").get_by_text(BADGE)
    badge.wait_for(timeout=TIMEOUT_MS)
    box = badge.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] < 844, box

    page.locator('[data-testid="stExpandSidebarButton"]').click()
    page.wait_for_function("""() => document.querySelector('[data-testid="stSidebar"]')
                                      .getBoundingClientRect().right > 200""")
    sidebar_link(page, "Alerts")
    heading(page, "Alerts")
    page.wait_for_function("""() => document.querySelector('[data-testid="stSidebar"]')
                                      .getBoundingClientRect().right <= 0""")
    assert main.locator(".st-key-phone-notifications").get_by_text(BADGE).is_visible()


def test_on_a_wide_screen_the_badge_is_in_the_sidebar_only(phone: Any, demo_portal: Any) -> None:
    page = phone.new_page()
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(demo_portal.base_url)
    sign_in_from_here(page, "maya@startup.example")
    heading(page, "Overview")
    wait_idle(page)
    page.locator('[data-testid="stSidebar"]').get_by_text(BADGE).wait_for(timeout=TIMEOUT_MS)
    assert not page.locator('[data-testid="stMain"]').get_by_text(BADGE).is_visible()
