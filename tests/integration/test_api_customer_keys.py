"""Customer API keys at the HTTP API (SQLite and PostgreSQL): a key reads only its own account, only
the customer routes, only with its scopes; unknown, revoked and expired keys get 401; each key has
its rate (429 with Retry-After); the server token keeps every route and any account."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from core.accounts import Actor, add_member
from core.api import create_api_app
from core.api.rate_limit import TokenBucketLimiter
from core.customer_keys import create_customer_key, list_customer_keys, new_secret, revoke_customer_key
from core.db import unit_of_work
from core.support.once import new_submission_id
from tests.core.metering.catalog_setup import event, seed_catalog

TOKEN = "server-token"
SERVER = {"Authorization": f"Bearer {TOKEN}"}
DAY = "start=2026-11-20T00:00:00Z&end=2026-11-21T00:00:00Z"
OWNER = "owen@acc-a.test"


@dataclass
class Clock:
    at: datetime

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Ticker:
    """The limiter's monotonic clock, stepped by the test."""

    seconds: float = 1_000.0

    def __call__(self) -> float:
        return self.seconds


@dataclass
class Api:
    client: TestClient
    engine: Engine
    clock: Clock
    ticker: Ticker

    def key(self, *scopes: str, account_id: str = "acc_a", expires_on: date | None = None) -> str:
        with unit_of_work(self.engine, write=True) as session:
            made = create_customer_key(
                session,
                actor=Actor.system("tests"),
                account_id=account_id,
                name="test key",
                scopes=scopes or ("usage:read", "balance:read"),
                expires_on=expires_on,
                at=self.clock(),
            )
        assert made.secret is not None
        return made.secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def api(engine: Engine, now: datetime) -> Iterator[Api]:
    seed_catalog(engine, now - timedelta(days=60))
    clock, ticker = Clock(now), Ticker()
    limiter = TokenBucketLimiter(600, monotonic=ticker)
    app = create_api_app(engine, TOKEN, clock=clock, key_limiter=limiter)
    with TestClient(app) as client:
        sent = client.post(
            "/api/v1/events",
            json={"events": [event("a1"), event("b1", account_id="acc_b", quantity=5)]},
            headers=SERVER,
        )
        assert sent.json()["accepted"] == 2
        yield Api(client, engine, clock, ticker)


CUSTOMER_PATHS = [f"/api/v1/usage?{DAY}", f"/api/v1/costs?{DAY}", "/api/v1/balance"]


@pytest.mark.parametrize("path", CUSTOMER_PATHS)
def test_the_server_token_reads_any_account_and_must_name_it(api: Api, path: str) -> None:
    joiner = "&" if "?" in path else "?"
    for account in ("acc_a", "acc_b"):
        answer = api.client.get(f"{path}{joiner}account_id={account}", headers=SERVER)
        assert answer.status_code == 200, answer.text
        assert answer.json()["account_id"] == account
    missing = api.client.get(path, headers=SERVER)
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "account_id"
    ghost = api.client.get(f"{path}{joiner}account_id=acc_ghost", headers=SERVER)
    assert ghost.status_code == 404 and ghost.json()["error"]["field"] == "account_id"


@pytest.mark.parametrize("path", CUSTOMER_PATHS)
def test_a_customer_key_reads_its_own_account_and_no_other(api: Api, path: str) -> None:
    secret = api.key()
    joiner = "&" if "?" in path else "?"
    own = api.client.get(path, headers=bearer(secret))
    named = api.client.get(f"{path}{joiner}account_id=acc_a", headers=bearer(secret))
    assert own.status_code == named.status_code == 200
    assert own.json() == named.json() and own.json()["account_id"] == "acc_a"

    other = api.client.get(f"{path}{joiner}account_id=acc_b", headers=bearer(secret))
    ghost = api.client.get(f"{path}{joiner}account_id=acc_ghost", headers=bearer(secret))
    assert other.status_code == ghost.status_code == 404
    assert other.json()["error"]["field"] == "account_id"
    # Another customer's account is answered exactly as one that does not exist.
    assert other.json()["error"]["message"].replace("acc_b", "X") == ghost.json()["error"]["message"].replace(
        "acc_ghost", "X"
    )


@pytest.mark.parametrize(
    ("scope", "path"),
    [
        ("balance:read", f"/api/v1/usage?{DAY}"),
        ("balance:read", f"/api/v1/costs?{DAY}"),
        ("usage:read", "/api/v1/balance"),
    ],
)
def test_a_missing_scope_is_403_naming_it(api: Api, scope: str, path: str) -> None:
    answer = api.client.get(path, headers=bearer(api.key(scope)))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden" and answer.json()["error"]["field"] == "scope"
    spend_only = api.client.get(path, headers=bearer(api.key("spend:write")))
    assert spend_only.status_code == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/accounts"),
        ("GET", "/api/v1/meters"),
        ("GET", "/api/v1/accounts/acc_a/balance"),
        ("POST", "/api/v1/events"),
        ("POST", "/api/v1/authorize"),
    ],
)
def test_a_customer_key_cannot_call_the_server_routes(api: Api, method: str, path: str) -> None:
    secret = api.key("usage:read", "balance:read", "spend:write")
    answer = api.client.request(
        method, path, headers=bearer(secret), json={"account_id": "acc_a", "events": []}
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["field"] == "authorization"
    assert (
        api.client.request(
            method, path, headers=SERVER, json={"account_id": "acc_a", "events": []}
        ).status_code
        == 200
    )


def test_unknown_revoked_and_expired_keys_are_401(api: Api, now: datetime) -> None:
    path = f"/api/v1/usage?{DAY}"
    unknown = api.client.get(path, headers=bearer(new_secret()))
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "unauthorized"
    assert unknown.headers["www-authenticate"] == "Bearer"
    assert api.client.get(path, headers=bearer("not-a-key")).status_code == 401
    assert api.client.get(path).status_code == 401

    revoked = api.key()
    assert api.client.get(path, headers=bearer(revoked)).status_code == 200
    with unit_of_work(api.engine, write=True) as session:
        (key,) = list_customer_keys(session, "acc_a")
        revoke_customer_key(session, actor=Actor.system("tests"), key_id=key.key_id, at=now)
    answer = api.client.get(path, headers=bearer(revoked))
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "key_revoked"

    expiring = api.key(expires_on=now.date())
    assert api.client.get(path, headers=bearer(expiring)).status_code == 200
    api.clock.at = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
    answer = api.client.get(path, headers=bearer(expiring))
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "key_expired"


def test_each_key_has_its_rate_and_is_told_when_to_retry(api: Api) -> None:
    ticker = Ticker()
    app = create_api_app(
        api.engine, TOKEN, clock=api.clock, key_limiter=TokenBucketLimiter(3, monotonic=ticker)
    )
    path = f"/api/v1/costs?{DAY}"
    busy, other = api.key(), api.key()
    with TestClient(app) as client:
        assert [client.get(path, headers=bearer(busy)).status_code for _ in range(3)] == [200, 200, 200]
        limited = client.get(path, headers=bearer(busy))
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert limited.headers["retry-after"] == "20"  # 3 a minute: a token every 20 s
        assert client.get(path, headers=bearer(other)).status_code == 200  # another key is not slowed
        assert client.get(f"{path}&account_id=acc_a", headers=SERVER).status_code == 200

        ticker.seconds += 19.5
        assert client.get(path, headers=bearer(busy)).headers["retry-after"] == "1"
        ticker.seconds += 0.5
        assert client.get(path, headers=bearer(busy)).status_code == 200


def test_last_used_is_noted_at_most_once_a_minute(api: Api, now: datetime) -> None:
    secret = api.key()
    path = f"/api/v1/usage?{DAY}"

    def last_used() -> datetime | None:
        with unit_of_work(api.engine) as session:
            return list_customer_keys(session, "acc_a")[0].last_used_at

    assert last_used() is None
    api.client.get(path, headers=bearer(secret))
    assert last_used() == now
    api.clock.at = now + timedelta(seconds=59)
    api.client.get(path, headers=bearer(secret))
    assert last_used() == now
    api.clock.at = now + timedelta(seconds=61)
    api.client.get(path, headers=bearer(secret))
    assert last_used() == now + timedelta(seconds=61)


def test_a_key_made_as_the_page_makes_it_reads_usage_until_revoked(api: Api, now: datetime) -> None:
    with unit_of_work(api.engine, write=True) as session:
        add_member(session, account_id="acc_a", email=OWNER, role="owner", at=now)
    secret = new_secret()
    with unit_of_work(api.engine, write=True) as session:  # what pages/api_keys.py calls on submit
        made = create_customer_key(
            session,
            actor=Actor.member(OWNER),
            account_id="acc_a",
            name="Finance",
            scopes=["usage:read"],
            at=now,
            submission_id=new_submission_id(),
            secret=secret,
        )
    usage = api.client.get(f"/api/v1/usage?{DAY}&group_by=model", headers=bearer(secret))
    assert usage.status_code == 200
    (bucket,) = usage.json()["buckets"]
    assert [(r["meter"], r["quantity"], r["amount"]) for r in bucket["results"]] == [
        ("input_tokens", 1_000_000, "2.000000000")
    ]
    with unit_of_work(api.engine, write=True) as session:
        revoke_customer_key(
            session, actor=Actor.member(OWNER), key_id=made.key.key_id, account_id="acc_a", at=now
        )
    after = api.client.get(f"/api/v1/usage?{DAY}", headers=bearer(secret))
    assert after.status_code == 401 and after.json()["error"]["code"] == "key_revoked"


def test_the_focus_export_answers_as_csv_for_the_keys_own_month(api: Api, now: datetime) -> None:
    import csv
    import io
    from decimal import Decimal

    from core.usage.focus import focus_csv

    month = f"{now:%Y-%m}"
    secret = api.key("usage:read")
    answer = api.client.get(f"/api/v1/costs?format=focus&month={month}", headers=bearer(secret))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert f'filename="focus-{month}.csv"' in answer.headers["content-disposition"]
    with unit_of_work(api.engine) as session:
        assert answer.content == focus_csv(session, "acc_a", month)
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    usage = sum(Decimal(r["BilledCost"]) for r in rows if r["ChargeCategory"] == "Usage")
    start = f"{month}-01T00:00:00Z"
    next_month = (now.replace(day=28) + timedelta(days=4)).replace(day=1)
    report = api.client.get(
        f"/api/v1/costs?start={start}&end={next_month:%Y-%m}-01T00:00:00Z&bucket=1d&limit=31",
        headers=bearer(secret),
    ).json()
    total = sum(Decimal(r["amount"]) for b in report["buckets"] for r in b["results"])
    assert usage == total > 0  # the FOCUS file and the Cost API agree to the nano-credit

    other = api.client.get(
        f"/api/v1/costs?format=focus&month={month}&account_id=acc_b", headers=bearer(secret)
    )
    assert other.status_code == 404
    server = api.client.get(f"/api/v1/costs?format=focus&month={month}&account_id=acc_b", headers=SERVER)
    assert server.status_code == 200 and server.text.startswith(answer.text.splitlines()[0])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("format=focus", "month"),
        ("format=focus&month=2026-13", "month"),
        ("format=focus&month=2026-1", "month"),
        ("format=focus&month=2026-11&month=2026-12", "month"),
        ("format=focus&month=2026-11&start=2026-11-01T00:00:00Z", "start"),
        ("format=csv&month=2026-11", "format"),
    ],
)
def test_a_bad_focus_query_is_422_naming_the_field(api: Api, query: str, field: str) -> None:
    answer = api.client.get(f"/api/v1/costs?{query}", headers=bearer(api.key("usage:read")))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field
