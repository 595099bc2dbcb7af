"""A person sets a daily cap on one API key on the Limits page; then ``POST /api/v1/authorize``
refuses that key only (another key of the same account is allowed), naming the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.demo.seed import STARTUP
from tests.e2e.conftest import API_TOKEN, Portal, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

Page = Any  # playwright.sync_api.Page
TIMEOUT_MS = 60_000
CAPPED_KEY = "key_ci_a04e"
OTHER_KEY = "key_prod_7f3a"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def choose(page: Page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.locator('[role="combobox"], input').first.click()
    page.get_by_role("option", name=option, exact=True).first.click()


def authorize(portal: Portal, api_key: str) -> dict[str, Any]:
    response = httpx.post(
        f"{portal.base_url}/api/v1/authorize",
        json={"account_id": STARTUP, "api_key": api_key, "estimated_cost": "0"},
        headers=AUTH,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def capped_key_cap_id(portal: Portal) -> int:
    from core.db import make_engine, unit_of_work
    from core.spend.caps import list_caps

    engine = make_engine(portal.database_url)
    try:
        with unit_of_work(engine) as session:
            (cap,) = [c for c in list_caps(session, STARTUP) if c.scope_value == CAPPED_KEY]
    finally:
        engine.dispose()
    assert (cap.scope, cap.period, cap.mode) == ("api_key", "day", "hard")
    return cap.cap_id


def test_a_daily_key_cap_set_in_the_browser_refuses_that_key_only(page: Page, portal: Portal) -> None:
    sign_in(page, portal)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Limits", exact=True).click()
    page.get_by_role("heading", name="Limits", exact=True).wait_for(timeout=TIMEOUT_MS)
    choose(page, "Scope", "API key")
    page.get_by_role("combobox", name="API key").click()
    page.get_by_role("option", name=CAPPED_KEY, exact=True).click()
    choose(page, "Period", "Daily")
    page.get_by_label("Cap (credits)").fill("0.01")
    page.get_by_role("button", name="Save cap").click()
    page.get_by_text(f"Hard daily cap of 0.01 credits set on API key {CAPPED_KEY}").wait_for(
        timeout=TIMEOUT_MS
    )
    cap_id = capped_key_cap_id(portal)

    # Usage on the capped key today takes it past its 0.01 credits.
    now = datetime.now(UTC)
    event = {
        "event_id": f"e2e-key-cap-{now:%H%M%S%f}",
        "account_id": STARTUP,
        "meter": "input_tokens",
        "quantity": 1_000_000,
        "timestamp": (now - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dimensions": {"model": "atlas-large", "project": "evals", "api_key": CAPPED_KEY},
    }
    sent = httpx.post(f"{portal.base_url}/api/v1/events", json={"events": [event]}, headers=AUTH, timeout=30)
    assert sent.status_code == 200 and sent.json()["accepted"] == 1, sent.text

    refused = authorize(portal, CAPPED_KEY)
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while refused["allowed"] and datetime.now(UTC) < deadline:  # snapshots are at most a second old
        page.wait_for_timeout(250)
        refused = authorize(portal, CAPPED_KEY)
    assert (refused["allowed"], refused["reason"]) == (False, "hard_cap_reached")
    limit = refused["limit"]
    assert (limit["cap_id"], limit["scope"], limit["value"], limit["period"], limit["limit"]) == (
        cap_id,
        "api_key",
        CAPPED_KEY,
        "day",
        "0.010000000",
    )
    assert refused["resets_at"] == limit["resets_at"] and refused["as_of"]
    other = authorize(portal, OTHER_KEY)
    assert (other["allowed"], other["reason"], other["limit"]) == (True, None, None)

    # The page shows the stack: the capped key binds on its daily cap, with no room left.
    page.reload()
    page.get_by_role("heading", name="What stops requests first").wait_for(timeout=TIMEOUT_MS)
    # The grid draws on a canvas; its cells are in the page for assistive technology.
    page.get_by_text(f"Daily cap on API key {CAPPED_KEY}").first.wait_for(
        state="attached", timeout=TIMEOUT_MS
    )
