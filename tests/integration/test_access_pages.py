"""Access through the portal: a member of account A never sees account B, whatever the session holds."""

from __future__ import annotations

import os

import pytest

from app.auth import Viewer
from app.page import PageContext, read
from app.spend_ui import write
from core.accounts import AccountSummary, Actor
from core.clock import system_clock
from core.errors import PermissionDenied
from core.spend.caps import set_overdraft
from core.usage import usage_frame
from tests.app.harness import MAIN, TIMEOUT, open_page, page_text, portal_url, signed_in  # noqa: F401
from tests.app.seed import ALICE, BOB, NOBODY, VIVIAN

pytestmark = pytest.mark.usefixtures("portal_url")

# What only Borealis Bank's pages show: its name, its 777-credit grant, its 27.00 credits of usage, its
# project.
BOREALIS_MARKS = ("Borealis", "777", "750.00", "$27.00", "27.00 credits", "vault", "key_b")


def assert_no_borealis(text: str) -> None:
    leaked = [mark for mark in BOREALIS_MARKS if mark in text]
    assert not leaked, f"account B's data leaked to account A's member: {leaked}"


@pytest.mark.parametrize("page", ["usage", "balance", "prices"])
def test_tampered_account_id_never_shows_another_account(page: str) -> None:
    at = open_page(signed_in(ALICE), page)
    at.session_state["nav.account_id"] = "acc_borealis"
    at.run()
    assert not at.exception
    assert_no_borealis(page_text(at))
    assert "Acme Robotics" in page_text(at)


def test_tampered_viewer_is_replaced_on_the_next_run() -> None:
    at = signed_in(ALICE)
    bob_accounts = (AccountSummary("acc_borealis", "Borealis Bank", "active", "UTC", "owner"),)
    at.session_state["nav.viewer"] = Viewer(BOB, "Bob", False, bob_accounts, "demo")
    at.session_state["nav.account_id"] = "acc_borealis"
    at.run()
    assert not at.exception
    assert_no_borealis(page_text(at))


def test_tampered_demo_email_does_not_override_the_signed_in_user() -> None:
    at = signed_in(ALICE)
    at.session_state["auth.demo_email"] = BOB
    at.run()
    assert not at.exception
    assert_no_borealis(page_text(at))


def test_every_read_checks_access_again() -> None:
    """The page helper asks core for permission on each read, whatever the session says."""
    assert os.environ["DATABASE_URL"]
    tampered = PageContext(email=ALICE, is_support=False, account_id="acc_borealis")
    with pytest.raises(PermissionDenied):
        read(tampered, lambda session, account: usage_frame(session, account.account_id, start=..., end=...))  # type: ignore[arg-type]
    own = PageContext(email=VIVIAN, is_support=False, account_id="acc_acme")
    assert read(own, lambda session, account: account.name) == "Acme Robotics"
    with pytest.raises(PermissionDenied):
        read(own, lambda session, account: account.name, min_role="billing")


def test_a_customer_view_writes_nothing_even_when_the_agent_is_an_owner_of_the_account() -> None:
    """The page hands the core an actor that says "viewing as the customer"; the core refuses it."""
    viewing = PageContext(email=ALICE, is_support=True, account_id="acc_acme", read_only=True)
    assert viewing.actor == Actor.viewing_as_customer(ALICE)
    with pytest.raises(PermissionDenied, match="viewing this account as its customer"):
        write(
            viewing,
            lambda s, actor: set_overdraft(
                s, account_id="acc_acme", overdraft="5", actor=actor, at=system_clock()
            ),
        )
    assert PageContext(email=ALICE, is_support=True, account_id="acc_acme").actor == Actor.member(ALICE)


def test_page_not_registered_for_a_user_without_accounts_raises_on_switch() -> None:
    at = signed_in(NOBODY)
    with pytest.raises(ValueError):
        at.switch_page("../pages/balance.py")


def test_pages_not_registered_before_sign_in_raise_on_switch() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": False}
    at.run()
    with pytest.raises(ValueError):
        at.switch_page("../pages/usage.py")
