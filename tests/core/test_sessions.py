"""Demo-mode session tokens: signed, expiring, unforgeable; ended sessions recorded once."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from core.db import unit_of_work
from core.db.models import Setting
from core.sessions import (
    ENDED_PREFIX,
    SESSION_TTL,
    cookie_session_id,
    end_session,
    mint_token,
    read_token,
    session_ended,
    session_secret,
)

SECRET = b"a-test-secret-of-some-length"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_a_minted_token_reads_back_until_it_expires() -> None:
    token = mint_token(SECRET, "maya@startup.example", now=NOW)
    session = read_token(SECRET, token, now=NOW + timedelta(hours=1))
    assert session is not None
    assert session.email == "maya@startup.example"
    assert session.expires_at == NOW + SESSION_TTL
    assert read_token(SECRET, token, now=NOW + SESSION_TTL) is None


def test_each_sign_in_is_a_new_browser_session() -> None:
    first = read_token(SECRET, mint_token(SECRET, "a@x.test", now=NOW), now=NOW)
    second = read_token(SECRET, mint_token(SECRET, "a@x.test", now=NOW), now=NOW)
    assert first is not None and second is not None and first.sid != second.sid


def _forge(token: str, **changes: object) -> str:
    body, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{forged}.{mac}"


def test_an_edited_token_is_refused() -> None:
    token = mint_token(SECRET, "victor@enterprise.example", now=NOW)
    assert read_token(SECRET, _forge(token, email="olivia@enterprise.example"), now=NOW) is None
    assert (
        read_token(SECRET, _forge(token, exp=int((NOW + timedelta(days=999)).timestamp())), now=NOW) is None
    )
    assert read_token(b"another-secret", token, now=NOW) is None


def test_garbage_is_refused_without_an_error() -> None:
    for junk in ("", ".", "a.b", "a.b.c", "x" * 5000, "é.é", "%%%.***", None):
        assert read_token(SECRET, junk, now=NOW) is None


def test_the_secret_is_made_once_and_kept(engine: Engine) -> None:
    first = session_secret(engine)
    assert len(first) >= 32
    assert session_secret(engine) == first


def test_an_ended_session_is_recorded_once_and_forgotten_after_expiry(engine: Engine) -> None:
    end_session(engine, "sid-aaaaaaaaaaaaaaaaaaaa", until=NOW + timedelta(days=1), now=NOW)
    end_session(engine, "sid-aaaaaaaaaaaaaaaaaaaa", until=NOW + timedelta(days=1), now=NOW)  # another tab
    with unit_of_work(engine) as session:
        assert session_ended(session, "sid-aaaaaaaaaaaaaaaaaaaa")
        assert not session_ended(session, "sid-bbbbbbbbbbbbbbbbbbbb")
    # Two days later another sign-out sweeps the records of sessions that expired meanwhile.
    end_session(
        engine, "sid-cccccccccccccccccccc", until=NOW + timedelta(days=9), now=NOW + timedelta(days=2)
    )
    with unit_of_work(engine) as session:
        ended = session.scalar(
            select(func.count()).select_from(Setting).where(Setting.key.startswith(ENDED_PREFIX))
        )
        assert ended == 1
        assert session_ended(session, "sid-cccccccccccccccccccc")


def test_an_oidc_cookie_gets_a_stable_short_id() -> None:
    assert cookie_session_id("abc") == cookie_session_id("abc") != cookie_session_id("abd")
    assert len(ENDED_PREFIX + cookie_session_id("x" * 4000)) <= 64  # fits the settings key
