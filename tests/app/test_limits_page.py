"""The Limits page (AppTest, SQLite and PostgreSQL): caps in credits on names the account's usage
carries (a name nothing uses is warned about and needs a yes), removing a cap asks first, errors
name the field, and only owners and admins are offered any of it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.resources import get_engine
from app.spend_ui import NOT_USED_YET
from core.clock import system_clock
from core.db import unit_of_work
from core.metering import ingest_events
from core.spend.caps import list_caps
from tests.app.harness import (  # noqa: F401
    as_read,
    fill,
    open_page,
    page_text,
    portal_url,
    shown_table,
    signed_in,
    submit_form,
)
from tests.app.seed import ALICE, VIVIAN, event

pytestmark = pytest.mark.usefixtures("portal_url")


def acme_caps() -> list:
    with unit_of_work(get_engine()) as session:
        return list_caps(session, "acc_acme")


def test_owner_sets_a_hard_cap_and_sees_spend_and_overshoot() -> None:
    at = open_page(signed_in(ALICE), "limits")
    assert "No caps yet" in page_text(at)
    fill(at, "limits.limit", "15")
    submit_form(at, "limits.cap_form")
    (cap,) = acme_caps()
    assert (cap.scope, cap.limit_nanos, cap.mode) == ("account", 15 * 10**9, "hard")
    (row,) = shown_table(at)
    assert (row["Scope"], row["Mode"], row["Cap (credits)"]) == ("the whole account", "Hard", "15.00")
    assert "Hard monthly cap of 15.00 credits set on the whole account" in page_text(at)
    now = system_clock()
    with unit_of_work(get_engine(), write=True) as session:
        ingest_events(
            session, [event("over", "acc_acme", "requests", 2_000, now - timedelta(minutes=5))], at=now
        )
    at.run()
    assert "past the 15.00 credits hard cap" in page_text(at)
    assert "Usage is always recorded, never dropped" in page_text(at)
    assert any(caption.value.startswith("Times in UTC (UTC)") for caption in at.caption)


def test_bad_cap_names_the_field() -> None:
    at = open_page(signed_in(ALICE), "limits")
    fill(at, "limits.limit", "-5")
    submit_form(at, "limits.cap_form")
    assert any(e.value.startswith("Cap (credits): ") for e in at.error), [e.value for e in at.error]
    assert acme_caps() == []


def test_overdraft_is_saved() -> None:
    at = open_page(signed_in(ALICE), "limits")
    fill(at, "limits.overdraft", "25")
    submit_form(at, "limits.overdraft_form")
    assert "an overdraft of 25.00 credits" in page_text(at)


def test_cap_scopes_are_chosen_from_the_names_usage_carries() -> None:
    at = open_page(signed_in(ALICE), "limits")
    at.selectbox(key="limits.scope").set_value("project").run()
    assert at.selectbox(key="limits.project").options == [
        "chatbot",
        "search",
        "Another project, not used yet…",
    ]
    at.selectbox(key="limits.project").set_value("search")
    fill(at, "limits.limit", "40")
    submit_form(at, "limits.cap_form")
    (cap,) = acme_caps()
    assert (cap.scope, cap.scope_value) == ("project", "search")
    assert not at.warning  # a name usage carries: nothing to warn about
    at.selectbox(key="limits.scope").set_value("meter").run()
    assert at.selectbox(key="limits.meter").options == ["Input tokens", "Requests"]  # display names


def test_a_cap_on_a_misspelt_project_is_warned_about_and_needs_a_yes() -> None:
    """ "copilt" was saved once and protected nothing: now it takes the explicit "not used yet"
    option, shows what that means before saving, and a tick."""
    at = open_page(signed_in(ALICE), "limits")
    at.selectbox(key="limits.scope").set_value("project").run()
    at.selectbox(key="limits.project").set_value(NOT_USED_YET).run()
    at.text_input(key="limits.project.new").input("copilt").run()
    (warning,) = [as_read(w.value) for w in at.warning]
    assert warning.startswith(
        "No usage under “copilt” yet: this cap protects nothing until requests carry it."
    )
    fill(at, "limits.limit", "100")
    submit_form(at, "limits.cap_form")
    assert any(as_read(e.value).startswith("Project: no usage under “copilt” yet") for e in at.error)
    assert acme_caps() == []
    at.checkbox(key="limits.confirm_unused").check()
    submit_form(at, "limits.cap_form")
    (cap,) = acme_caps()
    assert (cap.scope, cap.scope_value, cap.limit_nanos) == ("project", "copilt", 100 * 10**9)
    # A typed name that usage does carry is simply that name: no warning, no tick.
    at.selectbox(key="limits.project").set_value(NOT_USED_YET).run()
    at.text_input(key="limits.project.new").input("chatbot").run()
    assert not at.warning and not [c for c in at.checkbox if c.key == "limits.confirm_unused"]


def test_removing_a_cap_asks_first() -> None:
    at = open_page(signed_in(ALICE), "limits")
    fill(at, "limits.limit", "15")
    submit_form(at, "limits.cap_form")
    at.button(key="limits.remove").click().run()
    assert len(acme_caps()) == 1  # nothing removed yet: the page asks
    question = next(as_read(w.value) for w in at.warning if "Remove" in w.value)
    assert question.startswith("Remove the hard cap of 15.00 credits on the whole account? Authorize stops")
    at.button(key="limits.remove_no").click().run()
    assert len(acme_caps()) == 1 and not [w for w in at.warning if "Remove" in w.value]
    at.button(key="limits.remove").click().run()
    at.button(key="limits.remove_yes").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert acme_caps() == []
    assert "Removed the hard cap of 15.00 credits on the whole account." in page_text(at)


def test_a_viewer_is_offered_nothing_that_changes_limits() -> None:
    owner = open_page(signed_in(ALICE), "limits")
    fill(owner, "limits.limit", "15")
    submit_form(owner, "limits.cap_form")
    viewer = open_page(signed_in(VIVIAN), "limits")
    text = page_text(viewer)
    assert "can see caps; owners and admins can change them" in text
    assert [row["Cap (credits)"] for row in shown_table(viewer)] == ["15.00"]
    assert not viewer.get("form_submit_button") and not viewer.expander
    assert not [b.key for b in viewer.button if b.key and b.key.startswith("limits.")]


def test_a_daily_cap_on_an_api_key_shows_as_what_binds_that_key_first() -> None:
    at = open_page(signed_in(ALICE), "limits")
    at.selectbox(key="limits.scope").set_value("api_key").run()
    assert "key_1" in at.selectbox(key="limits.api_key").options
    at.selectbox(key="limits.api_key").set_value("key_1")
    at.selectbox(key="limits.period").set_value("day")
    fill(at, "limits.limit", "5")
    submit_form(at, "limits.cap_form")
    (cap,) = acme_caps()
    assert (cap.scope, cap.scope_value, cap.period, cap.limit_nanos) == ("api_key", "key_1", "day", 5 * 10**9)
    assert "Hard daily cap of 5.00 credits set on API key key_1" in page_text(at)
    (row,) = shown_table(at)
    assert (row["Scope"], row["Period"], row["Spent (credits)"]) == ("API key key_1", "Day", "6.00")
    stack = {line["Requests from"]: line for line in shown_table(at, 1)}
    assert stack["API key key_1"]["Binds first"] == "Daily cap on API key key_1"
    assert stack["API key key_1"]["Room left (credits)"] == "0.00"
    assert stack["Any request"]["Binds first"] == "No hard cap: only credits"
    assert stack["Project chatbot"]["Room left (credits)"] == "—"
    assert "as of" in page_text(at)
    # A monthly cap on the whole account now binds every other key and project.
    at.selectbox(key="limits.scope").set_value("account").run()
    at.selectbox(key="limits.period").set_value("month")
    fill(at, "limits.limit", "100")
    submit_form(at, "limits.cap_form")
    stack = {line["Requests from"]: line for line in shown_table(at, 1)}
    assert stack["Project chatbot"]["Binds first"] == "Monthly cap on the whole account"
    assert stack["API key key_1"]["Binds first"] == "Daily cap on API key key_1"
