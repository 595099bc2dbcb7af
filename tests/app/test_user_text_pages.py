"""Text a customer typed shows as text on the pages other people read (AppTest, SQLite and
PostgreSQL): a rule name with a Markdown link and a remote image in another member's notification
centre, the same in a cap's scope on the Limits page, and an API key (a usage dimension) and an
account name with Markdown in the support console's search. What reaches Streamlit's Markdown is
``app.user_text``'s escaped form (tests/e2e/test_user_text_browser.py shows Chromium renders that
as the plain text); the raw Markdown reaches none of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from app.user_text import code, literal
from core.accounts import Actor, add_member, create_account
from core.clock import system_clock
from core.db import unit_of_work
from core.metering import ingest_events
from core.spend.alerts import RuleInput, create_rule
from core.spend.caps import set_cap
from core.spend.runtime import evaluate_now
from tests.app.harness import as_read, open_page, signed_in, walk
from tests.app.seed import ALICE, VIVIAN, event

pytestmark = pytest.mark.usefixtures("portal_url")

PLANTED = "[Claim your credits](https://evil.example/claim) ![](https://evil.example/pixel.png)"
MARKDOWN_TYPES = {
    "markdown",
    "caption",
    "title",
    "header",
    "subheader",
    "success",
    "info",
    "warning",
    "error",
}


def markdown_shown(at: AppTest) -> list[str]:
    """Every string the run handed to Streamlit as Markdown: message bodies, labels, help."""
    found = []
    for root in (at.main, at.sidebar):
        for node in walk(root):
            if getattr(node, "type", None) in MARKDOWN_TYPES and isinstance(
                getattr(node, "value", None), str
            ):
                found.append(node.value)
            for attribute in ("label", "help"):
                value = getattr(node, attribute, None)
                if isinstance(value, str):
                    found.append(value)
    return found


def assert_shown_as_text(at: AppTest, text: str, *, as_code: bool = False) -> None:
    shown = markdown_shown(at)
    escaped = code(text) if as_code else literal(text)
    assert any(escaped in markdown for markdown in shown), shown  # it is there, as text
    planted = [markdown for markdown in shown if text in markdown and not as_code]
    assert planted == [], planted  # and nowhere as Markdown


def test_a_rule_name_with_a_link_and_an_image_shows_as_text_to_another_member() -> None:
    now = system_clock()
    with unit_of_work(get_engine(), write=True) as session:  # Acme's balance ($106) is below $200
        rule = RuleInput(name=PLANTED, kind="balance_below", threshold="200")
        create_rule(session, account_id="acc_acme", rule=rule, actor=Actor.member(ALICE), at=now)
    assert evaluate_now(get_engine(), ["acc_acme"]).fired == 1
    at = open_page(signed_in(VIVIAN), "alerts")  # a viewer of Acme reads the notification centre
    notes = [m for m in markdown_shown(at) if "fired" in as_read(m)]
    assert any(f"Alert '{PLANTED}' fired" in as_read(note) for note in notes), notes
    assert_shown_as_text(at, f"Alert '{PLANTED}' fired")
    open_page(at, "overview")  # "Alert firing: <name>"
    assert_shown_as_text(at, PLANTED)


def test_a_cap_scope_with_markdown_shows_as_text_on_the_limits_page() -> None:
    now = system_clock()
    project = "[docs](https://evil.example/docs)"
    with unit_of_work(get_engine(), write=True) as session:
        ingest_events(
            session,
            [event("u1", "acc_acme", "requests", 200, now - timedelta(minutes=5), project=project)],
            at=now,
        )
        set_cap(
            session,
            account_id="acc_acme",
            scope="project",
            scope_value=project,
            limit="1",
            mode="hard",
            actor=Actor.member(ALICE),
            at=now,
        )
    at = open_page(signed_in(ALICE), "limits")
    assert_shown_as_text(at, f"Project {project}")  # "...: usage went $2.00 past the $1.00 hard cap"


def test_an_api_key_and_an_account_name_with_markdown_show_as_text_in_support_search() -> None:
    now = system_clock()
    api_key = "sk_`x` [reset your key](https://evil.example/reset)"
    name = "Initech ![logo](https://evil.example/logo.png) :red[VERIFIED]"
    with unit_of_work(get_engine(), write=True) as session:
        create_account(session, account_id="acc_initech", name=name, at=now, rate_card_key="standard")
        add_member(session, account_id="acc_initech", email="peter@initech.test", role="owner", at=now)
        ingest_events(
            session,
            [event("i1", "acc_initech", "input_tokens", 1000, now - timedelta(minutes=5), api_key=api_key)],
            at=now,
        )
    at = signed_in("agent@meterline.test", roles=["support"])
    at.session_state["_st_keyup_support_search.query"] = {"value": "sk_`x` [reset"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert_shown_as_text(at, api_key, as_code=True)  # "matched API key: ..."
    assert_shown_as_text(at, name)
