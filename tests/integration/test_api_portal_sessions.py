"""Portal sessions (SQLite and PostgreSQL): minted over the API with the server token, started once
through their link, ended by expiry or DELETE; a session reads and writes its own account only,
within its role (capped by the person's membership), and each write it makes is audited."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine, select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from app.framing import FramingMiddleware
from app.portal_routes import portal_start_routes
from core.accounts import Actor, add_member, require_access
from core.api import api_routes
from core.db import unit_of_work
from core.db.models import AuditLog, PortalSession, SpendSettings
from core.errors import PermissionDenied
from core.portal_sessions import PORTAL_COOKIE, PORTAL_PARAM, read_browser_token, token_hash
from core.sessions import session_secret
from core.spend.caps import set_overdraft
from core.spend.notifications import mark_read
from tests.core.metering.catalog_setup import seed_catalog
from tests.integration.test_openapi import assert_matches

TOKEN = "server-token"
SERVER = {"Authorization": f"Bearer {TOKEN}"}
FRAMER = "http://127.0.0.1:9999"
MEMBER = "vera@acc-a.test"


@dataclass
class Clock:
    at: datetime

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Portal:
    client: TestClient
    engine: Engine
    clock: Clock

    def mint(self, **fields: Any) -> dict[str, Any]:
        body = {"account_id": "acc_a", "role": "billing", **fields}
        answer = self.client.post("/api/v1/portal-sessions", json=body, headers=SERVER)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def start(self, url: str) -> Any:
        parts = urlsplit(url)
        return self.client.get(f"{parts.path}?{parts.query}", follow_redirects=False)


@pytest.fixture
def portal(engine: Engine, now: datetime) -> Iterator[Portal]:
    seed_catalog(engine, now - timedelta(days=60))
    with unit_of_work(engine, write=True) as session:
        add_member(session, account_id="acc_a", email=MEMBER, role="viewer", at=now)
    clock = Clock(now)
    routes = [
        *api_routes(lambda: engine, token_provider=lambda: TOKEN, clock=clock),
        *portal_start_routes(lambda: engine, clock=clock),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(FramingMiddleware, origins=(FRAMER,))])
    with TestClient(app, base_url="http://portal.test") as client:
        yield Portal(client, engine, clock)


def _browser_token(response: Any) -> str:
    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return query[PORTAL_PARAM][0]


def test_mint_answers_201_with_a_start_link(portal: Portal, now: datetime) -> None:
    answer = portal.client.post(
        "/api/v1/portal-sessions",
        json={"account_id": "acc_a", "role": "viewer", "email": "Ana@Customer.example", "pages": ["usage"]},
        headers=SERVER,
    )
    assert_matches(answer, "/api/v1/portal-sessions", "post", status=201)
    body = answer.json()
    assert set(body) == {"id", "url", "expires_at"}
    assert body["id"].startswith("ps_")
    assert body["expires_at"] == (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    url = urlsplit(body["url"])
    assert (url.scheme, url.netloc, url.path) == ("http", "portal.test", "/portal/start")
    token = parse_qs(url.query)["token"][0]
    with unit_of_work(portal.engine) as session:
        row = session.get(PortalSession, body["id"])
        assert row is not None
        assert (row.email, row.role, row.pages) == ("ana@customer.example", "viewer", ["usage"])
        assert row.token_hash == token_hash(token)  # only the hash is stored
        assert token not in {str(v) for v in vars(row).values()}


def test_minting_needs_the_server_token(portal: Portal) -> None:
    answer = portal.client.post("/api/v1/portal-sessions", json={"account_id": "acc_a", "role": "viewer"})
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "viewer"}, "account_id"),
        ({"account_id": 5, "role": "viewer"}, "account_id"),
        ({"account_id": "acc_a"}, "role"),
        ({"account_id": "acc_a", "role": "owner"}, "role"),
        ({"account_id": "acc_a", "role": ["viewer"]}, "role"),
        ({"account_id": "acc_a", "role": "viewer", "email": "not an email"}, "email"),
        ({"account_id": "acc_a", "role": "viewer", "pages": []}, "pages"),
        ({"account_id": "acc_a", "role": "viewer", "pages": ["members"]}, "pages"),
        ({"account_id": "acc_a", "role": "viewer", "pages": "usage"}, "pages"),
        ({"account_id": "acc_a", "role": "viewer", "ttl_seconds": 86_401}, "ttl_seconds"),
        ({"account_id": "acc_a", "role": "viewer", "ttl_seconds": 10**40}, "ttl_seconds"),
        ({"account_id": "acc_a", "role": "viewer", "ttl_seconds": 0}, "ttl_seconds"),
        ({"account_id": "acc_a", "role": "viewer", "ttl_seconds": 3600.5}, "ttl_seconds"),
        ({"account_id": "acc_a", "role": "viewer", "ttl_seconds": True}, "ttl_seconds"),
        ({"account_id": "acc_a", "role": "viewer", "return_url": "javascript:alert(1)"}, "return_url"),
        ({"account_id": "acc_a", "role": "viewer", "return_url": "//evil.example"}, "return_url"),
        ({"account_id": "acc_a", "role": "viewer", "return_url": "https://a.example/\nx"}, "return_url"),
        ({"account_id": "acc_a", "role": "viewer", "return_url": "https://a.example:99999/"}, "return_url"),
        ({"account_id": "acc_a", "role": "viewer", "surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(portal: Portal, body: dict[str, Any], field: str) -> None:
    answer = portal.client.post("/api/v1/portal-sessions", json=body, headers=SERVER)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[",
        b"[1]",
        b'"x"',
        b'{"account_id": "\\ud800", "role": "viewer"}',
        b'{"account_id": "' + b"a" * 20000,
    ],
)
def test_hostile_bodies_are_refused_without_a_5xx(portal: Portal, raw: bytes) -> None:
    answer = portal.client.post("/api/v1/portal-sessions", content=raw, headers=SERVER)
    assert 400 <= answer.status_code < 500, answer.text


def test_a_lone_surrogate_is_a_422_naming_the_field(portal: Portal) -> None:
    raw = b'{"account_id": "acc_a", "role": "viewer", "email": "a\\ud800@x.example"}'
    answer = portal.client.post("/api/v1/portal-sessions", content=raw, headers=SERVER)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "email"


def test_an_unknown_account_is_a_404(portal: Portal) -> None:
    answer = portal.client.post(
        "/api/v1/portal-sessions", json={"account_id": "acc_ghost", "role": "viewer"}, headers=SERVER
    )
    assert answer.status_code == 404 and answer.json()["error"]["field"] == "account_id"


def test_the_role_is_at_most_the_members_own(portal: Portal) -> None:
    above = portal.client.post(
        "/api/v1/portal-sessions",
        json={"account_id": "acc_a", "role": "billing", "email": MEMBER.upper()},
        headers=SERVER,
    )
    assert above.status_code == 422
    assert above.json()["error"]["field"] == "role"
    assert above.json()["error"]["code"] == "above_member_role"
    assert portal.mint(role="viewer", email=MEMBER)["id"]
    # Someone who is not a member: the company vouches for them, the role is the one asked for.
    assert portal.mint(role="admin", email="guest@customer.example")["id"]


def test_the_link_starts_one_browser_session_once(portal: Portal) -> None:
    minted = portal.mint(return_url="https://app.example.com/billing")
    first = portal.start(minted["url"])
    browser = _browser_token(first)
    assert urlsplit(first.headers["location"]).path == "/"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{PORTAL_COOKIE}={browser}")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()  # plain HTTP
    assert first.headers["content-security-policy"] == f"frame-ancestors {FRAMER}"
    assert first.headers["cache-control"] == "no-store"
    secret = session_secret(portal.engine)
    assert read_browser_token(secret, browser) == minted["id"]

    again = portal.start(minted["url"])
    assert again.status_code == 409
    assert "already used" in again.text
    assert "set-cookie" not in again.headers
    assert again.headers["content-security-policy"] == f"frame-ancestors {FRAMER}"
    # The browser token resumes the session but never starts one.
    reused = portal.client.get(f"/portal/start?token={browser}", follow_redirects=False)
    assert reused.status_code == 404 and "set-cookie" not in reused.headers


def test_over_https_the_cookie_works_in_a_third_party_frame(portal: Portal) -> None:
    minted = portal.mint()
    parts = urlsplit(minted["url"])
    answer = portal.client.get(
        f"{parts.path}?{parts.query}", headers={"x-forwarded-proto": "https"}, follow_redirects=False
    )
    cookie = answer.headers["set-cookie"].lower()
    assert "samesite=none" in cookie and "secure" in cookie


@pytest.mark.parametrize("token", ["", "x", "a.b", "é", "ps_" + "a" * 300, "\x00"])
def test_a_forged_start_link_is_refused(portal: Portal, token: str) -> None:
    answer = portal.client.get("/portal/start", params={"token": token}, follow_redirects=False)
    assert answer.status_code == 404 and "not valid" in answer.text


def test_an_expired_session_neither_starts_nor_reads(portal: Portal, now: datetime) -> None:
    minted = portal.mint(ttl_seconds=120, return_url="https://app.example.com/back")
    started = portal.mint(ttl_seconds=120)
    browser = _browser_token(portal.start(started["url"]))
    portal.clock.at = now + timedelta(seconds=120)
    late = portal.start(minted["url"])
    assert late.status_code == 410
    assert "This session has ended" in late.text and 'href="https://app.example.com/back"' in late.text
    session_id = read_browser_token(session_secret(portal.engine), browser)
    assert session_id is not None
    with unit_of_work(portal.engine) as session, pytest.raises(PermissionDenied):
        require_access(
            session, email="-", account_id="acc_a", portal_session_id=session_id, at=portal.clock.at
        )


def test_delete_ends_the_session(portal: Portal, now: datetime) -> None:
    minted = portal.mint(return_url="https://app.example.com/back")
    _browser_token(portal.start(minted["url"]))
    portal.clock.at = now + timedelta(minutes=5)
    ended = portal.client.delete(f"/api/v1/portal-sessions/{minted['id']}", headers=SERVER)
    assert_matches(ended, "/api/v1/portal-sessions/{session_id}", "delete", status=200)
    assert ended.json() == {"id": minted["id"], "ended_at": portal.clock.at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    again = portal.client.delete(f"/api/v1/portal-sessions/{minted['id']}", headers=SERVER)
    assert again.json() == ended.json()  # ending twice changes nothing
    with unit_of_work(portal.engine) as session, pytest.raises(PermissionDenied):
        require_access(
            session, email="-", account_id="acc_a", portal_session_id=minted["id"], at=portal.clock.at
        )
    unused = portal.mint()
    portal.client.delete(f"/api/v1/portal-sessions/{unused['id']}", headers=SERVER)
    assert portal.start(unused["url"]).status_code == 410  # ended before it started


@pytest.mark.parametrize("session_id", ["ps_unknown_but_well_formed", "x", "%F0%9F%92%A9", "a" * 300])
def test_deleting_an_unknown_session_is_a_404(portal: Portal, session_id: str) -> None:
    answer = portal.client.delete(f"/api/v1/portal-sessions/{session_id}", headers=SERVER)
    assert answer.status_code == 404 and answer.json()["error"]["field"] == "id"


def test_a_session_reads_only_its_account(portal: Portal) -> None:
    minted = portal.mint(role="viewer")
    _browser_token(portal.start(minted["url"]))
    at = portal.clock.at
    with unit_of_work(portal.engine) as session:
        account = require_access(
            session, email="-", account_id="acc_a", portal_session_id=minted["id"], at=at
        )
        assert (account.account_id, account.role) == ("acc_a", "viewer")
        with pytest.raises(PermissionDenied):
            require_access(session, email="-", account_id="acc_b", portal_session_id=minted["id"], at=at)
        with pytest.raises(PermissionDenied):
            require_access(
                session,
                email="-",
                account_id="acc_a",
                min_role="billing",
                portal_session_id=minted["id"],
                at=at,
            )


def test_an_unstarted_session_may_not_read(portal: Portal) -> None:
    minted = portal.mint()
    with unit_of_work(portal.engine) as session, pytest.raises(PermissionDenied):
        require_access(
            session, email="-", account_id="acc_a", portal_session_id=minted["id"], at=portal.clock.at
        )


def test_writes_are_audited_with_the_session_and_the_email(portal: Portal) -> None:
    minted = portal.mint(role="admin", email="ana@customer.example")
    _browser_token(portal.start(minted["url"]))
    actor = Actor.portal(minted["id"], "ana@customer.example", at=portal.clock.at)
    with unit_of_work(portal.engine, write=True) as session:
        set_overdraft(session, account_id="acc_a", overdraft="5", actor=actor, at=portal.clock.at)
        mark_read(session, actor=actor, account_id="acc_a", up_to_id=1, at=portal.clock.at)
    with unit_of_work(portal.engine) as session:
        entries = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        settings = session.get(SpendSettings, "acc_a")
    author = f"portal:{minted['id']}:ana@customer.example"
    assert [(e.actor, e.action, e.account_id) for e in entries] == [
        (author, "portal.overdraft.edit", "acc_a"),
        (author, "portal.notifications.read", "acc_a"),
    ]
    assert entries[0].details == {
        "portal_session_id": minted["id"],
        "email": "ana@customer.example",
        "role": "admin",
    }
    assert settings is not None and settings.updated_by == author


def test_writes_stop_at_the_role_the_account_and_the_end(portal: Portal, now: datetime) -> None:
    viewer = portal.mint(role="viewer")
    _browser_token(portal.start(viewer["url"]))
    admin = portal.mint(role="admin", email=None)
    _browser_token(portal.start(admin["url"]))
    at = portal.clock.at
    with unit_of_work(portal.engine, write=True) as session, pytest.raises(PermissionDenied, match="viewer"):
        set_overdraft(
            session, account_id="acc_a", overdraft="5", actor=Actor.portal(viewer["id"], None, at=at), at=at
        )
    with unit_of_work(portal.engine, write=True) as session, pytest.raises(PermissionDenied):
        set_overdraft(
            session, account_id="acc_b", overdraft="5", actor=Actor.portal(admin["id"], None, at=at), at=at
        )
    later = now + timedelta(hours=2)  # past the default hour
    with unit_of_work(portal.engine, write=True) as session, pytest.raises(PermissionDenied, match="ended"):
        set_overdraft(
            session,
            account_id="acc_a",
            overdraft="5",
            actor=Actor.portal(admin["id"], None, at=later),
            at=later,
        )
    with unit_of_work(portal.engine) as session:
        assert session.scalars(select(AuditLog)).all() == []  # refused writes leave no audit entry


def test_a_members_lowered_role_caps_the_session_at_once(portal: Portal) -> None:
    with unit_of_work(portal.engine, write=True) as session:
        add_member(session, account_id="acc_a", email="boss@acc-a.test", role="admin", at=portal.clock.at)
    minted = portal.mint(role="admin", email="boss@acc-a.test")
    _browser_token(portal.start(minted["url"]))
    with unit_of_work(portal.engine, write=True) as session:
        add_member(session, account_id="acc_a", email="boss@acc-a.test", role="viewer", at=portal.clock.at)
    at = portal.clock.at
    with unit_of_work(portal.engine, write=True) as session, pytest.raises(PermissionDenied, match="viewer"):
        actor = Actor.portal(minted["id"], "boss@acc-a.test", at=at)
        set_overdraft(session, account_id="acc_a", overdraft="5", actor=actor, at=at)


def test_framing_is_refused_when_no_origin_is_listed(engine: Engine) -> None:
    app = Starlette(
        routes=portal_start_routes(lambda: engine),
        middleware=[Middleware(FramingMiddleware, origins=())],
    )
    with TestClient(app) as client:
        answer = client.get("/portal/start?token=x")
    assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert answer.headers["x-frame-options"] == "DENY"


def test_undecodable_bytes_in_the_start_link_are_refused(portal: Portal) -> None:
    answer = portal.client.get("/portal/start?token=%ED%A0%80%FF&token=x", follow_redirects=False)
    assert answer.status_code == 404


def test_the_python_client_mints_and_ends_a_session(portal: Portal) -> None:
    from core.client import MeterlineAPIError, MeterlineClient
    from tests.integration.test_api_client import forwarding

    with MeterlineClient("http://portal.test", TOKEN, transport=forwarding(portal.client)) as client:
        minted = client.create_portal_session(
            "acc_a",
            role="viewer",
            email="ana@customer.example",
            pages=["usage"],
            return_url="https://a.example/",
        )
        assert minted["url"].startswith("http://portal.test/portal/start?token=")
        assert client.end_portal_session(minted["id"])["id"] == minted["id"]
        with pytest.raises(MeterlineAPIError) as refused:
            client.create_portal_session("acc_a", role="owner")
    assert (refused.value.status, refused.value.field) == (422, "role")


def test_two_opens_at_once_start_one_session(portal: Portal) -> None:
    import threading

    from core.portal_sessions import start_portal_session

    minted = portal.mint()
    token = parse_qs(urlsplit(minted["url"]).query)["token"][0]
    secret = session_secret(portal.engine)
    outcomes: list[str] = []
    gate = threading.Barrier(2)

    def open_link() -> None:
        gate.wait()
        with unit_of_work(portal.engine, write=True) as session:
            outcome, _ = start_portal_session(session, token, secret=secret, at=portal.clock.at)
        outcomes.append(outcome)

    threads = [threading.Thread(target=open_link) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["started", "used"]
