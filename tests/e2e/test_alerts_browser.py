"""A person creates an alert in the browser, usage posted to the API crosses it, and the notification
shows: in the notification centre on the Alerts page and as the sidebar's unread badge."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.demo.seed import STARTUP
from tests.e2e.conftest import API_TOKEN, Portal, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

Page = Any  # playwright.sync_api.Page
TIMEOUT_MS = 60_000
PROJECT = "e2e-alerts"
RULE = "E2E project spend"


def open_alerts(page: Page) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Alerts", exact=True).click()
    page.get_by_role("heading", name="Alerts", exact=True).wait_for(timeout=TIMEOUT_MS)


def choose(page: Page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.locator('[role="combobox"], input').first.click()
    page.get_by_role("option", name=option).first.click()


def test_alert_created_in_the_browser_fires_on_ingested_usage(page: Page, portal: Portal) -> None:
    sign_in(page, portal)
    open_alerts(page)
    # Every account starts with the credits-expiring rules, so the new-rule form is folded away.
    page.get_by_text("New alert rule", exact=True).click()
    choose(page, "Kind", "Spend this month above an amount or a % of a budget")
    page.get_by_label("Amount (credits)").wait_for()
    choose(page, "Scope", "Project")
    # The project is picked from those the account's usage carries; a new one is behind an explicit
    # option, warned about before saving, and needs a tick.
    page.get_by_role("combobox", name="Project").click()
    page.get_by_role("option", name="Another project, not used yet…").click()
    page.get_by_label("New project name").fill(PROJECT)
    page.get_by_label("New project name").press("Enter")
    page.get_by_text(f"No usage under “{PROJECT}” yet").wait_for(timeout=TIMEOUT_MS)
    page.get_by_label("Name", exact=True).first.fill(RULE)  # the new rule's (the edit form's is below)
    page.get_by_label("Amount (credits)").fill("1")
    page.get_by_text("Save it anyway").click()
    page.get_by_role("button", name="Create rule").click()
    page.get_by_text(f"Rule “{RULE}” saved").wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_text("It fired right away").count() == 0  # nothing spent on the project yet

    now = datetime.now(UTC)
    events = [
        {
            "event_id": f"e2e-alert-{now:%H%M%S%f}-{i}",
            "account_id": STARTUP,
            "meter": "input_tokens",
            "quantity": 1_000_000,
            "timestamp": (now - timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dimensions": {"model": "atlas-large", "project": PROJECT, "api_key": "key_prod_7f3a"},
        }
        for i in range(5)
    ]
    response = httpx.post(
        f"{portal.base_url}/api/v1/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 5

    fired = page.get_by_text(f"Alert '{RULE}' fired").first
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while datetime.now(UTC) < deadline and not fired.is_visible():
        page.wait_for_timeout(1_000)
        open_alerts(page)  # a rerun reads the notification centre again
    assert fired.is_visible(), "the notification never showed on the Alerts page"
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text(re.compile(r"Notifications · \d+ unread")).wait_for(timeout=TIMEOUT_MS)
