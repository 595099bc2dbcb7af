"""Sign-in: demo mode (and its refusal in production), OIDC mode, users without accounts, support role."""

from __future__ import annotations

import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from tests.app.harness import MAIN, TIMEOUT, page_text, signed_in
from tests.app.seed import ALICE, BOB, NOBODY, VIVIAN

AUTH_SECRETS = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "test-cookie-secret",
    "client_id": "meterline",
    "client_secret": "secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


def signed_out() -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": False}
    return at


def test_demo_mode_says_so_and_lets_you_pick_a_seeded_user(portal_url: str) -> None:
    at = signed_out().run()
    assert not at.exception
    assert any("Demo mode" in w.value for w in at.warning)
    picker = at.radio(key="signin.demo_pick")
    # Only users with memberships are offered (no support agents configured here).
    assert picker.options == [f"**`{ALICE}`**", f"**`{BOB}`**", f"**`{VIVIAN}`**"]
    picker.set_value(BOB)
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Overview"
    assert "Borealis Bank" in page_text(at)
    assert "Demo mode" in page_text(at)  # the sidebar keeps saying so
    # The browser is asked to keep the session (a signed token in an HttpOnly cookie).
    assert any("/session/demo" in html.proto.body for html in at.get("html"))

    at.sidebar.button[0].click().run()  # sign out
    assert not at.exception
    assert at.title[0].value == "Meterline"
    assert at.radio(key="signin.demo_pick") is not None
    assert any("/session/end" in html.proto.body for html in at.get("html"))


def test_demo_sign_in_refused_in_production(portal_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERLINE_ENV", "production")
    at = signed_out().run()
    assert not at.exception
    assert any("demo sign-in is turned off" in e.value for e in at.error)
    assert len(at.selectbox) == 0
    assert len(at.button) == 0
    assert ALICE not in page_text(at)


def test_demo_state_ignored_in_production(portal_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERLINE_ENV", "production")
    at = signed_out()
    at.session_state["auth.demo_email"] = ALICE  # as if set before the switch to production
    at.run()
    assert not at.exception
    assert "Acme" not in page_text(at)


def test_oidc_mode_shows_the_login_button(portal_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(streamlit, "login", lambda *args: calls.append(args))
    at = signed_out()
    at.secrets["auth"] = AUTH_SECRETS
    at.run()
    assert not at.exception
    assert not any("Demo mode" in w.value for w in at.warning)
    assert len(at.selectbox) == 0
    at.button[0].click().run()
    assert calls == [()]


def test_oidc_user_sees_their_accounts(portal_url: str) -> None:
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.secrets["auth"] = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": ALICE.upper(), "name": "Alice A."}
    at.run()
    assert not at.exception
    text = page_text(at)
    assert "Acme Robotics" in text and "Demo mode" not in text
    assert set(at.selectbox(key="nav.account_pick").options) == {"Acme Robotics", "Globex Labs"}


def test_signed_in_user_without_accounts_is_told_what_to_do(portal_url: str) -> None:
    at = signed_in(NOBODY)
    assert at.title[0].value == "No account yet"
    assert any("invite" in info.value for info in at.info)


@pytest.mark.parametrize("how", ["claim", "allow_list"])
def test_support_role_from_claim_or_allow_list(
    portal_url: str, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "claim":
        at = signed_in(VIVIAN, roles=["support"])
    else:
        monkeypatch.setenv("METERLINE_SUPPORT_EMAILS", f"someone@else.test, {VIVIAN.upper()}")
        at = signed_in(VIVIAN)
    assert "Support role" in page_text(at)


def test_no_support_role_by_default(portal_url: str) -> None:
    assert "Support role" not in page_text(signed_in(VIVIAN, roles=["viewer"]))


def test_support_agent_without_memberships_lands_in_the_console(portal_url: str) -> None:
    at = signed_in("agent@meterline.test", roles=["support"])
    assert at.title[0].value == "Support console"
    [search] = [n for n in at.main.children.values() if getattr(n, "type", "") == "bidi_component"]
    assert search.proto.component_name == "st_keyup"  # the search box, answering as the agent types
    assert '"label": "Find an account"' in search.proto.json


UNVERIFIED_MESSAGE = (
    "Your email address is not verified with your sign-in provider; verify it there, then sign in again."
)


def user_count(url: str, email: str) -> int:
    from sqlalchemy import func, select

    from core.db import make_engine, unit_of_work
    from core.db.models import User

    engine = make_engine(url)
    with unit_of_work(engine) as session:
        count = session.scalar(select(func.count()).select_from(User).where(User.email == email))
    engine.dispose()
    return int(count or 0)


@pytest.mark.parametrize("verified", [False, "false", "FALSE"])
@pytest.mark.parametrize("oidc", [True, False], ids=["oidc", "no_auth_section"])
def test_unverified_email_is_not_signed_in(
    portal_url: str, monkeypatch: pytest.MonkeyPatch, verified: object, oidc: bool
) -> None:
    """An ID token saying email_verified=false maps to no user and no account, only a way out."""
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(streamlit, "logout", lambda *args: calls.append(args))
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    if oidc:
        at.secrets["auth"] = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": ALICE, "name": "Alice A.", "email_verified": verified}
    at.session_state["auth.demo_email"] = ALICE  # a demo pick left over must not let them in either
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [UNVERIFIED_MESSAGE]
    text = page_text(at)
    assert "Acme" not in text and "Globex" not in text and "Usage" not in text
    assert "nav.viewer" not in at.session_state
    with pytest.raises(ValueError):
        at.switch_page("../pages/usage.py")  # no customer page is registered for them

    at.button(key="auth.unverified_sign_out").click().run()
    assert not at.exception
    assert calls == [()]


def test_unverified_email_never_creates_a_user(portal_url: str) -> None:
    newcomer = "new@unverified.test"
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.secrets["auth"] = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": newcomer, "email_verified": False}
    at.run()
    assert not at.exception
    assert any(UNVERIFIED_MESSAGE in e.value for e in at.error)
    assert user_count(portal_url, newcomer) == 0


@pytest.mark.parametrize("claims", [{}, {"email_verified": True}, {"email_verified": "true"}])
def test_verified_or_missing_claim_signs_in_as_before(portal_url: str, claims: dict[str, object]) -> None:
    at = signed_in(ALICE, **claims)
    assert not at.error
    assert "nav.viewer" in at.session_state
    assert "Acme Robotics" in page_text(at)


def test_demo_picker_puts_the_story_first_with_a_line_each_and_offers_support_agents(
    portal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.accounts import add_member, ensure_user
    from core.clock import system_clock
    from core.db import make_engine, unit_of_work

    engine = make_engine(portal_url)
    with unit_of_work(engine, write=True) as session:
        add_member(
            session, account_id="acc_acme", email="maya@startup.example", role="owner", at=system_clock()
        )
        ensure_user(
            session, email="support@meterline.example", at=system_clock(), display_name="Meterline Support"
        )
    engine.dispose()
    monkeypatch.setenv("METERLINE_SUPPORT_EMAILS", "support@meterline.example")
    at = signed_out().run()
    picker = at.radio(key="signin.demo_pick")
    assert picker.options[0] == "**`maya@startup.example`**"  # the story's lead first
    assert picker.options[-1] == "**Meterline Support** · `support@meterline.example`"
    assert picker.value == "maya@startup.example"
    captions = list(picker.proto.captions)
    assert captions[0].startswith("Brightpath AI's owner")
    assert all(captions) and len(captions) == len(picker.options)

    picker.set_value("support@meterline.example")
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Support console"


def test_signing_out_ends_the_session_in_the_other_tabs(portal_url: str) -> None:
    first = signed_out().run()
    first.radio(key="signin.demo_pick").set_value(ALICE)
    first.button[0].click().run()
    assert first.title[0].value == "Overview"
    # Another tab of the same browser: a session opened from the same cookie (same session id).
    second = signed_out()
    for key in ("auth.demo_email", "auth.session_id", "auth.session_until"):
        second.session_state[key] = first.session_state[key]
    second.run()
    assert second.title[0].value == "Overview"

    first.sidebar.button[0].click().run()  # sign out in the first tab
    assert first.title[0].value == "Meterline"
    second.run()  # the other tab's next run (a click, or its live refresh)
    assert not second.exception
    assert second.title[0].value == "Meterline"
    assert "Acme" not in page_text(second)
