"""Links, reloads and small screens, in a real browser, on a portal in demo mode.

Reloads keep the session, page and account; signing out ends every tab; deep links and
links with a view survive sign-in; unknown paths get a page; sorting by spend sorts
numbers; on a phone the money columns and the chart are on screen and the sidebar closes
after a pick; the balance is live.

One portal in demo mode (no ``[auth]`` in its working directory) for the module. Waits are
for elements and states, never fixed sleeps.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from app.usage_view import GROUP_WIDTH, PERIOD_WIDTH, SPEND_WIDTH
from core.demo.seed import ENTERPRISE, OVERDRAWN, STARTUP
from tests.e2e.conftest import API_TOKEN, Portal, _seed, free_port, run_portal

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

Page = Any  # playwright.sync_api.Page (imported lazily: chromium may be missing)
TIMEOUT_MS = 60_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 1000}
SIGN_IN_BUTTON = "Sign in as this demo user"


@pytest.fixture(scope="module")
def demo_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The portal in demo mode on a free port, on a freshly seeded SQLite database."""
    work = tmp_path_factory.mktemp("demo_portal")
    database_url = f"sqlite:///{work / 'meterline.db'}"
    _seed(database_url)
    with run_portal(
        work, database_url, port=free_port(), env={"METERLINE_JOBS": "off"}, what="the demo-mode portal"
    ) as running:
        yield running


def _context(
    browser: Any, portal: Portal, request: pytest.FixtureRequest, viewport: dict[str, int]
) -> Iterator[Any]:
    ctx = browser.new_context(viewport=viewport)
    ctx.set_default_timeout(30_000)
    yield ctx
    report = getattr(request.node, "e2e_report_call", None)
    if report is not None and report.failed:
        for index, open_page in enumerate(ctx.pages):
            shot = portal.log.with_name(f"failure-{request.node.name}-{index}.png")
            try:
                open_page.screenshot(path=str(shot), full_page=True)
                print(f"e2e: screenshot of the failure: {shot}")
            except Exception as error:  # the page may be gone; the log still helps
                print(f"e2e: no screenshot ({error})")
        print(f"e2e: portal log (last lines):\n{portal.log.read_text()[-3000:]}")
    ctx.close()


@pytest.fixture
def context(browser: Any, demo_portal: Portal, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser (no cookies) at desktop size."""
    yield from _context(browser, demo_portal, request, DESKTOP)


@pytest.fixture
def phone(browser: Any, demo_portal: Portal, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser (no cookies) 390 px wide."""
    yield from _context(browser, demo_portal, request, PHONE)


def heading(page: Page, name: str) -> None:
    page.get_by_role("heading", name=name, exact=True).first.wait_for(timeout=TIMEOUT_MS)


def sign_in_from_here(page: Page, email: str) -> None:
    """On the sign-in screen (whatever the address), pick ``email`` and sign in."""
    page.get_by_role("button", name=SIGN_IN_BUTTON).wait_for(timeout=TIMEOUT_MS)
    page.locator('[data-testid="stRadio"] label', has_text=email).first.click()
    page.get_by_role("button", name=SIGN_IN_BUTTON).click()


def wait_for_session_cookie(context: Any, timeout_s: float = 30) -> dict[str, Any]:
    """The page stores the session in the browser right after sign-in (a fetch): wait for it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cookie = next((c for c in context.cookies() if c["name"] == "meterline_session"), None)
        if cookie is not None:
            return cookie
        time.sleep(0.05)
    raise AssertionError("the browser never got the session cookie")


def sidebar_link(page: Page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()


def metric_value(page: Page, label_starts: str) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label_starts)
    )
    return str(metric.locator('[data-testid="stMetricValue"]').first.inner_text()).strip()


def wait_idle(page: Page) -> None:
    """The last run finished: no running indicator, nothing stale."""
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
              && !document.querySelector('[data-testid="stMain"] [data-stale="true"]')""",
        timeout=TIMEOUT_MS,
    )


def test_a_reload_keeps_the_session_the_page_and_the_account(context: Any, demo_portal: Portal) -> None:
    page = context.new_page()
    page.goto(demo_portal.base_url)
    sign_in_from_here(page, "sam@consulting.example")  # a member of two accounts
    heading(page, "Overview")
    cookie = wait_for_session_cookie(context)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    account = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first
    account.click()
    page.get_by_role("option", name="Northwind Logistics").click()
    page.wait_for_url(re.compile(rf".*account={ENTERPRISE}.*"))
    sidebar_link(page, "Balance & credits")
    heading(page, "Balance & credits")
    page.wait_for_url(re.compile(rf".*/balance\?.*account={ENTERPRISE}.*"))

    page.reload()
    heading(page, "Balance & credits")
    assert re.search(rf"/balance\?.*account={ENTERPRISE}", page.url)
    page.get_by_text("Northwind Logistics").first.wait_for()
    page.get_by_role("button", name="Sign out").wait_for()
    assert page.get_by_role("button", name=SIGN_IN_BUTTON).count() == 0

    other = context.new_page()  # a new tab of the same browser is signed in too
    other.goto(f"{demo_portal.base_url}/prices")
    heading(other, "Prices")


def test_signing_out_ends_the_session_in_every_tab(context: Any, demo_portal: Portal) -> None:
    first = context.new_page()
    first.goto(f"{demo_portal.base_url}/usage")
    sign_in_from_here(first, "leo@startup.example")
    heading(first, "Usage")
    wait_for_session_cookie(context)  # then a second tab opens already signed in
    second = context.new_page()
    second.goto(f"{demo_portal.base_url}/usage")
    heading(second, "Usage")

    first.get_by_role("button", name="Sign out").click()
    first.get_by_role("button", name=SIGN_IN_BUTTON).wait_for()
    # The other tab signs out on its own at its next live refresh (every 5 s), no reload needed.
    second.get_by_role("button", name=SIGN_IN_BUTTON).wait_for(timeout=30_000)
    second.reload()
    second.get_by_role("button", name=SIGN_IN_BUTTON).wait_for()
    assert second.get_by_role("heading", name="Usage").count() == 0
    assert second.get_by_role("button", name="Sign out").count() == 0


def test_a_deep_link_survives_sign_in(context: Any, demo_portal: Portal) -> None:
    page = context.new_page()
    target = f"{demo_portal.base_url}/balance?account={ENTERPRISE}"
    page.goto(target)
    page.get_by_role("button", name=SIGN_IN_BUTTON).wait_for()
    assert page.url == target  # not rewritten to "/", no "Page not found"
    sign_in_from_here(page, "olivia@enterprise.example")
    heading(page, "Balance & credits")
    assert page.url.startswith(f"{demo_portal.base_url}/balance?") and f"account={ENTERPRISE}" in page.url


def test_unknown_addresses_get_a_page_with_the_way_home(context: Any, demo_portal: Portal) -> None:
    page = context.new_page()
    page.goto(demo_portal.base_url)
    sign_in_from_here(page, "maya@startup.example")
    heading(page, "Overview")
    wait_for_session_cookie(context)  # a full page load before it is stored would sign out
    for path in ("/a/b/c", "/no-such-page"):
        page.goto(demo_portal.base_url + path)
        heading(page, "Page not found")
        # The heading comes first in the delta stream; the address follows it, so wait for it.
        expect(page.locator('[data-testid="stMain"]')).to_contain_text(path)
    page.locator('[data-testid="stPageLink-NavLink"]', has_text="Go to Overview").click()
    heading(page, "Overview")
    # The home page's own name leads home (Streamlit serves the default page at "/" only).
    page.goto(f"{demo_portal.base_url}/overview?account={STARTUP}")
    heading(page, "Overview")
    assert page.url == f"{demo_portal.base_url}/?account={STARTUP}"
    wait_idle(page)
    assert page.get_by_text("Page not found").count() == 0


def test_a_link_with_range_and_grouping_restores_the_view(context: Any, demo_portal: Portal) -> None:
    page = context.new_page()
    page.goto(f"{demo_portal.base_url}/usage?range=7d&buckets=hour&stack=model&account={STARTUP}")
    sign_in_from_here(page, "maya@startup.example")
    heading(page, "Usage")
    page.get_by_role("heading", name=re.compile(r"^By hour, by model — ")).wait_for()
    assert page.get_by_role("combobox", name="Range").input_value() == "Last 7 days"
    # The view's other choices are folded into one button that says them.
    page.get_by_role("button", name=re.compile(r"By hour · by model · spend")).click()
    assert page.get_by_role("radio", name="By hour").is_checked()
    assert page.get_by_role("combobox", name="Stack by").input_value() == "Model"
    assert "range=7d" in page.url and "stack=model" in page.url and "buckets=hour" in page.url

    # A change goes into the address, so copying it shares this very view.
    page.locator('[data-testid="stRadio"] label', has_text="By day").click()
    page.get_by_role("heading", name=re.compile(r"^By day, by model — ")).wait_for()
    page.wait_for_url(re.compile(r"^(?!.*buckets=).*stack=model.*$"))


def _grid(page: Page, index: int) -> Any:
    return page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]').nth(index)


def _headers(grid: Any) -> list[str]:
    """The headers the grid has on screen (its accessible table lists the visible columns only)."""
    grid.locator('[role="columnheader"]').first.wait_for(state="attached")
    return [str(text).strip() for text in grid.locator('[role="columnheader"]').all_inner_texts()]


def test_sorting_by_spend_sorts_numbers(phone: Any, demo_portal: Portal) -> None:
    page = phone.new_page()
    page.goto(f"{demo_portal.base_url}/usage?account={STARTUP}")
    sign_in_from_here(page, "maya@startup.example")
    heading(page, "Usage")
    grid = _grid(page, 1)  # by day, by meter
    grid.scroll_into_view_if_needed()
    wait_idle(page)
    assert _headers(grid)[:3] == ["Day", "Meter", "Spend (credits)"]
    canvas = grid.locator('[data-testid="data-grid-canvas"]').bounding_box()
    # The first columns have fixed widths, so the Spend header's middle is known.
    spend_x = canvas["x"] + PERIOD_WIDTH["Day"] + GROUP_WIDTH + SPEND_WIDTH / 2
    page.mouse.move(spend_x, canvas["y"] + 15)
    page.get_by_text("the CSV has every digit").first.wait_for()  # the Spend header's tooltip: right place
    spend_cells = grid.locator('[role="gridcell"][aria-colindex="3"]')

    def shown() -> list[Decimal]:
        # Two decimals, thousands separators, "< 0.01" for a tiny amount (docs/money.md).
        return [Decimal(text.replace(",", "").replace("< ", "")) for text in spend_cells.all_inner_texts()]

    page.mouse.click(spend_x, canvas["y"] + 15)
    page.wait_for_function(
        """(grid) => {
             const cells = [...grid.querySelectorAll('[role="gridcell"][aria-colindex="3"]')];
             const values = cells.map((cell) => Number(cell.textContent.replace(/[,< ]/g, "")));
             return values.length > 3 && values.every((v, i) => i === 0 || values[i - 1] <= v);
           }""",
        arg=grid.element_handle(),
    )
    ascending = shown()
    assert ascending == sorted(ascending) and len(ascending) > 3
    page.mouse.click(spend_x, canvas["y"] + 15)  # again: largest first
    page.wait_for_function(
        """(grid) => {
             const cells = [...grid.querySelectorAll('[role="gridcell"][aria-colindex="3"]')];
             const values = cells.map((cell) => Number(cell.textContent.replace(/[,< ]/g, "")));
             return values.length > 3 && values.every((v, i) => i === 0 || values[i - 1] >= v);
           }""",
        arg=grid.element_handle(),
    )
    descending = shown()
    assert descending == sorted(descending, reverse=True)
    # The grid sorts the cells' numbers, not their text: as text "9.44" would sort above "84.32".
    assert ascending[0] < 1 < descending[0]


def _fully_on_screen(grid: Any, column: str) -> None:
    """``column`` is among the columns the grid shows, and not the one cut by the grid's edge:
    a column after it is on screen too, or nothing is cut at all."""
    headers = _headers(grid)
    assert column in headers, f"{column!r} is off screen; on screen: {headers}"
    box = grid.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    overflows = grid.evaluate(
        """(el) => [...el.querySelectorAll('.dvn-scroller')].some((s) => s.scrollWidth > s.clientWidth + 1)"""
    )
    assert not overflows or headers.index(column) < len(headers) - 1, f"{column!r} is cut: {headers}"


def test_on_a_phone_money_and_charts_fit_and_the_sidebar_closes(phone: Any, demo_portal: Portal) -> None:
    page = phone.new_page()
    page.goto(f"{demo_portal.base_url}/usage?account={STARTUP}")
    sign_in_from_here(page, "maya@startup.example")
    heading(page, "Usage")
    wait_idle(page)
    # The filters fold into one button: the first screen shows the numbers.
    page.get_by_role("button", name=re.compile(r"^Filters")).wait_for()
    first_metric = page.locator('[data-testid="stMetric"]').first.bounding_box()
    assert first_metric["y"] + first_metric["height"] <= PHONE["height"], first_metric
    chart = page.locator('[data-testid="stMain"] [data-testid="stVegaLiteChart"]').first
    chart.locator("canvas, svg").first.wait_for()
    box = chart.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    drawn = chart.locator("canvas, svg").first.bounding_box()
    assert drawn["x"] + drawn["width"] <= PHONE["width"] + 1, drawn  # legend below, not beside
    _fully_on_screen(_grid(page, 0), "Spend (credits)")  # totals per meter
    _fully_on_screen(_grid(page, 1), "Spend (credits)")  # by day
    page.screenshot(path=str(demo_portal.log.with_name("phone-usage.png")), full_page=True)

    page.locator('[data-testid="stExpandSidebarButton"]').click()
    sidebar = page.locator('[data-testid="stSidebar"]')
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stSidebar\"]').getBoundingClientRect().right > 200"
    )
    sidebar_link(page, "Balance & credits")
    heading(page, "Balance & credits")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stSidebar\"]').getBoundingClientRect().right <= 0"
    )
    assert sidebar.bounding_box()["x"] < 0
    wait_idle(page)
    grants = _grid(page, 0)
    _fully_on_screen(grants, "Remaining (credits)")
    _fully_on_screen(grants, "Expires")
    _fully_on_screen(_grid(page, 1), "Change (credits)")  # the ledger
    page.screenshot(path=str(demo_portal.log.with_name("phone-balance.png")), full_page=True)


def test_the_balance_is_live(context: Any, demo_portal: Portal) -> None:
    page = context.new_page()
    page.goto(f"{demo_portal.base_url}/balance?account={OVERDRAWN}")
    sign_in_from_here(page, "ravi@pixelforge.example")
    heading(page, "Balance & credits")
    label = "Balance, as of"
    page.locator('[data-testid="stMetricLabel"]', has_text=label).first.wait_for()
    before = metric_value(page, label)
    url = page.url
    now = datetime.now(UTC)
    events = [
        {
            "event_id": f"e2e-balance-{now:%H%M%S%f}-{i}",
            "account_id": OVERDRAWN,
            "meter": "images",
            "quantity": 50,
            "timestamp": (now - timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dimensions": {"model": "pixel-diffusion", "project": "thumbnails", "api_key": "key_live_e93f"},
        }
        for i in range(5)
    ]
    answer = httpx.post(
        f"{demo_portal.base_url}/api/v1/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 5, answer.text
    posted = datetime.now(UTC)
    page.wait_for_function(
        """([label, before]) => [...document.querySelectorAll('[data-testid="stMetric"]')].some((m) =>
             m.querySelector('[data-testid="stMetricLabel"]')?.textContent.includes(label)
             && m.querySelector('[data-testid="stMetricValue"]')?.textContent.trim() !== before)""",
        arg=[label, before],
        timeout=20_000,
    )
    seen_after_s = (datetime.now(UTC) - posted).total_seconds()
    assert metric_value(page, label) != before
    assert page.url == url  # no reload: the live part refreshed itself
    assert seen_after_s <= 10, f"the new balance showed after {seen_after_s:.1f} s"
