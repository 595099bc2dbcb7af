"""The portal inside a company's own product, in Chromium: a portal session minted over the API,
its link opened in an iframe of a page served from another local origin.

The portal (demo mode, no identity provider) lists one framing origin (``http://127.0.0.1:<A>``);
a second local site (``http://127.0.0.1:<B>``) is not listed. The portal itself is reached as
``http://localhost:<port>``: another site than the framing page, as in production, so the frame
works without cookies from the token in its address.
"""

from __future__ import annotations

import html
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.conftest import API_TOKEN, CHROMIUM, CHROMIUM_ARGS, Portal, _seed, free_port, run_portal

COMPANY = "Acme Analytics"
ACCOUNT = "acc_brightpath"
ACCOUNT_NAME = "Brightpath AI"
OTHER_ACCOUNT_NAME = "Northwind Logistics"
WAIT_MS = 60_000


class _FramingPage(BaseHTTPRequestHandler):
    """``/frame?src=<url>``: the company's page, the portal in an iframe; ``/back``: its return page."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/back":
            body = "<!doctype html><title>Back</title><h1>Back at the company</h1>"
        else:
            src = parse_qs(parts.query).get("src", [""])[0]
            body = (
                f"<!doctype html><title>{COMPANY}</title><h1>{COMPANY} dashboard</h1>"
                f'<iframe id="portal" src="{html.escape(src, quote=True)}" width="1200" height="900">'
                "</iframe>"
            )
        data = body.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _site(port: int) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", port), _FramingPage)
    thread = threading.Thread(target=server.serve_forever, name=f"framing-site-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Embed:
    portal: Portal
    listed: str  # a framing site METERLINE_EMBED_ORIGINS names
    unlisted: str  # one it does not

    def mint(self, **fields: Any) -> dict[str, Any]:
        body = {"account_id": ACCOUNT, "role": "viewer", "pages": ["usage", "balance"], **fields}
        answer = httpx.post(
            f"{self.portal.base_url}/api/v1/portal-sessions",
            json=body,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def end(self, session_id: str) -> None:
        answer = httpx.delete(
            f"{self.portal.base_url}/api/v1/portal-sessions/{session_id}",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text

    def expire(self, session_id: str) -> None:
        """Move the session's end into the past (the test does not wait for a clock)."""
        path = self.portal.database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            db.execute(
                "UPDATE portal_sessions SET expires_at = '2000-01-01 00:00:00.000000' WHERE id = ?",
                (session_id,),
            )

    def framed(self, site: str, url: str) -> str:
        return f"{site}/frame?" + httpx.QueryParams({"src": url}).__str__()


@pytest.fixture(scope="module")
def embed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embed]:
    work = tmp_path_factory.mktemp("embed")
    database_url = f"sqlite:///{work / 'meterline.db'}"
    _seed(database_url)
    listed_port, unlisted_port = free_port(), free_port()
    env = {
        "METERLINE_EMBED_ORIGINS": f"http://127.0.0.1:{listed_port}",
        "METERLINE_EMBED_COMPANY_NAME": COMPANY,
        "METERLINE_EMBED_PRIMARY_COLOR": "#7b1fa2",
    }
    with (
        _site(listed_port) as listed,
        _site(unlisted_port) as unlisted,
        run_portal(work, database_url, port=free_port(), env=env, what="the embedded portal") as portal,
    ):
        yield Embed(portal, listed, unlisted)


@pytest.fixture
def page(embed: Embed, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        yield page
        report = getattr(request.node, "e2e_report_call", None)
        if report is not None and report.failed:
            shot = tmp_path / "failure.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"e2e: screenshot of the failure: {shot}")
            print(f"e2e: portal log (last lines):\n{embed.portal.log.read_text()[-3000:]}")
        context.close()
        browser.close()


def test_a_listed_site_frames_the_sessions_pages_once(embed: Embed, page: Any) -> None:
    minted = embed.mint()
    page.goto(embed.framed(embed.listed, minted["url"]))
    frame = page.frame_locator("#portal")
    frame.get_by_role("heading", name="Usage").wait_for()
    # Only this session's pages, in the frame's own navigation; no sidebar, no other account.
    nav = frame.locator(".st-key-embed-nav")
    nav.get_by_role("link", name="Usage").wait_for()
    nav.get_by_role("link", name="Balance & credits").wait_for()
    assert nav.get_by_text("Overview").count() == 0 and nav.get_by_text("Buy credits").count() == 0
    assert (
        frame.locator('[data-testid="stSidebar"]').count() == 0
        or not frame.locator('[data-testid="stSidebar"]').is_visible()
    )
    assert frame.get_by_text(OTHER_ACCOUNT_NAME).count() == 0
    assert page.get_by_role("heading", name=f"{COMPANY} dashboard").is_visible()

    # A link between the embedded pages stays in the frame and keeps the session.
    nav.get_by_text("Balance & credits").click()
    frame.get_by_role("heading", name="Balance & credits").wait_for()
    assert frame.get_by_text(ACCOUNT_NAME).first.is_visible()
    assert page.url.startswith(embed.listed)

    # The same link again, in a new page: refused.
    again = page.context.new_page()
    again.goto(embed.framed(embed.listed, minted["url"]))
    again.frame_locator("#portal").get_by_text("This link was already used").wait_for()
    again.close()


def test_a_site_that_is_not_listed_cannot_frame_the_portal(embed: Embed, page: Any) -> None:
    minted = embed.mint()
    page.goto(embed.framed(embed.unlisted, minted["url"]), wait_until="load")
    page.get_by_role("heading", name=f"{COMPANY} dashboard").wait_for()
    frame = next(f for f in page.frames if f != page.main_frame)
    # Chromium blocked the response (frame-ancestors): no portal text, and the frame is not the portal.
    assert "Usage" not in (frame.content() if not frame.is_detached() else "")
    assert page.frame_locator("#portal").get_by_role("heading", name="Usage").count() == 0
    # Opened by itself (not framed), the same kind of link works: it was the frame that was refused.
    direct = embed.mint()
    page.goto(direct["url"])
    page.get_by_role("heading", name="Usage").wait_for()


def test_a_deleted_session_lands_on_the_ended_page(embed: Embed, page: Any) -> None:
    minted = embed.mint(return_url=f"{embed.listed}/back")
    page.goto(embed.framed(embed.listed, minted["url"]))
    frame = page.frame_locator("#portal")
    frame.get_by_role("heading", name="Usage").wait_for()
    embed.end(minted["id"])
    frame.locator(".st-key-embed-nav").get_by_text("Balance & credits").click()
    frame.get_by_role("heading", name="This session has ended").wait_for()
    assert frame.get_by_text(f"This session has ended. Return to {COMPANY}.").is_visible()
    back = frame.get_by_role("link", name=f"Return to {COMPANY}")
    assert back.get_attribute("href") == f"{embed.listed}/back"
    # A reload of the framed page: the link is spent and the session over.
    page.reload()
    page.frame_locator("#portal").get_by_role("heading", name="This session has ended").wait_for()


def test_an_expired_session_lands_on_the_ended_page(embed: Embed, page: Any) -> None:
    minted = embed.mint(return_url=f"{embed.listed}/back", pages=["usage", "balance", "overview"])
    page.goto(embed.framed(embed.listed, minted["url"]))
    frame = page.frame_locator("#portal")
    frame.get_by_role("heading", name="Overview").wait_for()
    embed.expire(minted["id"])
    frame.locator(".st-key-embed-nav").get_by_text("Usage").click()
    frame.get_by_role("heading", name="This session has ended").wait_for()
    back = frame.get_by_role("link", name=f"Return to {COMPANY}")
    assert back.get_attribute("href") == f"{embed.listed}/back"
    assert re.search(r"Usage", frame.locator("h1").first.inner_text()) is None


def test_buy_credits_inside_the_frame_pays_in_a_new_tab(embed: Embed, page: Any) -> None:
    minted = embed.mint(role="billing", pages=["buy_credits", "balance"], email="ana@customer.example")
    page.goto(embed.framed(embed.listed, minted["url"]))
    frame = page.frame_locator("#portal")
    frame.get_by_role("heading", name="Balance & credits").wait_for()  # the pages come in the portal's order
    frame.locator(".st-key-embed-nav").get_by_text("Buy credits").click()
    frame.get_by_role("heading", name="Buy credits").wait_for()
    frame.locator('[data-testid="stRadio"]').first.get_by_text("$25.00", exact=True).click()
    frame.get_by_text("A new card (secure checkout)", exact=True).click()
    frame.get_by_role("button", name=re.compile(r"Continue to payment · \$25\.00")).click()
    checkout_link = frame.get_by_role("link", name=re.compile("Open the secure checkout"))
    checkout_link.wait_for()
    assert checkout_link.get_attribute("target") == "_blank"  # a checkout is never framed

    with page.context.expect_page() as opened:
        checkout_link.click()
    checkout = opened.value
    checkout.wait_for_load_state()
    assert "SANDBOX" in checkout.content()
    checkout.get_by_role("button", name=re.compile("4242 4242 4242 4242")).click()
    checkout.wait_for_url(re.compile(r".*/buy_credits\?.*"))
    checkout.close()
    # The frame saw the payment settle by itself.
    frame.get_by_text(re.compile("Payment received: 25.00 credits")).first.wait_for()
    path = embed.portal.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT created_by FROM top_ups WHERE amount_cents = 2500").fetchall()
        audit = db.execute(
            "SELECT actor, action FROM audit_log WHERE action = 'portal.credits.buy'"
        ).fetchall()
    author = f"portal:{minted['id']}:ana@customer.example"
    assert rows == [(author,)]
    assert audit == [(author, "portal.credits.buy")]
