"""The API keys page (AppTest, SQLite and PostgreSQL): owners and billing members create a key whose
secret shows once and is stored only as a hash; a repeated submit makes no second key; revoking asks
to confirm; viewers and a support agent's customer view see the list and nothing that writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from core.accounts import add_member
from core.api import create_api_app
from core.clock import system_clock
from core.customer_keys import list_customer_keys, secret_digest
from core.db import make_engine, unit_of_work
from core.db.models import AuditLog, CustomerApiKey
from core.money import credits_to_nanos
from tests.app.harness import open_page, page_text, signed_in, table
from tests.app.seed import ALICE, VIVIAN

pytestmark = pytest.mark.usefixtures("portal_url")

BILLY = "billy@acme.test"
AGENT = "agent@meterline.test"


def submit_create(at: AppTest) -> AppTest:
    (button,) = [b for b in at.button if getattr(b, "form_id", None) == "api_keys.create_form"]
    button.click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def stored() -> list[CustomerApiKey]:
    with unit_of_work(get_engine()) as session:
        rows = list(session.scalars(select(CustomerApiKey).order_by(CustomerApiKey.id)))
        session.expunge_all()
    return rows


def shown_secrets(at: AppTest) -> list[str]:
    return [block.value for block in at.code if str(block.value).startswith("ml_live_")]


def test_owner_creates_a_key_whose_secret_shows_once_and_is_stored_as_a_hash() -> None:
    at = open_page(signed_in(ALICE), "api_keys")
    assert "No API keys yet" in page_text(at)
    at.text_input(key="api_keys.name").input("Finance export")
    at.multiselect(key="api_keys.scopes").set_value(["usage:read"])
    submit_create(at)

    (secret,) = shown_secrets(at)
    assert "shown only once" in page_text(at)
    (row,) = stored()
    assert (row.account_id, row.name, row.scopes, row.created_by) == (
        "acc_acme",
        "Finance export",
        ["usage:read"],
        ALICE,
    )
    assert row.secret_sha256 == secret_digest(secret) and secret.startswith(row.prefix)
    assert secret not in repr([getattr(row, c.key) for c in CustomerApiKey.__table__.columns])
    (listed,) = table(at)
    assert (
        listed["Key"] == f"{row.prefix}…"
        and listed["Status"] == "Active"
        and listed["Name"] == "Finance export"
    )

    at.run()  # any later run: the secret is gone from the page
    assert shown_secrets(at) == []
    assert secret not in page_text(at)


def test_a_repeated_submit_of_the_same_form_makes_one_key_and_shows_its_secret_again() -> None:
    at = open_page(signed_in(ALICE), "api_keys")
    drawn = at.session_state["api_keys.submission"]
    at.text_input(key="api_keys.name").input("CI")
    submit_create(at)
    (first,) = shown_secrets(at)
    # The same submission again (a double click whose first run already committed).
    at.session_state["api_keys.submission"] = drawn
    submit_create(at)
    assert shown_secrets(at) == [first]
    assert len(stored()) == 1
    with unit_of_work(get_engine()) as session:
        actions = list(
            session.scalars(select(AuditLog.action).where(AuditLog.action.startswith("api_keys.")))
        )
    assert actions == ["api_keys.create"]


def test_a_key_without_a_name_names_the_field_and_keeps_the_form() -> None:
    at = open_page(signed_in(ALICE), "api_keys")
    at.multiselect(key="api_keys.scopes").set_value(["balance:read"])
    submit_create(at)
    assert any("field: name" in e.value for e in at.error)
    assert at.multiselect(key="api_keys.scopes").value == ["balance:read"]
    assert stored() == []


def test_a_billing_member_creates_and_revokes_after_confirming() -> None:
    with unit_of_work(get_engine(), write=True) as session:
        add_member(session, account_id="acc_acme", email=BILLY, role="billing", at=system_clock())
    at = open_page(signed_in(BILLY), "api_keys")
    at.text_input(key="api_keys.name").input("Dashboards")
    submit_create(at)
    assert len(shown_secrets(at)) == 1

    at.button(key="api_keys.revoke").click().run()
    assert "Every tool using it gets 401" in page_text(at)
    assert stored()[0].revoked_at is None  # nothing yet: it asks first
    at.button(key="api_keys.revoke_no").click().run()
    assert "Every tool using it gets 401" not in page_text(at)

    at.button(key="api_keys.revoke").click().run()
    at.button(key="api_keys.revoke_yes").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "revoked" in page_text(at)
    (row,) = stored()
    assert row.revoked_at is not None and row.revoked_by == BILLY
    assert table(at)[0]["Status"] == "Revoked"
    assert not [b for b in at.button if b.key == "api_keys.revoke"]  # nothing left to revoke


def _make_key(name: str) -> None:
    at = open_page(signed_in(ALICE), "api_keys")
    at.text_input(key="api_keys.name").input(name)
    submit_create(at)


def test_a_viewer_sees_the_list_read_only() -> None:
    _make_key("Exports")
    at = open_page(signed_in(VIVIAN), "api_keys")
    assert [row["Name"] for row in table(at)] == ["Exports"]
    assert "Your role (viewer) can see the keys" in page_text(at)
    assert not [b for b in at.button if getattr(b, "form_id", None) == "api_keys.create_form"]
    assert not [b for b in at.button if b.key and b.key.startswith("api_keys.revoke")]
    assert shown_secrets(at) == []


def test_a_support_agent_viewing_as_the_customer_sees_no_write_control() -> None:
    _make_key("Exports")
    at = signed_in(AGENT, roles=["support"])
    at.query_params["open"] = "acc_acme"
    open_page(at, "support_account")
    at.button(key="support_account.view_as").click().run()
    open_page(at, "api_keys")
    text = page_text(at)
    assert "Read-only: you are viewing this account as its customer" in text
    assert [row["Name"] for row in table(at)] == ["Exports"]
    labels = [b.label for b in at.button] + [b.label for b in at.get("form_submit_button")]
    assert not [label for label in labels if label not in ("Back to the console", "Sign out")], labels


def test_key_create_and_revoke_show_in_the_support_timeline() -> None:
    _make_key("Exports")
    with unit_of_work(get_engine(), write=True) as session:
        (key,) = list_customer_keys(session, "acc_acme")
    at = open_page(signed_in(ALICE), "api_keys")
    at.button(key="api_keys.revoke").click().run()
    at.button(key="api_keys.revoke_yes").click().run()

    agent = signed_in(AGENT, roles=["support"])
    agent.query_params["open"] = "acc_acme"
    open_page(agent, "support_account")
    timeline = [row for row in table(agent) if row.get("Kind") == "api keys"]
    assert [(row["What"], row["By"]) for row in timeline] == [
        ("Customer API key revoked", ALICE),
        ("Customer API key created", ALICE),
    ]
    assert key.shown in timeline[0]["Detail"] and "Exports" in timeline[0]["Detail"]


def test_a_key_made_on_the_page_reads_usage_through_the_api_until_revoked_on_the_page(
    portal_url: str,
) -> None:
    at = open_page(signed_in(ALICE), "api_keys")
    at.text_input(key="api_keys.name").input("Warehouse sync")
    at.multiselect(key="api_keys.scopes").set_value(["usage:read"])
    submit_create(at)
    (secret,) = shown_secrets(at)
    engine = make_engine(portal_url)
    now = system_clock()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    query = {"start": (day - timedelta(days=3)).isoformat(), "end": (day + timedelta(days=1)).isoformat()}
    try:
        with TestClient(create_api_app(engine, "server-token")) as api:
            usage = api.get("/api/v1/costs", params=query, headers={"Authorization": f"Bearer {secret}"})
            assert usage.status_code == 200, usage.text
            assert usage.json()["account_id"] == "acc_acme"
            total = sum(r["amount_nanos"] for b in usage.json()["buckets"] for r in b["results"])
            assert total == credits_to_nanos("19")  # Acme's seeded usage: $6 + $10 + $3, never Borealis's

            at.button(key="api_keys.revoke").click().run()
            at.button(key="api_keys.revoke_yes").click().run()
            assert not at.exception, [e.value for e in at.exception]
            after = api.get("/api/v1/costs", params=query, headers={"Authorization": f"Bearer {secret}"})
            assert after.status_code == 401 and after.json()["error"]["code"] == "key_revoked"
    finally:
        engine.dispose()
