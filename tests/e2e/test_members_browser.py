"""Members in a real browser (issue 17): an owner invites a first-time user, who opens the link,
signs in, accepts, and lands in the account with the role offered.

One portal in demo mode (no SMTP_URL: the Members page shows the link to copy) for the module.
Waits are for elements and states, never fixed sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Portal, _seed, free_port, run_portal
from tests.e2e.test_navigation_browser import (
    SIGN_IN_BUTTON,
    heading,
    sidebar_link,
    sign_in_from_here,
    wait_for_session_cookie,
    wait_idle,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

OWNER = "maya@startup.example"  # Brightpath AI's owner in the demo story
NEWCOMER = "nina@startup.example"  # not a user of the portal yet


@pytest.fixture(scope="module")
def members_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    work = tmp_path_factory.mktemp("members_portal")
    database_url = f"sqlite:///{work / 'meterline.db'}"
    _seed(database_url)
    env = {"METERLINE_JOBS": "off", "SMTP_URL": "", "METERLINE_PUBLIC_URL": ""}
    with run_portal(work, database_url, port=free_port(), env=env, what="the members portal") as running:
        yield running


@pytest.fixture
def browsers(browser: Any, members_portal: Portal, request: pytest.FixtureRequest) -> Iterator[list[Any]]:
    """Two fresh browsers (no cookies): the owner's and the newcomer's."""
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    for context in contexts:
        context.set_default_timeout(30_000)
    yield contexts
    report = getattr(request.node, "e2e_report_call", None)
    if report is not None and report.failed:
        for index, context in enumerate(contexts):
            for open_page in context.pages:
                shot = members_portal.log.with_name(f"failure-members-{index}.png")
                try:
                    open_page.screenshot(path=str(shot), full_page=True)
                    print(f"e2e: screenshot of the failure: {shot}")
                except Exception as error:  # the page may be gone; the log still helps
                    print(f"e2e: no screenshot ({error})")
        print(f"e2e: portal log (last lines):\n{members_portal.log.read_text()[-3000:]}")
    for context in contexts:
        context.close()


def test_an_invited_first_time_user_accepts_and_lands_with_the_role(
    browsers: list[Any], members_portal: Portal
) -> None:
    owner_browser, newcomer_browser = browsers
    owner = owner_browser.new_page()
    owner.goto(members_portal.base_url)
    sign_in_from_here(owner, OWNER)
    heading(owner, "Overview")
    wait_for_session_cookie(owner_browser)
    sidebar_link(owner, "Members")
    heading(owner, "Members")
    owner.get_by_label("Email").fill(NEWCOMER)  # the role offered first is viewer
    owner.get_by_role("button", name="Create invitation link").click()
    code = owner.locator('[data-testid="stCode"]').first
    code.wait_for()
    link = code.inner_text().strip()
    assert urlsplit(link).path == "/accept-invitation" and link.startswith(members_portal.base_url), link

    newcomer = newcomer_browser.new_page()
    newcomer.goto(link)
    newcomer.get_by_role("button", name=SIGN_IN_BUTTON).wait_for()
    expect(newcomer.locator('[data-testid="stMain"]')).to_contain_text("to join Brightpath AI as viewer")
    sign_in_from_here(newcomer, NEWCOMER)
    heading(newcomer, "Accept invitation")  # the link's address and token survived sign-in
    expect(newcomer.locator('[data-testid="stMain"]')).to_contain_text("to join Brightpath AI as viewer")
    newcomer.get_by_role("button", name="Accept invitation").click()
    heading(newcomer, "Overview")
    assert "token=" not in newcomer.url  # the used link's token is not left in the address
    expect(newcomer.locator('[data-testid="stSidebar"]')).to_contain_text("your role: viewer")
    wait_for_session_cookie(newcomer_browser)

    sidebar_link(newcomer, "Members")
    heading(newcomer, "Members")
    expect(newcomer.locator('[data-testid="stMain"]')).to_contain_text(
        "Read-only: owners and admins invite people"
    )
    wait_idle(newcomer)
    assert newcomer.get_by_role("button", name="Create invitation link").count() == 0
    assert newcomer.get_by_label("Email").count() == 0

    owner.reload()  # the owner sees the newcomer as a member, the invitation gone
    heading(owner, "Members")
    expect(owner.locator('[data-testid="stMain"]')).to_contain_text(
        "No invitation is waiting to be accepted."
    )
