"""An owner creates a customer API key in the browser, reads the account's usage and costs with it
through the HTTP API on the same port, revokes it on the page, and the API then answers 401."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.demo.seed import STARTUP
from tests.e2e.conftest import Portal, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

Page = Any  # playwright.sync_api.Page
TIMEOUT_MS = 60_000
NAME = "E2E warehouse sync"


def test_a_key_made_in_the_browser_reads_usage_until_revoked(page: Page, portal: Portal) -> None:
    sign_in(page, portal)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("API keys", exact=True).click()
    page.get_by_role("heading", name="API keys", exact=True).wait_for(timeout=TIMEOUT_MS)
    page.get_by_label("Name", exact=True).fill(NAME)
    page.get_by_role("button", name="Create key").click()
    page.get_by_text("shown only once").wait_for(timeout=TIMEOUT_MS)
    secret = page.locator('[data-testid="stCode"]').first.inner_text().strip()
    assert re.fullmatch(r"ml_live_[0-9a-f]{48}", secret), secret

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    query = {
        "start": (today - timedelta(days=7)).isoformat(),
        "end": (today + timedelta(days=1)).isoformat(),
        "group_by": "model",
    }
    auth = {"Authorization": f"Bearer {secret}"}
    usage = httpx.get(f"{portal.base_url}/api/v1/usage", params=query, headers=auth, timeout=30)
    assert usage.status_code == 200, usage.text
    assert usage.json()["account_id"] == STARTUP
    assert any(b["results"] for b in usage.json()["buckets"])  # the demo account has usage every day
    balance = httpx.get(f"{portal.base_url}/api/v1/balance", headers=auth, timeout=30)
    assert balance.status_code == 200 and balance.json()["account_id"] == STARTUP

    page.get_by_role("button", name="Revoke key…").click()
    page.get_by_role("button", name="Yes, revoke").click()
    page.get_by_text(f"Key “{NAME}”").first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("revoked.").first.wait_for(timeout=TIMEOUT_MS)
    after = httpx.get(f"{portal.base_url}/api/v1/usage", params=query, headers=auth, timeout=30)
    assert after.status_code == 401 and after.json()["error"]["code"] == "key_revoked"
