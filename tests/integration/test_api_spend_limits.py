"""Caps and alert rules over the HTTP API (SQLite and PostgreSQL): the server token and a
``spend:write`` key manage them, a ``usage:read`` key only reads, another account's key gets the
404 of an account that does not exist, every bad field is a 422 naming it, every change is
audited with the key or the token, and a retried POST with its Idempotency-Key creates once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from core.accounts import Actor
from core.api import create_api_app
from core.api.openapi import openapi_document
from core.client import MeterlineAPIError, MeterlineClient
from core.clock import fixed_clock
from core.customer_keys import create_customer_key
from core.db import unit_of_work
from core.db.models import AlertRule, AuditLog, SpendCap
from core.spend.alerts import create_webhook
from core.spend.slack_hooks import create_slack_webhook
from tests.core.metering.catalog_setup import event, seed_catalog
from tests.integration.test_openapi import assert_matches

TOKEN = "spend-token"
SERVER = {"Authorization": f"Bearer {TOKEN}"}
CAPS = "/api/v1/accounts/{account_id}/caps"
CAP = CAPS + "/{cap_id}"
RULES = "/api/v1/accounts/{account_id}/alert-rules"
RULE = RULES + "/{rule_id}"
PROJECT_CAP = {"scope": "project", "value": "copilot", "period": "month", "mode": "hard", "limit": "500"}
SPEND_RULE = {"name": "Half the budget", "kind": "spend_above", "budget": "1000", "percent": 50}


@dataclass
class Api:
    client: TestClient
    engine: Engine
    now: datetime

    def key(self, *scopes: str, account_id: str = "acc_a", name: str = "ops robot") -> dict[str, str]:
        with unit_of_work(self.engine, write=True) as session:
            made = create_customer_key(
                session,
                actor=Actor.system("tests"),
                account_id=account_id,
                name=name,
                scopes=scopes,
                at=self.now,
            )
        return {"Authorization": f"Bearer {made.secret}"}

    def audit(self, prefix: str = "spend.") -> list[AuditLog]:
        with unit_of_work(self.engine) as session:
            rows = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        return [row for row in rows if row.action.startswith(prefix)]


@pytest.fixture
def api(engine: Engine, now: datetime) -> Iterator[Api]:
    seed_catalog(engine, now - timedelta(days=60))
    with TestClient(create_api_app(engine, TOKEN, clock=fixed_clock(now))) as client:
        usage = [event("a1", quantity=1_000_000, dimensions={"model": "atlas", "project": "copilot"})]
        assert client.post("/api/v1/events", json={"events": usage}, headers=SERVER).json()["accepted"] == 1
        yield Api(client, engine, now)


def _cap_ids(api: Api, headers: dict[str, str], account_id: str = "acc_a") -> list[int]:
    answer = api.client.get(CAPS.format(account_id=account_id), headers=headers)
    assert answer.status_code == 200, answer.text
    return [cap["id"] for cap in answer.json()["caps"]]


@pytest.mark.parametrize("who", ["server", "key"])
def test_caps_are_created_listed_changed_and_deleted(api: Api, who: str) -> None:
    headers = SERVER if who == "server" else api.key("spend:write")
    path = CAPS.format(account_id="acc_a")

    made = api.client.post(path, json=PROJECT_CAP, headers=headers)
    assert_matches(made, CAPS, "post", status=201)
    cap = made.json()
    assert (cap["scope"], cap["value"], cap["period"], cap["mode"]) == ("project", "copilot", "month", "hard")
    assert (cap["limit"], cap["limit_nanos"]) == ("500.000000000", 500 * 10**9)
    assert made.headers["location"] == f"{path}/{cap['id']}"
    account_cap = api.client.post(
        path, json={"scope": "account", "mode": "soft", "limit": "0.5"}, headers=headers
    )
    assert account_cap.status_code == 201 and account_cap.json()["value"] is None

    listed = api.client.get(path, headers=headers)
    assert_matches(listed, CAPS, "get", status=200)
    body = listed.json()
    assert body["as_of"] == "2026-11-20T12:00:00Z"
    project = next(c for c in body["caps"] if c["id"] == cap["id"])
    # 1,000,000 input tokens at 2.00 per million on Nov 20: 2 credits spent on project copilot.
    assert (project["spent"], project["remaining"]) == ("2.000000000", "498.000000000")
    assert project["resets_at"] == "2026-12-01T00:00:00Z"

    changed = api.client.patch(
        f"{path}/{cap['id']}", json={"limit": "750.25", "mode": "soft"}, headers=headers
    )
    assert_matches(changed, CAP, "patch", status=200)
    assert (changed.json()["limit"], changed.json()["mode"]) == ("750.250000000", "soft")
    weekly = api.client.patch(f"{path}/{cap['id']}", json={"period": "week"}, headers=headers)
    assert weekly.status_code == 200 and weekly.json()["period"] == "week"

    gone = api.client.delete(f"{path}/{cap['id']}", headers=headers)
    assert gone.status_code == 204 and gone.content == b""
    assert _cap_ids(api, headers) == [account_cap.json()["id"]]
    again = api.client.delete(f"{path}/{cap['id']}", headers=headers)
    assert again.status_code == 404 and again.json()["error"]["field"] == "cap_id"
    with unit_of_work(api.engine) as session:  # a deleted cap keeps its row (and history)
        row = session.get(SpendCap, cap["id"])
        assert row is not None and row.deleted_at is not None


def test_a_second_cap_on_the_same_scope_and_period_is_a_conflict_naming_the_first(api: Api) -> None:
    path = CAPS.format(account_id="acc_a")
    first = api.client.post(path, json=PROJECT_CAP, headers=SERVER).json()
    second = api.client.post(path, json={**PROJECT_CAP, "limit": "20"}, headers=SERVER)
    assert_matches(second, CAPS, "post", status=409)
    error = second.json()["error"]
    assert error["code"] == "cap_exists" and f"cap {first['id']}" in error["message"]
    daily = api.client.post(path, json={**PROJECT_CAP, "period": "day"}, headers=SERVER)
    assert daily.status_code == 201  # another period of the same scope is another cap
    moved = api.client.patch(f"{path}/{daily.json()['id']}", json={"period": "month"}, headers=SERVER)
    assert moved.status_code == 409 and f"cap {first['id']}" in moved.json()["error"]["message"]


@pytest.mark.parametrize("who", ["server", "key"])
def test_alert_rules_are_created_listed_changed_paused_and_deleted(api: Api, who: str) -> None:
    headers = SERVER if who == "server" else api.key("spend:write")
    path = RULES.format(account_id="acc_a")
    with unit_of_work(api.engine, write=True) as session:
        hook = create_webhook(
            session,
            account_id="acc_a",
            url="https://hooks.example.com/x",
            actor=Actor.system("t"),
            at=api.now,
        ).webhook

    made = api.client.post(
        path,
        json={
            **SPEND_RULE,
            "scope": "project",
            "value": "copilot",
            "channels": {"in_app": False, "email": ["Ops@Example.com"], "webhook_id": hook.webhook_id},
        },
        headers=headers,
    )
    assert_matches(made, RULES, "post", status=201)
    rule = made.json()
    assert (rule["budget"], rule["budget_nanos"], rule["percent"], rule["threshold"]) == (
        "1000.000000000",
        1000 * 10**9,
        50,
        None,
    )
    assert rule["channels"] == {
        "in_app": False,
        "email": ["ops@example.com"],
        "webhook_id": hook.webhook_id,
        "slack_webhook_id": None,
    }
    assert (rule["paused"], rule["state"], rule["value"]) == (False, "ok", "copilot")
    spike = api.client.post(
        path, json={"name": "Spike", "kind": "spend_spike", "factor": "2.5", "paused": True}, headers=headers
    )
    assert spike.status_code == 201, spike.text
    assert (spike.json()["factor"], spike.json()["paused"], spike.json()["channels"]["in_app"]) == (
        "2.5",
        True,
        True,
    )

    listed = api.client.get(path, headers=headers)
    assert_matches(listed, RULES, "get", status=200)
    assert [r["id"] for r in listed.json()["alert_rules"]] == [rule["id"], spike.json()["id"]]

    # An amount replaces the budget and percentage; the rest stays.
    changed = api.client.patch(
        f"{path}/{rule['id']}", json={"threshold": "300", "paused": True}, headers=headers
    )
    assert_matches(changed, RULE, "patch", status=200)
    after = changed.json()
    assert (after["threshold"], after["budget"], after["percent"], after["paused"]) == (
        "300.000000000",
        None,
        None,
        True,
    )
    assert after["channels"] == rule["channels"] and after["value"] == "copilot"
    whole = api.client.patch(
        f"{path}/{rule['id']}", json={"scope": "account", "paused": False}, headers=headers
    )
    assert whole.status_code == 200 and (whole.json()["value"], whole.json()["paused"]) == (None, False)

    assert api.client.delete(f"{path}/{rule['id']}", headers=headers).status_code == 204
    assert [r["id"] for r in api.client.get(path, headers=headers).json()["alert_rules"]] == [
        spike.json()["id"]
    ]
    with unit_of_work(api.engine) as session:
        row = session.get(AlertRule, rule["id"])
        assert row is not None and row.deleted_at is not None


def test_a_usage_read_key_reads_and_is_refused_every_write(api: Api) -> None:
    api.client.post(CAPS.format(account_id="acc_a"), json=PROJECT_CAP, headers=SERVER)
    rule = api.client.post(RULES.format(account_id="acc_a"), json=SPEND_RULE, headers=SERVER).json()
    reader = api.key("usage:read")
    caps = api.client.get(CAPS.format(account_id="acc_a"), headers=reader)
    assert caps.status_code == 200 and len(caps.json()["caps"]) == 1
    assert api.client.get(RULES.format(account_id="acc_a"), headers=reader).status_code == 200
    cap_id = caps.json()["caps"][0]["id"]

    writes = [
        ("post", CAPS.format(account_id="acc_a"), {**PROJECT_CAP, "value": "other"}),
        ("patch", CAP.format(account_id="acc_a", cap_id=cap_id), {"limit": "1"}),
        ("delete", CAP.format(account_id="acc_a", cap_id=cap_id), None),
        ("post", RULES.format(account_id="acc_a"), SPEND_RULE),
        ("patch", RULE.format(account_id="acc_a", rule_id=rule["id"]), {"paused": True}),
        ("delete", RULE.format(account_id="acc_a", rule_id=rule["id"]), None),
    ]
    for method, path, body in writes:
        answer = api.client.request(method.upper(), path, json=body, headers=reader)
        assert answer.status_code == 403, (method, path, answer.text)
        error = answer.json()["error"]
        assert (error["code"], error["field"]) == ("forbidden", "scope")
        assert "spend:write" in error["message"]
    assert_matches(
        api.client.post(CAPS.format(account_id="acc_a"), json=PROJECT_CAP, headers=reader),
        CAPS,
        "post",
        status=403,
    )
    balance_only = api.key("balance:read")
    refused = api.client.get(CAPS.format(account_id="acc_a"), headers=balance_only)
    assert refused.status_code == 403 and "usage:read or spend:write" in refused.json()["error"]["message"]
    assert len(api.audit()) == 2  # the server's two creates; nothing from the refused key


def test_another_accounts_key_gets_the_answer_of_an_account_that_does_not_exist(api: Api) -> None:
    cap = api.client.post(CAPS.format(account_id="acc_a"), json=PROJECT_CAP, headers=SERVER).json()
    other = api.key("spend:write", "usage:read", account_id="acc_b")
    for account in ("acc_a", "acc_ghost"):
        for method, path, body in [
            ("GET", CAPS.format(account_id=account), None),
            ("POST", CAPS.format(account_id=account), PROJECT_CAP),
            ("PATCH", CAP.format(account_id=account, cap_id=cap["id"]), {"limit": "1"}),
            ("DELETE", CAP.format(account_id=account, cap_id=cap["id"]), None),
            ("GET", RULES.format(account_id=account), None),
            ("POST", RULES.format(account_id=account), SPEND_RULE),
        ]:
            answer = api.client.request(method, path, json=body, headers=other)
            assert answer.status_code == 404, (method, path, answer.text)
            error = answer.json()["error"]
            assert error["field"] == "account_id"
            assert error["message"].replace(account, "X") == "account 'X' does not exist"
    assert _cap_ids(api, SERVER) == [cap["id"]]
    ghost = api.client.get(CAPS.format(account_id="acc_ghost"), headers=SERVER)
    assert_matches(ghost, CAPS, "get", status=404)
    # Its own account's cap ids only: acc_a's cap does not exist for acc_b.
    foreign = api.client.patch(
        CAP.format(account_id="acc_b", cap_id=cap["id"]), json={"limit": "1"}, headers=other
    )
    assert foreign.status_code == 404 and foreign.json()["error"]["field"] == "cap_id"


def test_every_change_is_audited_with_the_key_and_before_and_after(api: Api) -> None:
    key = api.key("spend:write", name="terraform")
    path = CAPS.format(account_id="acc_a")
    cap = api.client.post(path, json=PROJECT_CAP, headers=key).json()
    api.client.patch(f"{path}/{cap['id']}", json={"limit": "600"}, headers=key)
    api.client.delete(f"{path}/{cap['id']}", headers=SERVER)
    rule = api.client.post(RULES.format(account_id="acc_a"), json=SPEND_RULE, headers=key).json()
    api.client.patch(RULE.format(account_id="acc_a", rule_id=rule["id"]), json={"percent": 80}, headers=key)
    api.client.delete(RULE.format(account_id="acc_a", rule_id=rule["id"]), headers=key)

    entries = api.audit()
    assert [e.action for e in entries] == [
        "spend.caps.create",
        "spend.caps.update",
        "spend.caps.delete",
        "spend.alert_rules.create",
        "spend.alert_rules.update",
        "spend.alert_rules.delete",
    ]
    assert all(e.account_id == "acc_a" for e in entries)
    create, update, delete = entries[:3]
    assert create.actor.startswith("api_key:") and create.actor == cap["created_by"]
    via = create.details["via"]["customer_key"]
    assert (
        via["name"] == "terraform" and via["prefix"].startswith("ml_live_") and isinstance(via["key_id"], int)
    )
    assert create.details["before"] is None and create.details["after"] == cap
    assert create.details["target"] == f"spend_cap:{cap['id']}"
    assert (update.details["before"]["limit"], update.details["after"]["limit"]) == (
        "500.000000000",
        "600.000000000",
    )
    assert (delete.actor, delete.details["via"]) == ("api", {"server_token": True})
    assert delete.details["before"]["limit"] == "600.000000000" and delete.details["after"] is None
    rule_update = entries[4]
    assert (rule_update.details["before"]["percent"], rule_update.details["after"]["percent"]) == (50, 80)
    assert "80%" in rule_update.reason


def test_a_retried_post_with_the_same_idempotency_key_creates_once(api: Api) -> None:
    key = api.key("spend:write")
    path = CAPS.format(account_id="acc_a")
    once = {**key, "Idempotency-Key": "3b0c7f4e-cap"}
    first = api.client.post(path, json=PROJECT_CAP, headers=once)
    retry = api.client.post(path, json=PROJECT_CAP, headers=once)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _cap_ids(api, key) == [first.json()["id"]]
    reused = api.client.post(path, json={**PROJECT_CAP, "limit": "9"}, headers=once)
    assert_matches(reused, CAPS, "post", status=409)
    assert reused.json()["error"] == {
        "code": "idempotency_key_reused",
        "message": reused.json()["error"]["message"],
        "field": "Idempotency-Key",
    }
    # Without a key, a retry is refused as a second cap on the same scope: still one cap.
    assert api.client.post(path, json={**PROJECT_CAP, "period": "day"}, headers=key).status_code == 201
    assert api.client.post(path, json={**PROJECT_CAP, "period": "day"}, headers=key).status_code == 409
    assert len(_cap_ids(api, key)) == 2

    rules = RULES.format(account_id="acc_a")
    rule_once = {**SERVER, "Idempotency-Key": "rule-1"}
    made = api.client.post(rules, json=SPEND_RULE, headers=rule_once)
    again = api.client.post(rules, json=SPEND_RULE, headers=rule_once)
    assert made.status_code == again.status_code == 201 and made.json() == again.json()
    assert len(api.client.get(rules, headers=SERVER).json()["alert_rules"]) == 1
    assert len(api.audit("spend.alert_rules.create")) == 1
    bad = api.client.post(rules, json=SPEND_RULE, headers={**SERVER, "Idempotency-Key": "x" * 256})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "Idempotency-Key"


BAD_CAPS: list[tuple[dict[str, Any], str, str]] = [
    ({k: v for k, v in PROJECT_CAP.items() if k != "scope"}, "scope", "required"),
    ({**PROJECT_CAP, "scope": "galaxy"}, "scope", "unknown_scope"),
    ({**PROJECT_CAP, "scope": 7}, "scope", "not_a_string"),
    ({**PROJECT_CAP, "value": None}, "value", "required"),
    ({**PROJECT_CAP, "value": "x" * 400}, "value", "too_long"),
    ({**PROJECT_CAP, "value": "a\nb"}, "value", "not_single_line"),
    ({**PROJECT_CAP, "scope": "meter", "value": "no_such_meter"}, "value", "unknown_meter"),
    ({"scope": "account", "value": "acc_a", "mode": "hard", "limit": "5"}, "value", "not_allowed"),
    ({**PROJECT_CAP, "period": "year"}, "period", "unknown_period"),
    ({**PROJECT_CAP, "mode": "strict"}, "mode", "unknown_mode"),
    ({**PROJECT_CAP, "mode": True}, "mode", "not_a_string"),
    ({k: v for k, v in PROJECT_CAP.items() if k != "limit"}, "limit", "required"),
    ({**PROJECT_CAP, "limit": 500}, "limit", "not_a_string"),
    ({**PROJECT_CAP, "limit": "five"}, "limit", "not_a_number"),
    ({**PROJECT_CAP, "limit": "1e9"}, "limit", "not_a_number"),
    ({**PROJECT_CAP, "limit": "NaN"}, "limit", "not_a_number"),
    ({**PROJECT_CAP, "limit": "0"}, "limit", "must_be_positive"),
    ({**PROJECT_CAP, "limit": "-5"}, "limit", "must_be_positive"),
    ({**PROJECT_CAP, "limit": "9" * 24}, "limit", "too_large"),
    ({**PROJECT_CAP, "limit": "1.0000000001"}, "limit", "not_a_number"),
    ({**PROJECT_CAP, "limit": ["5"]}, "limit", "not_a_string"),
    ({**PROJECT_CAP, "colour": "red"}, "colour", "unknown_field"),
]


@pytest.mark.parametrize(("body", "field", "code"), BAD_CAPS)
def test_a_bad_cap_field_is_a_422_naming_it(api: Api, body: dict[str, Any], field: str, code: str) -> None:
    answer = api.client.post(CAPS.format(account_id="acc_a"), json=body, headers=SERVER)
    assert_matches(answer, CAPS, "post", status=422)
    error = answer.json()["error"]
    assert (error["field"], error["code"]) == (field, code), error
    assert _cap_ids(api, SERVER) == []


BAD_CAP_PATCHES: list[tuple[dict[str, Any], str, str]] = [
    ({}, "limit", "required"),
    ({"limit": 5}, "limit", "not_a_string"),
    ({"limit": "0"}, "limit", "must_be_positive"),
    ({"mode": "loud"}, "mode", "unknown_mode"),
    ({"period": "fortnight"}, "period", "unknown_period"),
    ({"scope": "account"}, "scope", "immutable"),
    ({"value": "web"}, "value", "immutable"),
    ({"state": "ok"}, "state", "unknown_field"),
]


@pytest.mark.parametrize(("body", "field", "code"), BAD_CAP_PATCHES)
def test_a_bad_cap_patch_is_a_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str, code: str
) -> None:
    cap = api.client.post(CAPS.format(account_id="acc_a"), json=PROJECT_CAP, headers=SERVER).json()
    answer = api.client.patch(CAP.format(account_id="acc_a", cap_id=cap["id"]), json=body, headers=SERVER)
    assert_matches(answer, CAP, "patch", status=422)
    assert (answer.json()["error"]["field"], answer.json()["error"]["code"]) == (field, code)
    assert (
        api.client.get(CAPS.format(account_id="acc_a"), headers=SERVER).json()["caps"][0]["limit"]
        == cap["limit"]
    )


BAD_RULES: list[tuple[dict[str, Any], str, str]] = [
    ({"kind": "spend_above", "threshold": "5"}, "name", "required"),
    ({**SPEND_RULE, "name": ""}, "name", "required"),
    ({**SPEND_RULE, "name": "a\u2028b"}, "name", "not_single_line"),
    ({**SPEND_RULE, "kind": "vibes"}, "kind", "unknown_kind"),
    ({**SPEND_RULE, "scope": "planet"}, "scope", "unknown_scope"),
    (
        {"name": "b", "kind": "balance_below", "threshold": "5", "scope": "project", "value": "x"},
        "scope",
        "account_only",
    ),
    ({**SPEND_RULE, "scope": "project"}, "value", "required"),
    ({**SPEND_RULE, "value": "copilot"}, "value", "not_allowed"),
    ({"name": "b", "kind": "balance_below"}, "threshold", "required"),
    ({"name": "b", "kind": "balance_below", "threshold": 5}, "threshold", "not_a_string"),
    ({"name": "b", "kind": "balance_below", "threshold": "9" * 24}, "threshold", "too_large"),
    ({**SPEND_RULE, "threshold": "5"}, "threshold", "ambiguous"),
    ({**SPEND_RULE, "budget": "0"}, "budget", "must_be_positive"),
    ({**SPEND_RULE, "percent": "50"}, "percent", "not_an_integer"),
    ({**SPEND_RULE, "percent": 50.5}, "percent", "not_an_integer"),
    ({**SPEND_RULE, "percent": 10**30}, "percent", "out_of_range"),
    ({**SPEND_RULE, "percent": 0}, "percent", "out_of_range"),
    ({"name": "r", "kind": "runway_below", "days": 0}, "days", "out_of_range"),
    ({"name": "r", "kind": "runway_below", "days": True}, "days", "not_an_integer"),
    ({"name": "s", "kind": "spend_spike", "factor": "1"}, "factor", "out_of_range"),
    ({"name": "s", "kind": "spend_spike", "factor": "2.555"}, "factor", "too_precise"),
    ({"name": "s", "kind": "spend_spike", "factor": "lots"}, "factor", "not_a_number"),
    ({**SPEND_RULE, "channels": []}, "channels", "not_an_object"),
    ({**SPEND_RULE, "channels": {"in_app": "yes"}}, "channels.in_app", "not_a_boolean"),
    ({**SPEND_RULE, "channels": {"sms": "+1"}}, "channels.sms", "unknown_field"),
    ({**SPEND_RULE, "channels": {"email": "ops@example.com"}}, "channels.email", "not_a_list"),
    ({**SPEND_RULE, "channels": {"email": ["not an address"]}}, "channels.email", "invalid_email"),
    ({**SPEND_RULE, "channels": {"email": [5]}}, "channels.email", "not_a_string"),
    ({**SPEND_RULE, "channels": {"email": [f"a{i}@x.io" for i in range(11)]}}, "channels.email", "too_many"),
    ({**SPEND_RULE, "channels": {"webhook_id": 999}}, "channels.webhook_id", "unknown_webhook"),
    ({**SPEND_RULE, "channels": {"webhook_id": 2**70}}, "channels.webhook_id", "invalid"),
    ({**SPEND_RULE, "channels": {"in_app": False}}, "channels", "no_channel"),
    ({**SPEND_RULE, "paused": "no"}, "paused", "not_a_boolean"),
    ({**SPEND_RULE, "threshold_nanos": 5}, "threshold_nanos", "unknown_field"),
]


@pytest.mark.parametrize(("body", "field", "code"), BAD_RULES)
def test_a_bad_rule_field_is_a_422_naming_it(api: Api, body: dict[str, Any], field: str, code: str) -> None:
    answer = api.client.post(RULES.format(account_id="acc_a"), json=body, headers=SERVER)
    assert_matches(answer, RULES, "post", status=422)
    error = answer.json()["error"]
    assert (error["field"], error["code"]) == (field, code), error
    assert api.client.get(RULES.format(account_id="acc_a"), headers=SERVER).json()["alert_rules"] == []


BAD_RULE_PATCHES: list[tuple[dict[str, Any], str, str]] = [
    ({}, "name", "required"),
    ({"name": None}, "name", "required"),
    ({"kind": "vibes"}, "kind", "unknown_kind"),
    ({"value": "copilot"}, "value", "not_allowed"),
    ({"scope": "project"}, "value", "required"),
    ({"kind": "runway_below"}, "days", "required"),
    ({"percent": 0}, "percent", "out_of_range"),
    ({"channels": {"in_app": False}}, "channels", "no_channel"),
    ({"state": "firing"}, "state", "unknown_field"),
]


@pytest.mark.parametrize(("body", "field", "code"), BAD_RULE_PATCHES)
def test_a_bad_rule_patch_is_a_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str, code: str
) -> None:
    rule = api.client.post(RULES.format(account_id="acc_a"), json=SPEND_RULE, headers=SERVER).json()
    answer = api.client.patch(RULE.format(account_id="acc_a", rule_id=rule["id"]), json=body, headers=SERVER)
    assert_matches(answer, RULE, "patch", status=422)
    assert (answer.json()["error"]["field"], answer.json()["error"]["code"]) == (field, code)
    assert api.client.get(RULES.format(account_id="acc_a"), headers=SERVER).json()["alert_rules"] == [rule]
    assert len(api.audit("spend.alert_rules.update")) == 0


HOSTILE: list[tuple[bytes, int]] = [
    (b"", 400),
    (b"{", 400),
    (b"[1, 2]", 422),
    (b'{"scope": "project", "value": "\\ud800", "mode": "hard", "limit": "5"}', 422),
    (b'{"scope": "\\u0000", "mode": "hard", "limit": "5"}', 422),
    (b'{"scope": "account", "mode": "hard", "limit": "1' + b"0" * 5000 + b'"}', 422),
    (b'{"scope": "account", "mode": "hard", "limit": 1e999999}', 422),
    (b'{"scope": "account", "mode": "hard", "limit": ' + b"9" * 5000 + b"}", 422),
    (b'{"a": ' * 2000 + b"1" + b"}" * 2000, 400),
    (b'{"scope": "account", "pad": "' + b"x" * 20_000 + b'"}', 413),
    (b"\xff\xfe", 400),
]


@pytest.mark.parametrize(("body", "status"), HOSTILE)
def test_hostile_bodies_never_reach_a_5xx(api: Api, body: bytes, status: int) -> None:
    for path in (CAPS.format(account_id="acc_a"), RULES.format(account_id="acc_a")):
        answer = api.client.post(path, content=body, headers={**SERVER, "Content-Type": "application/json"})
        assert answer.status_code == status, (path, answer.text)
        assert answer.json()["error"]["code"]


@pytest.mark.parametrize("cap_id", ["abc", "0", "-1", "99999999999999999999", "2147483648", "%ED%A0%80"])
def test_an_id_that_cannot_be_ours_is_a_404(api: Api, cap_id: str) -> None:
    answer = api.client.patch(f"/api/v1/accounts/acc_a/caps/{cap_id}", json={"limit": "1"}, headers=SERVER)
    assert answer.status_code == 404 and answer.json()["error"]["field"] == "cap_id"
    rule = api.client.delete(f"/api/v1/accounts/acc_a/alert-rules/{cap_id}", headers=SERVER)
    assert rule.status_code == 404 and rule.json()["error"]["field"] == "rule_id"


def test_a_hostile_account_id_is_a_404(api: Api) -> None:
    for account in ("%ED%A0%80", "a" * 300, "%00"):
        answer = api.client.get(f"/api/v1/accounts/{account}/caps", headers=SERVER)
        assert answer.status_code == 404, answer.text
        posted = api.client.post(f"/api/v1/accounts/{account}/alert-rules", json=SPEND_RULE, headers=SERVER)
        assert posted.status_code == 404, posted.text


def test_the_openapi_document_describes_the_routes() -> None:
    paths = openapi_document()["paths"]
    assert set(paths[CAPS]) == {"get", "post"} and set(paths[CAP]) == {"patch", "delete"}
    assert set(paths[RULES]) == {"get", "post"} and set(paths[RULE]) == {"patch", "delete"}
    assert paths[CAPS]["post"]["security"] == [{"bearerAuth": []}, {"customerKey": []}]
    assert any(p["name"] == "Idempotency-Key" for p in paths[CAPS]["post"]["parameters"])


def test_the_python_client_manages_caps_and_rules_and_a_lost_answer_creates_once(api: Api) -> None:
    lost = {"n": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        answer = api.client.request(
            request.method,
            request.url.raw_path.decode(),
            content=request.content,
            headers=dict(request.headers),
        )
        if request.method == "POST" and lost["n"] == 0:  # the first create commits, its answer is lost
            lost["n"] += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    transport = httpx.MockTransport(handle)
    with MeterlineClient("http://testserver", TOKEN, transport=transport, backoff_s=0) as client:
        cap = client.create_cap("acc_a", scope="project", value="copilot", mode="hard", limit=Decimal("500"))
        assert [c["id"] for c in client.list_caps("acc_a")["caps"]] == [cap["id"]]
        assert client.update_cap("acc_a", cap["id"], limit="600", period="week")["period"] == "week"
        with pytest.raises(MeterlineAPIError) as twice:
            client.create_cap(
                "acc_a", scope="project", value="copilot", mode="hard", limit="1", period="week"
            )
        assert (twice.value.status, twice.value.code) == (409, "cap_exists")
        client.delete_cap("acc_a", cap["id"])
        assert client.list_caps("acc_a")["caps"] == []

        rule = client.create_alert_rule("acc_a", name="Low", kind="balance_below", threshold=Decimal("10"))
        assert rule["threshold"] == "10.000000000"
        assert client.update_alert_rule("acc_a", rule["id"], paused=True)["paused"] is True
        assert [r["id"] for r in client.list_alert_rules("acc_a")] == [rule["id"]]
        client.delete_alert_rule("acc_a", rule["id"])
        assert client.list_alert_rules("acc_a") == []
        with pytest.raises(TypeError):
            client.create_cap("acc_a", scope="account", mode="soft", limit=0.1)  # type: ignore[arg-type]
    assert len(api.audit("spend.caps.create")) == 1


def test_a_rule_posts_to_a_slack_channel_and_a_patch_keeps_it(api: Api) -> None:
    with unit_of_work(api.engine, write=True) as session:
        made = create_slack_webhook(
            session,
            account_id="acc_a",
            label="#ops",
            url="https://hooks.slack.com/services/T0000/B0000/secret0001",
            actor=Actor.system("tests"),
            at=api.now,
        )
    slack_id = made.slack_webhook.slack_webhook_id
    body = {**SPEND_RULE, "channels": {"in_app": False, "email": [], "slack_webhook_id": slack_id}}
    created = api.client.post(RULES.format(account_id="acc_a"), json=body, headers=SERVER)
    assert created.status_code == 201, created.text
    assert created.json()["channels"]["slack_webhook_id"] == slack_id
    rule_id = created.json()["id"]
    patched = api.client.patch(
        RULE.format(account_id="acc_a", rule_id=rule_id), json={"name": "Renamed"}, headers=SERVER
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Renamed" and patched.json()["channels"]["slack_webhook_id"] == slack_id
    with unit_of_work(api.engine) as session:
        assert session.get(AlertRule, rule_id).slack_webhook_id == slack_id  # type: ignore[union-attr]
    bad = api.client.post(
        RULES.format(account_id="acc_a"),
        json={**SPEND_RULE, "channels": {"slack_webhook_id": "one"}},
        headers=SERVER,
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "channels.slack_webhook_id"
