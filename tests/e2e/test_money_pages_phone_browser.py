"""Overview and Buy credits on a phone (390 px): the columns that matter are on screen without
scrolling sideways: the projection's band per project and per meter, and each purchase's state
(a failed top-up must read "Failed" at a glance)."""

from __future__ import annotations

from typing import Any

import pytest

from core.demo.seed import STARTUP
from tests.e2e.conftest import Portal
from tests.e2e.test_navigation_browser import (  # noqa: F401  (fixtures used by name)
    _fully_on_screen,
    _grid,
    demo_portal,
    heading,
    phone,
    sign_in_from_here,
    wait_idle,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def test_on_a_phone_the_band_and_the_state_columns_are_on_screen(phone: Any, demo_portal: Portal) -> None:  # noqa: F811
    page = phone.new_page()
    page.goto(f"{demo_portal.base_url}/overview?account={STARTUP}")
    sign_in_from_here(page, "maya@startup.example")
    heading(page, "Overview")
    wait_idle(page)
    for index in (0, 1):  # by project, by meter
        grid = _grid(page, index)
        grid.scroll_into_view_if_needed()
        _fully_on_screen(grid, "Projected (credits)")
        _fully_on_screen(grid, "80% band (credits)")
    page.screenshot(path=str(demo_portal.log.with_name("phone-overview.png")), full_page=True)

    page.goto(f"{demo_portal.base_url}/buy_credits?account={STARTUP}")
    heading(page, "Buy credits")
    wait_idle(page)
    history = _grid(page, 0)
    history.scroll_into_view_if_needed()
    _fully_on_screen(history, "When")
    _fully_on_screen(history, "State")
    page.screenshot(path=str(demo_portal.log.with_name("phone-buy-credits.png")), full_page=True)
