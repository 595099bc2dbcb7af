"""The OpenAPI 3.1 document: a valid document, one operation per real route and no other,
served without a token, and real answers (on SQLite and PostgreSQL) that match its schemas."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from core.accounts import Actor
from core.api import api_routes, create_api_app
from core.api.body import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from core.api.openapi import MAX_ACCOUNT_ID_LENGTH, MAX_METER_NAME_LENGTH, openapi_document
from core.api.rate_limit import TokenBucketLimiter
from core.clock import fixed_clock
from core.customer_keys import create_customer_key
from core.db import unit_of_work
from core.ledger import grant_credits
from core.metering.model import Rejection, ValidEvent
from core.metering.settings import (
    DEFAULT_MAX_LATENESS_DAYS,
    MAX_DIMENSION_KEY_LENGTH,
    MAX_DIMENSION_VALUE_LENGTH,
    MAX_DIMENSIONS,
    MAX_EVENT_ID_LENGTH,
    MAX_QUANTITY,
)
from core.metering.validation import MeterInfo, Window, validate_event
from core.money import NANOS_PER_CREDIT
from tests.conftest import NOW
from tests.core.metering.catalog_setup import event, seed_catalog

TOKEN = "openapi-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOC_URI = "urn:meterline:openapi"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _unused_engine() -> Engine:
    raise AssertionError("this test must not touch the database")


def _routes() -> list[Route]:
    """The API's operations: every route but those Starlette marks as outside the schema
    (``include_in_schema=False``: the JSON 404/405 fallback for unknown /api/ paths)."""
    routes = api_routes(_unused_engine, token_provider=lambda: TOKEN)
    assert all(isinstance(route, Route) for route in routes)
    hidden = [route.path for route in routes if isinstance(route, Route) and not route.include_in_schema]
    assert hidden == ["/api/{rest:path}"], hidden  # only the fallback, and it comes last
    assert routes[-1].path == "/api/{rest:path}"  # type: ignore[attr-defined]
    return [route for route in routes if isinstance(route, Route) and route.include_in_schema]


def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def _strict(document: dict[str, Any]) -> dict[str, Any]:
    """A copy where every object schema allows only its documented properties.

    The served document leaves objects open (clients must tolerate new fields); the tests
    close them so that a field the API sends but the document omits is caught.
    """
    strict = copy.deepcopy(document)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(strict["components"]["schemas"])
    return strict


def _validator(document: dict[str, Any], pointer: str) -> Draft202012Validator:
    """A 2020-12 validator for the schema at ``pointer``, its ``#/components/...`` refs resolved."""
    registry: Registry[Any] = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(document))
    return Draft202012Validator(
        {"$ref": f"{DOC_URI}#{pointer}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _response_schema(document: dict[str, Any], path: str, method: str, status: int) -> str:
    """Pointer to the JSON schema the document declares for ``status`` of one operation."""
    response = document["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        base = response["$ref"].removeprefix("#")
    else:
        base = _pointer("paths", path, method, "responses", str(status))
    return base + _pointer("content", "application/json", "schema")


def assert_matches(response: Any, path: str, method: str, *, status: int) -> None:
    """The answer has ``status`` and its body is exactly what the document declares for it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    document = _strict(openapi_document())
    validator = _validator(document, _response_schema(document, path, method, status))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(response.json())]
    assert not errors, errors


@pytest.fixture
def client(engine: Engine, now: datetime) -> Iterator[TestClient]:
    seed_catalog(engine, now - timedelta(days=60))
    with TestClient(create_api_app(engine, TOKEN, clock=fixed_clock(now))) as test_client:
        yield test_client


def test_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(document).validate()
    for name, schema in document["components"]["schemas"].items():
        assert Draft202012Validator.check_schema(schema) is None, name


def test_every_route_is_described_and_every_description_is_a_route() -> None:
    routes = _routes()
    served = {
        (route.path, method.lower())
        for route in routes
        for method in route.methods or ()
        if method != "HEAD"  # Starlette answers HEAD for every GET
    }
    paths = openapi_document()["paths"]
    described = {(path, method) for path, item in paths.items() for method in item if method in HTTP_METHODS}
    assert served == described

    for route in routes:
        documented = {
            p["name"]
            for method in route.methods or ()
            if method != "HEAD"
            for p in paths[route.path][method.lower()].get("parameters", [])
            if p["in"] == "path"
        }
        assert documented == set(route.param_convertors), route.path
        assert set(re.findall(r"{(\w+)}", route.path)) == documented


def test_only_the_document_itself_is_public() -> None:
    document = openapi_document()
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    public = [
        (path, method)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security") == []
    ]
    assert public == [("/api/v1/openapi.json", "get")]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if (path, method) not in public:
                assert "401" in operation["responses"], (path, method)


def test_document_is_served_without_a_token() -> None:
    app = Starlette(routes=_routes())
    with TestClient(app) as test_client:
        response = test_client.get("/api/v1/openapi.json")
        guarded = test_client.get("/api/v1/accounts")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["openapi"].startswith("3.1")
    assert response.json() == openapi_document()
    assert guarded.status_code == 401


def test_limits_come_from_the_settings() -> None:
    schemas = openapi_document()["components"]["schemas"]
    usage = schemas["UsageEvent"]["properties"]
    assert usage["quantity"]["type"] == "integer"
    assert (usage["quantity"]["minimum"], usage["quantity"]["maximum"]) == (0, MAX_QUANTITY)
    assert usage["event_id"]["maxLength"] == MAX_EVENT_ID_LENGTH
    assert usage["dimensions"]["maxProperties"] == MAX_DIMENSIONS
    assert schemas["IngestRequest"]["properties"]["events"]["maxItems"] == MAX_EVENTS_PER_REQUEST
    description = openapi_document()["info"]["description"]
    assert "10^18 units" in description
    assert "10^18 nano-credits = 1,000,000,000 credits" in description
    assert "±4 × 10^18" in description and "`total_too_large`" in description
    assert f"{MAX_BODY_BYTES // (1024 * 1024)} MiB" in description
    rejection = schemas["Rejection"]["description"]
    for code in ("out_of_range", "invalid_character", "not_an_integer", "amount_too_large"):
        assert f"`{code}`" in rejection
    for code in ("batch_amount_too_large", "total_too_large", "conflict", "too_large"):
        assert f"`{code}`" in rejection


def _event_at_every_limit() -> dict[str, Any]:
    return {
        "event_id": "e" * MAX_EVENT_ID_LENGTH,
        "account_id": "a" * MAX_ACCOUNT_ID_LENGTH,
        "meter": "m" * MAX_METER_NAME_LENGTH,
        "quantity": MAX_QUANTITY,
        "timestamp": "2026-11-20T11:00:00+02:00",
        "dimensions": {
            f"k{i:0{MAX_DIMENSION_KEY_LENGTH - 1}d}": "v" * MAX_DIMENSION_VALUE_LENGTH
            for i in range(MAX_DIMENSIONS)
        },
    }


def _longer(field: str) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        raw[field] += "x"

    return change


def _more_dimensions(raw: dict[str, Any]) -> None:
    raw["dimensions"]["extra"] = "x"


def _longer_dimension_name(raw: dict[str, Any]) -> None:
    raw["dimensions"]["k" * (MAX_DIMENSION_KEY_LENGTH + 1)] = raw["dimensions"].popitem()[1]


def _longer_dimension_value(raw: dict[str, Any]) -> None:
    key = next(iter(raw["dimensions"]))
    raw["dimensions"][key] += "x"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_longer("event_id"), "too_long"),
        (_longer("account_id"), "too_long"),
        (_longer("meter"), "too_long"),
        (lambda raw: raw.update(quantity=MAX_QUANTITY + 1), "too_large"),
        (lambda raw: raw.update(quantity=-1), "must_be_non_negative"),
        (lambda raw: raw.update(quantity=2.5), "not_an_integer"),
        (_more_dimensions, "too_many"),
        (_longer_dimension_name, "too_long"),
        (_longer_dimension_value, "too_long"),
    ],
    ids=[
        "event_id",
        "account_id",
        "meter",
        "quantity_max",
        "quantity_min",
        "quantity_fraction",
        "dimensions_count",
        "dimension_name",
        "dimension_value",
    ],
)
def test_schema_limits_are_the_validation_limits(change: Callable[[dict[str, Any]], None], code: str) -> None:
    document = openapi_document()
    schema = _validator(document, _pointer("components", "schemas", "UsageEvent"))

    def check(raw: dict[str, Any]) -> ValidEvent | Rejection:
        meters = {raw["meter"]: MeterInfo(1, raw["meter"], frozenset())}
        window = Window.around(NOW, timedelta(days=DEFAULT_MAX_LATENESS_DAYS))
        return validate_event(0, raw, meters=meters, account_ids={raw["account_id"]}, window=window)

    at_limit = _event_at_every_limit()
    assert schema.is_valid(at_limit)
    assert not isinstance(check(at_limit), Rejection)

    past_limit = copy.deepcopy(at_limit)
    change(past_limit)
    assert not schema.is_valid(past_limit)
    outcome = check(past_limit)
    assert isinstance(outcome, Rejection) and outcome.code == code


def test_ingest_answers_match_the_document(client: TestClient) -> None:
    body = {
        "events": [
            event("e1"),
            event("e2", dimensions={"model": "atlas", "project": "web"}),
            event("neg", quantity=-1),
        ]
    }
    first = client.post("/api/v1/events", json=body, headers=AUTH)
    assert_matches(first, "/api/v1/events", "post", status=200)
    assert isinstance(first.json()["batch_id"], int) and first.json()["rejected"]

    again = {"events": [event("e1"), event("e2", quantity=7), {"event_id": 5}]}
    second = client.post("/api/v1/events", json=again, headers=AUTH)
    assert_matches(second, "/api/v1/events", "post", status=200)
    answer = second.json()
    assert answer["batch_id"] is None and answer["duplicates"] == ["e1"]
    assert [(r["code"], r["event_id"]) for r in answer["rejected"]] == [
        ("conflict", "e2"),
        ("not_a_string", None),
    ]


def test_refused_requests_match_the_document(client: TestClient) -> None:
    path = "/api/v1/events"
    assert_matches(client.post(path, content=b'{"events": [', headers=AUTH), path, "post", status=400)
    assert_matches(client.post(path, json={"events": []}), path, "post", status=401)
    too_large = b'{"events": [], "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    assert_matches(client.post(path, content=too_large, headers=AUTH), path, "post", status=413)
    assert_matches(client.post(path, json={"event": []}, headers=AUTH), path, "post", status=422)


def test_read_answers_match_the_document(client: TestClient, engine: Engine, now: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        grant_credits(
            session,
            account_id="acc_a",
            amount_nanos=5 * NANOS_PER_CREDIT,
            source="purchased",
            at=now,
            expires_at=now + timedelta(days=30),
            cost_basis_cents=500,
        )
    client.post("/api/v1/events", json={"events": [event("e1", quantity=500_000)]}, headers=AUTH)

    balance_path = "/api/v1/accounts/{account_id}/balance"
    balance = client.get("/api/v1/accounts/acc_a/balance", headers=AUTH)
    assert_matches(balance, balance_path, "get", status=200)
    assert len(balance.json()["grants"]) == 2  # one expires, one does not: both shapes checked
    assert_matches(
        client.get("/api/v1/accounts/acc_ghost/balance", headers=AUTH), balance_path, "get", status=404
    )
    assert_matches(client.get("/api/v1/accounts/acc_a/balance"), balance_path, "get", status=401)
    assert_matches(client.get("/api/v1/accounts", headers=AUTH), "/api/v1/accounts", "get", status=200)
    assert_matches(client.get("/api/v1/meters", headers=AUTH), "/api/v1/meters", "get", status=200)


def test_customer_route_answers_match_the_document(client: TestClient, engine: Engine, now: datetime) -> None:
    body = {"events": [event("e1"), event("e2", dimensions={"model": "atlas", "project": "web"})]}
    client.post("/api/v1/events", json=body, headers=AUTH)
    with unit_of_work(engine, write=True) as session:
        secrets = [
            create_customer_key(
                session, actor=Actor.system("t"), account_id="acc_a", name=name, scopes=scopes, at=now
            ).secret
            for name, scopes in (("all", ["usage:read", "balance:read"]), ("usage", ["usage:read"]))
        ]
    key = {"Authorization": f"Bearer {secrets[0]}"}
    usage_only = {"Authorization": f"Bearer {secrets[1]}"}
    day = "start=2026-11-20T00:00:00Z&end=2026-11-21T00:00:00Z"
    for group in ("", "&group_by=model&group_by=project", "&group_by=meter&group_by=api_key"):
        assert_matches(
            client.get(f"/api/v1/usage?{day}{group}", headers=key), "/api/v1/usage", "get", status=200
        )
        assert_matches(
            client.get(f"/api/v1/costs?{day}{group}", headers=key), "/api/v1/costs", "get", status=200
        )
    paged = client.get(f"/api/v1/costs?{day}&bucket=1h&limit=2&account_id=acc_a", headers=AUTH)
    assert_matches(paged, "/api/v1/costs", "get", status=200)
    assert paged.json()["next_page"]
    assert_matches(client.get("/api/v1/balance", headers=key), "/api/v1/balance", "get", status=200)
    assert_matches(client.get("/api/v1/balance", headers=usage_only), "/api/v1/balance", "get", status=403)
    assert_matches(client.get("/api/v1/accounts", headers=key), "/api/v1/accounts", "get", status=403)
    assert_matches(
        client.get(f"/api/v1/usage?{day}&account_id=acc_b", headers=key), "/api/v1/usage", "get", status=404
    )
    assert_matches(
        client.get(f"/api/v1/usage?{day}&bucket=2h", headers=key), "/api/v1/usage", "get", status=422
    )
    assert_matches(
        client.get(f"/api/v1/costs?{day}&format=csv", headers=key), "/api/v1/costs", "get", status=422
    )
    unknown = {"Authorization": "Bearer ml_live_" + "0" * 48}
    assert_matches(client.get(f"/api/v1/costs?{day}", headers=unknown), "/api/v1/costs", "get", status=401)

    limited_app = create_api_app(engine, TOKEN, clock=fixed_clock(now), key_limiter=TokenBucketLimiter(1))
    with TestClient(limited_app) as limited:
        assert limited.get("/api/v1/balance", headers=key).status_code == 200
        too_soon = limited.get("/api/v1/balance", headers=key)
        assert_matches(too_soon, "/api/v1/balance", "get", status=429)
        assert int(too_soon.headers["retry-after"]) == 60


def test_the_examples_match_their_schemas() -> None:
    document = openapi_document()
    strict = _strict(document)
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json", {})
                if "example" in media:
                    pointer = _pointer(
                        "paths", path, method, "responses", status, "content", "application/json", "schema"
                    )
                    errors = [e.message for e in _validator(strict, pointer).iter_errors(media["example"])]
                    assert not errors, (path, errors)
                    checked += 1
    assert checked >= 2
