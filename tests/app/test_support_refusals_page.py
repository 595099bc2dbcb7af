"""Account 360 page: the recent authorize refusals, in the account's time zone, or an empty state."""

from __future__ import annotations

from datetime import timedelta

from app.resources import get_engine
from app.support_ui import OPEN_KEY
from core.clock import system_clock
from core.db import unit_of_work
from core.display import format_datetime
from core.money import credits_to_nanos
from core.spend.refusals import RefusalCount, RefusalKey, add_refusals
from tests.app.harness import open_page, page_text, signed_in

AGENT = "agent@meterline.test"
SECTION = "Recent authorize refusals (last 7 days)"


def _open(account_id: str) -> str:
    at = signed_in(AGENT, roles=["support"])
    at.session_state[OPEN_KEY] = account_id  # as the search's "Open" button leaves it
    open_page(at, "support_account")
    assert at.title[0].value != "Account", "the account did not open"
    return page_text(at)


def test_the_account_page_lists_recent_refusals_in_the_accounts_time_zone(portal_url: str) -> None:
    minute = (system_clock() - timedelta(minutes=3)).replace(second=0, microsecond=0)
    key = RefusalKey("acc_globex", minute, "hard_cap_reached", "copilot", "input_tokens")
    with unit_of_work(get_engine(), write=True) as session:
        add_refusals(session, {key: RefusalCount(17, minute, credits_to_nanos("0.25"), 0)})
    text = _open("acc_globex")
    assert SECTION in text
    assert "Minute (America/New_York)" in text
    local = format_datetime(minute, "America/New_York", zone=False)  # "Dec 7, 2026, 04:48"
    assert f'"{local}",hard cap reached,copilot,input_tokens,17,0.25,0.00' in text
    assert "Last estimated cost (credits)" in text  # the header names the unit, the cells carry numbers
    assert "No refused requests in the last 7 days." not in text


def test_an_account_without_refusals_says_so(portal_url: str) -> None:
    text = _open("acc_borealis")
    assert SECTION in text
    assert "No refused requests in the last 7 days." in text
