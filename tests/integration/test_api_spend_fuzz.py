"""Property-based fuzzing of the caps and alert-rule routes (SQLite and PostgreSQL): over bodies
mixing the documented fields with hostile values (huge and fractional numbers, lone surrogates,
NUL, wrong types, unknown fields), the API never answers 5xx, a refusal names a field, and a
created cap or rule is one the list shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from starlette.testclient import TestClient

from core.api import create_api_app
from core.clock import fixed_clock
from tests.core.metering.catalog_setup import seed_catalog

TOKEN = "spend-fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CAPS = "/api/v1/accounts/acc_a/caps"
RULES = "/api/v1/accounts/acc_a/alert-rules"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
hostile = st.one_of(
    json_values,
    st.sampled_from(["bad-\ud800", "\udfff", "nul\x00", "", " ", "x" * 400, "\u202e", "a\nb", "é"]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["1e999999", "-0", "0.0000000001", "9" * 30, "1" * 400, "NaN", "Infinity", "2.5", "50"]),
)


def _field(options: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(options), hostile)


caps = st.fixed_dictionaries(
    {},
    optional={
        "scope": _field(["account", "project", "meter", "api_key"]),
        "value": _field(["copilot", "input_tokens", None]),
        "period": _field(["day", "week", "month"]),
        "mode": _field(["soft", "hard"]),
        "limit": _field(["500", "0.5", "1000000000"]),
        "extra": hostile,
    },
)
rules = st.fixed_dictionaries(
    {
        "name": _field(["Rule"]),
        "kind": _field(["balance_below", "spend_above", "runway_below", "spend_spike"]),
    },
    optional={
        "scope": _field(["account", "project"]),
        "value": _field(["copilot"]),
        "threshold": _field(["10", "0"]),
        "budget": _field(["100"]),
        "percent": _field([50, 100]),
        "days": _field([7]),
        "factor": _field(["2.5", 3]),
        "channels": st.one_of(
            hostile,
            st.fixed_dictionaries(
                {},
                optional={
                    "in_app": _field([True, False]),
                    "email": _field([["a@b.io"]]),
                    "webhook_id": hostile,
                },
            ),
        ),
        "paused": _field([True, False]),
    },
)


@pytest.fixture
def client(engine: Engine, now: datetime) -> Iterator[TestClient]:
    seed_catalog(engine, now - timedelta(days=60))
    with TestClient(create_api_app(engine, TOKEN, clock=fixed_clock(now))) as test_client:
        yield test_client


def _post(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, content=json.dumps(body).encode(), headers=AUTH)


def _check(client: TestClient, path: str, answer: Any, listed: str) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code == 201:
        ids = [item["id"] for item in client.get(path, headers=AUTH).json()[listed]]
        assert answer.json()["id"] in ids
    else:
        assert answer.status_code in (400, 404, 409, 422), answer.text
        error = answer.json()["error"]
        assert error["code"] and (error["field"] or answer.status_code == 400), error


@FUZZ
@given(body=caps)
def test_cap_bodies_never_reach_a_5xx(client: TestClient, body: dict[str, Any]) -> None:
    answer = _post(client, CAPS, body)
    _check(client, CAPS, answer, "caps")
    if answer.status_code == 201:
        patch = client.patch(f"{CAPS}/{answer.json()['id']}", content=json.dumps(body).encode(), headers=AUTH)
        assert patch.status_code < 500, patch.text
        client.delete(f"{CAPS}/{answer.json()['id']}", headers=AUTH)


@FUZZ
@given(body=rules)
def test_rule_bodies_never_reach_a_5xx(client: TestClient, body: dict[str, Any]) -> None:
    answer = _post(client, RULES, body)
    _check(client, RULES, answer, "alert_rules")
    if answer.status_code == 201:
        patch = client.patch(
            f"{RULES}/{answer.json()['id']}", content=json.dumps(body).encode(), headers=AUTH
        )
        assert patch.status_code < 500, patch.text
        client.delete(f"{RULES}/{answer.json()['id']}", headers=AUTH)
