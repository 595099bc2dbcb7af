"""The router in a portal session (AppTest, SQLite and PostgreSQL): the session's account and pages
only, another page refused, and the "ended" page once the session is deleted or expires."""

from __future__ import annotations

from datetime import timedelta

from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from core.clock import system_clock
from core.db import unit_of_work
from core.portal_sessions import (
    browser_token,
    create_portal_session,
    end_portal_session,
    parse_request,
    start_portal_session,
)
from core.sessions import session_secret
from tests.app.harness import MAIN, TIMEOUT, page_text


def _started(**fields: object) -> tuple[str, str]:
    """A started portal session on acc_acme: (its id, its browser token)."""
    engine = get_engine()
    secret = session_secret(engine)
    now = system_clock()
    request = parse_request({"account_id": "acc_acme", "role": "viewer", **fields})
    with unit_of_work(engine, write=True) as session:
        minted = create_portal_session(session, request, secret=secret, at=now)
    with unit_of_work(engine, write=True) as session:
        outcome, view = start_portal_session(session, minted.token, secret=secret, at=now)
    assert outcome == "started" and view is not None
    return minted.id, browser_token(secret, view)


def _embedded(token: str) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.query_params["portal"] = token
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_portal_session_shows_its_pages_of_its_account(portal_url: str) -> None:
    _, token = _started(pages=["usage", "limits"], return_url="https://app.example.com/back")
    at = _embedded(token)
    assert [t.value for t in at.title] == ["Usage"]
    text = page_text(at)
    assert "Sign in" not in text and "Borealis" not in text
    assert not at.sidebar.children  # no sidebar in embed mode
    assert at.query_params["portal"] == token  # the address keeps the session

    at.switch_page("../pages/balance.py")  # not one of the session's pages
    at.run()
    assert "This page is not part of this session." in [w.value for w in at.warning]
    assert not at.metric and not at.dataframe  # nothing of the account's (the page stops there)


def test_a_deleted_session_shows_the_ended_page(portal_url: str) -> None:
    session_id, token = _started(return_url="https://app.example.com/back")
    at = _embedded(token)
    assert [t.value for t in at.title] == ["Overview"]
    with unit_of_work(get_engine(), write=True) as session:
        end_portal_session(session, session_id, at=system_clock())
    at.run()
    assert [t.value for t in at.title] == ["This session has ended"]
    assert "This session has ended. Return to app.example.com." in page_text(at)


def test_an_expired_or_forged_token_shows_the_ended_page(portal_url: str) -> None:
    _, token = _started(ttl_seconds=60)
    engine = get_engine()
    from core.db.models import PortalSession

    with unit_of_work(engine, write=True) as session:
        for row in session.query(PortalSession):
            row.expires_at = system_clock() - timedelta(seconds=1)
    assert [t.value for t in _embedded(token).title] == ["This session has ended"]
    assert [t.value for t in _embedded(token[:-2] + "xx").title] == ["This session has ended"]
