"""The Members page and the invitation link's page (AppTest, SQLite and PostgreSQL): controls by role,
an invitation made on the page and accepted by a first-time user, and plain refusals of a link."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from core.accounts import add_member
from core.clock import system_clock
from core.db import unit_of_work
from core.db.models import AuditLog, Invitation
from tests.app.harness import open_page, page_text, signed_in, table
from tests.app.seed import ALICE, NOBODY, VIVIAN

ADMIN = "adam@acme.test"
NEWBIE = "newbie@acme.test"  # never signed in: no users row until they do
INVITE_BUTTON = "Create invitation link"
CONTROLS = {INVITE_BUTTON, "Revoke invitation", "Change role", "Remove member"}

pytestmark = pytest.mark.usefixtures("portal_url")


@pytest.fixture(autouse=True)
def _no_smtp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMTP_URL", raising=False)
    monkeypatch.delenv("METERLINE_PUBLIC_URL", raising=False)


def _submit_labels(at: AppTest) -> set[str]:
    return {b.label for b in at.get("form_submit_button")} | {b.label for b in at.button} - {"Sign out"}


def _members_page(email: str) -> AppTest:
    return open_page(signed_in(email), "members")


def _add_admin() -> None:
    with unit_of_work(get_engine(), write=True) as session:
        add_member(session, account_id="acc_acme", email=ADMIN, role="admin", at=system_clock())


def _invite(at: AppTest, email: str, role: str) -> AppTest:
    _widget(at.text_input, "members.invite.", ".email").input(email)
    _widget(at.selectbox, "members.invite.", ".role").set_value(role)
    next(b for b in at.get("form_submit_button") if b.label == INVITE_BUTTON).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _widget(widgets: Any, prefix: str, suffix: str = "") -> Any:
    """The one widget whose key starts with ``prefix`` (the form's name; its submission id follows)."""
    [found] = [w for w in widgets if w.key and w.key.startswith(prefix) and w.key.endswith(suffix)]
    return found


def at_buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def _link(at: AppTest) -> str:
    [block] = at.code
    return str(block.value)


def test_an_owner_sees_members_and_every_control(portal_url: str) -> None:
    at = _members_page(ALICE)
    assert at.title[0].value == "Members"
    rows = table(at)
    assert [(r["Email"], r["Role"]) for r in rows] == [(ALICE, "owner"), (VIVIAN, "viewer")]
    assert rows[1]["Last sign-in"] == "never"
    assert rows[0]["Last sign-in"] != "never"  # this very sign-in
    assert _submit_labels(at) >= CONTROLS - {"Revoke invitation"}  # nothing to revoke yet
    assert _widget(at.selectbox, "members.invite.", ".role").options[0].startswith("Owner")


@pytest.mark.parametrize("email", [VIVIAN])
def test_a_viewer_sees_the_list_and_no_control(portal_url: str, email: str) -> None:
    at = _members_page(email)
    assert [r["Email"] for r in table(at)] == [ALICE, VIVIAN]
    assert "Read-only: owners and admins invite people and change roles; your role is viewer" in page_text(at)
    assert not _submit_labels(at) & CONTROLS
    assert not at.get("form")


def test_an_admin_is_offered_no_owner(portal_url: str) -> None:
    _add_admin()
    at = _members_page(ADMIN)
    texts = page_text(at)
    assert "As an admin you invite, change and remove everyone but owners" in texts
    for select_box in at.selectbox:
        if select_box.key and select_box.key.startswith("members."):
            assert not [o for o in select_box.options if "Owner" in o or ALICE in o], select_box.options


def test_an_invitation_made_on_the_page_is_accepted_by_a_first_time_user(portal_url: str) -> None:
    owner = _members_page(ALICE)
    _invite(owner, NEWBIE, "billing")
    text = page_text(owner)
    assert f"Invitation for {NEWBIE} as billing created." in text
    assert "Email is not configured on this server (SMTP_URL), so send this link yourself" in text
    link = _link(owner)
    parts = urlsplit(link)
    assert parts.path == "/accept-invitation"
    token = parse_qs(parts.query)["token"][0]
    assert [(r["Email"], r["Status"]) for r in table(owner, 1)] == [(NEWBIE, "pending")]

    newbie = signed_in(NEWBIE)
    assert newbie.title[0].value == "No account yet"
    newbie.query_params["token"] = token
    open_page(newbie, "accept_invitation")
    assert f"invited **{NEWBIE}** to join **Acme Robotics** as **billing**" in page_text(newbie)
    newbie.button(key="accept_invitation.accept").click().run()
    assert not newbie.exception, [e.value for e in newbie.exception]
    assert newbie.title[0].value == "Overview"  # landed in the account
    assert "your role: billing" in page_text(newbie)
    open_page(newbie, "members")
    assert not _submit_labels(newbie) & CONTROLS  # billing: read-only

    with unit_of_work(get_engine()) as session:
        actions = list(session.scalars(select(AuditLog.action).where(AuditLog.account_id == "acc_acme")))
    assert actions == ["members.invited", "members.invitation_accepted"]

    again = open_page(signed_in(NEWBIE), "accept_invitation")  # the same link, a second time
    again.query_params["token"] = token
    again.run()
    assert "This invitation was already used" in page_text(again)
    assert not again.button(key="accept_invitation.open").disabled  # offers to open the account


def test_a_link_for_another_email_says_whom_it_is_for(portal_url: str) -> None:
    owner = _members_page(ALICE)
    token = parse_qs(urlsplit(_link(_invite(owner, NEWBIE, "viewer"))).query)["token"][0]
    other = signed_in(NOBODY)
    other.query_params["token"] = token
    open_page(other, "accept_invitation")
    text = page_text(other)
    assert f"This invitation is for {NEWBIE}, and you are signed in as {NOBODY}" in text
    assert not [b for b in at_buttons(other) if b == "Accept invitation"]
    assert "Sign out" in at_buttons(other)


def test_a_link_that_opens_nothing_says_so(portal_url: str) -> None:
    at = signed_in(NOBODY)
    at.query_params["token"] = "not-a-token"
    open_page(at, "accept_invitation")
    assert "This link does not open an invitation" in page_text(at)


def test_revoke_change_and_remove_on_the_page(portal_url: str) -> None:
    at = _members_page(ALICE)
    _invite(at, NEWBIE, "viewer")
    next(b for b in at.get("form_submit_button") if b.label == "Revoke invitation").click().run()
    assert f"The invitation of {NEWBIE} is revoked" in page_text(at)
    with unit_of_work(get_engine()) as session:
        assert session.scalars(select(Invitation.state)).all() == ["revoked"]

    _widget(at.selectbox, "members.role.", ".member").set_value(VIVIAN)
    _widget(at.selectbox, "members.role.", ".role").set_value("admin")
    next(b for b in at.get("form_submit_button") if b.label == "Change role").click().run()
    assert f"{VIVIAN} is now admin (was viewer)" in page_text(at)

    _widget(at.selectbox, "members.remove.").set_value(ALICE)
    next(b for b in at.get("form_submit_button") if b.label == "Remove member").click().run()
    assert "Tick “I confirm removing this member”" in page_text(at)
    _widget(at.checkbox, "members.remove.").check()
    next(b for b in at.get("form_submit_button") if b.label == "Remove member").click().run()
    assert f"The account's last owner ({ALICE}) cannot be removed" in page_text(at)
    assert [r["Role"] for r in table(at)] == ["owner", "admin"]
