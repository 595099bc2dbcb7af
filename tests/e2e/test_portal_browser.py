"""A person signs in through the OIDC provider and sees live usage and the balance."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.db import make_engine, unit_of_work
from core.db.models import Account
from core.demo.seed import STARTUP
from core.display import format_credits
from tests.e2e.conftest import API_TOKEN, SIGN_IN_TIMEOUT_MS, USER, Portal, sign_in

# One worker runs them all (make test uses --dist loadscope; the group is for --dist loadgroup):
# they share the module's portal and provider (see conftest).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

Page = Any  # playwright.sync_api.Page (imported lazily: chromium may be missing)
LIVE_UPDATE_TIMEOUT_S = 30


def open_usage(page: Page) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Usage", exact=True).click()
    page.get_by_role("heading", name="Usage").wait_for(timeout=SIGN_IN_TIMEOUT_MS)


def metric_value(page: Page, label_starts: str | re.Pattern[str]) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label_starts)
    )
    return str(metric.locator('[data-testid="stMetricValue"]').first.inner_text()).strip()


EVENTS_TEXT = re.compile(r"\b(\d[\d,]*) events\b")


def _events_shown(page: Page) -> int:
    """The range's event count the Usage page states ("…: 3,036 events · …")."""
    found = EVENTS_TEXT.search(str(page.locator('[data-testid="stMain"]').inner_text()))
    assert found, "the Usage page states no event count"
    return int(found.group(1).replace(",", ""))


def _balance_nanos(portal: Portal) -> int:
    engine = make_engine(portal.database_url)
    try:
        with unit_of_work(engine) as session:
            return int(session.scalar(select(Account.balance_nanos).where(Account.id == STARTUP)) or 0)
    finally:
        engine.dispose()


def test_sign_in_shows_usage_chart_and_balance(page: Page, portal: Portal) -> None:
    sign_in(page, portal)
    # The landing page: the projection and the runway, with their periods and units.
    page.locator('[data-testid="stMetricLabel"]', has_text="Projected spend by").first.wait_for()
    assert metric_value(page, "Projected spend by").endswith(" credits")
    open_usage(page)
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.locator("canvas, svg").first.wait_for(timeout=30_000)
    assert chart.is_visible()
    page.get_by_text(EVENTS_TEXT).first.wait_for()
    assert _events_shown(page) > 0

    page.locator('[data-testid="stSidebarNav"]').get_by_text("Balance & credits").click()
    page.get_by_role("heading", name="Balance & credits").wait_for()
    balance_label = re.compile(r"^\s*Balance\b")  # "Balance, as of …"
    page.locator('[data-testid="stMetricLabel"]', has_text=balance_label).first.wait_for()
    assert metric_value(page, balance_label) == format_credits(_balance_nanos(portal))
    assert page.get_by_text("Signed in as").first.is_visible()


def test_events_posted_to_the_api_appear_on_the_open_usage_page(page: Page, portal: Portal) -> None:
    sign_in(page, portal)
    open_usage(page)
    page.get_by_text(EVENTS_TEXT).first.wait_for()
    before = _events_shown(page)
    url_before = page.url

    now = datetime.now(UTC)
    events = [
        {
            "event_id": f"e2e-live-{now:%H%M%S%f}-{i}",
            "account_id": STARTUP,
            "meter": "input_tokens",
            "quantity": 50_000,
            "timestamp": (now - timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dimensions": {"model": "atlas-large", "project": "copilot", "api_key": "key_prod_7f3a"},
        }
        for i in range(25)
    ]
    response = httpx.post(
        f"{portal.base_url}/api/v1/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 25

    deadline = datetime.now(UTC) + timedelta(seconds=LIVE_UPDATE_TIMEOUT_S)
    shown = before
    while datetime.now(UTC) < deadline:
        shown = _events_shown(page)
        if shown == before + 25:
            break
        page.wait_for_timeout(500)
    assert shown == before + 25, f"the Usage page still shows {shown} events (was {before})"
    assert page.url == url_before  # no navigation or reload: the fragment refreshed itself


def test_a_reload_keeps_the_oidc_session_and_the_page(page: Page, portal: Portal) -> None:
    sign_in(page, portal)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Prices", exact=True).click()
    page.get_by_role("heading", name="Prices").wait_for()
    page.reload()
    page.get_by_role("heading", name="Prices").wait_for(timeout=SIGN_IN_TIMEOUT_MS)
    assert re.search(r"/prices\?(.*&)?account=acc_brightpath", page.url)
    page.get_by_role("button", name="Sign out").wait_for()
    assert page.get_by_role("button", name="Sign in", exact=True).count() == 0


def test_a_deep_link_survives_oidc_sign_in(page: Page, portal: Portal) -> None:
    """Signed out, a link to a view: sign in through the provider, land on that view."""
    target = f"{portal.base_url}/usage?range=7d&stack=model&account={STARTUP}"
    page.goto(target)
    page.get_by_role("button", name="Sign in", exact=True).click(timeout=SIGN_IN_TIMEOUT_MS)
    page.wait_for_url(re.compile(r".*/oauth2/authorize.*"), timeout=SIGN_IN_TIMEOUT_MS)
    page.get_by_role("button", name=USER["sub"]).click()
    page.get_by_role("heading", name="Usage").wait_for(timeout=SIGN_IN_TIMEOUT_MS)
    page.get_by_role("heading", name=re.compile(r"^By day, by model — ")).wait_for()
    assert page.url.startswith(f"{portal.base_url}/usage?")
    assert "range=7d" in page.url and "stack=model" in page.url
    assert page.get_by_role("combobox", name="Range").input_value() == "Last 7 days"
