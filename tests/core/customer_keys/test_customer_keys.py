"""Customer API keys in the core (SQLite and PostgreSQL): made with a secret that exists only in the
answer, stored as its SHA-256 with a visible prefix, listed, revoked once, audited; a repeated form
submission makes one key; bad input names its field."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text

from core.accounts import Actor, add_member, create_account
from core.customer_keys import (
    create_customer_key,
    key_for_secret,
    list_customer_keys,
    new_secret,
    note_key_used,
    revoke_customer_key,
)
from core.customer_keys.service import MAX_ACTIVE_KEYS
from core.db import unit_of_work
from core.db.models import AuditLog, CustomerApiKey
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.support import timeline

ACCOUNT = "acc_keys"
OWNER = "olive@keys.test"
VIEWER = "vic@keys.test"


@pytest.fixture
def world(engine: Engine, now: datetime) -> Engine:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id=ACCOUNT, name="Keys Inc", at=now)
        create_account(session, account_id="acc_other", name="Other", at=now)
        add_member(session, account_id=ACCOUNT, email=OWNER, role="owner", at=now)
        add_member(session, account_id=ACCOUNT, email=VIEWER, role="viewer", at=now)
    return engine


def make(engine: Engine, at: datetime, **fields: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "actor": Actor.member(OWNER),
        "account_id": ACCOUNT,
        "name": "Finance export",
        "scopes": ["usage:read", "balance:read"],
        "at": at,
        **fields,
    }
    with unit_of_work(engine, write=True) as session:
        return create_customer_key(session, **values)  # type: ignore[arg-type]


def test_a_key_is_stored_only_as_a_hash_with_a_visible_prefix(world: Engine, now: datetime) -> None:
    made = make(world, now)
    assert made.created and made.secret is not None
    assert made.secret.startswith("ml_live_") and len(made.secret) == 56
    assert made.key.prefix == made.secret[:14] and made.key.shown == made.secret[:14] + "…"
    with world.connect() as connection:
        rows = [tuple(row) for row in connection.execute(text("SELECT * FROM customer_api_keys"))]
    (row,) = rows
    assert made.secret not in repr(row)  # not the secret, nor any column holding it
    assert made.secret[14:] not in repr(row)
    with unit_of_work(world) as session:
        stored = session.scalars(select(CustomerApiKey)).one()
        assert stored.secret_sha256 == hashlib.sha256(made.secret.encode()).hexdigest()
        assert key_for_secret(session, made.secret) == made.key
        assert key_for_secret(session, new_secret()) is None
        assert key_for_secret(session, "not a key") is None


def test_keys_are_listed_newest_first_and_revoked_once_with_audit(world: Engine, now: datetime) -> None:
    first = make(world, now, name="First")
    make(world, now + timedelta(minutes=1), name="Second", scopes=["usage:read"])
    with unit_of_work(world, write=True) as session:
        revoked = revoke_customer_key(
            session, actor=Actor.member(OWNER), key_id=first.key.key_id, at=now + timedelta(hours=1)
        )
        again = revoke_customer_key(
            session, actor=Actor.system("cli"), key_id=first.key.key_id, at=now + timedelta(hours=2)
        )
    assert revoked.revoked_at == now + timedelta(hours=1) and revoked.revoked_by == OWNER
    assert again == revoked  # revoking again changes nothing
    with unit_of_work(world) as session:
        keys = list_customer_keys(session, ACCOUNT)
        audits = session.execute(select(AuditLog.action, AuditLog.actor).order_by(AuditLog.id)).all()
        items = [item for item in timeline(session, ACCOUNT) if item.kind == "api keys"]
    assert [k.name for k in keys] == ["Second", "First"]
    assert [k.status(now + timedelta(hours=3)) for k in keys] == ["active", "revoked"]
    assert keys[0].scopes == ("usage:read",)
    assert [tuple(a) for a in audits] == [
        ("api_keys.create", OWNER),
        ("api_keys.create", OWNER),
        ("api_keys.revoke", OWNER),
    ]
    assert [i.title for i in items] == [
        "Customer API key revoked",
        "Customer API key created",
        "Customer API key created",
    ]
    assert first.key.shown in items[0].detail and "“First”" in items[0].detail


def test_a_repeated_submission_makes_one_key(world: Engine, now: datetime) -> None:
    secret = new_secret()
    first = make(world, now, submission_id="form-0001", secret=secret)
    repeat = make(world, now, submission_id="form-0001", secret=secret)
    assert first.created and not repeat.created
    assert repeat.key == first.key and repeat.secret == secret
    with pytest.raises(Conflict) as other_values:
        make(world, now, submission_id="form-0001", secret=secret, name="Another name")
    assert other_values.value.field == "submission_id"
    with unit_of_work(world) as session:
        assert len(list_customer_keys(session, ACCOUNT)) == 1
        assert session.scalar(select(AuditLog.action)) == "api_keys.create"
        assert len(session.scalars(select(AuditLog)).all()) == 1


def test_expiry_is_the_last_day_it_works_in_utc(world: Engine, now: datetime) -> None:
    made = make(world, now, expires_on=date(2026, 12, 31))
    assert made.key.expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert made.key.status(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "active"
    assert made.key.status(datetime(2027, 1, 1, tzinfo=UTC)) == "expired"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["usage:write"]}, "scopes"),
        ({"expires_on": date(2026, 11, 19)}, "expires"),
        ({"expires_on": date(2031, 1, 1)}, "expires"),
        ({"submission_id": "x"}, "submission_id"),
        ({"submission_id": "form-0001", "secret": "ml_live_short"}, "secret"),
    ],
)
def test_bad_input_names_the_field_and_makes_nothing(
    world: Engine, now: datetime, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        make(world, now, **fields)
    assert refused.value.field == field
    with unit_of_work(world) as session:
        assert list_customer_keys(session, ACCOUNT) == []


def test_a_viewer_and_another_account_cannot_create_or_revoke(world: Engine, now: datetime) -> None:
    with pytest.raises(PermissionDenied, match="you are viewer"):
        make(world, now, actor=Actor.member(VIEWER))
    with pytest.raises(PermissionDenied, match="not a member"):
        make(world, now, account_id="acc_other")
    made = make(world, now)
    with unit_of_work(world, write=True) as session, pytest.raises(PermissionDenied):
        revoke_customer_key(session, actor=Actor.member(VIEWER), key_id=made.key.key_id, at=now)
    with unit_of_work(world, write=True) as session, pytest.raises(NotFound):
        # The page passes the account it shows: a key of another account is not found there.
        revoke_customer_key(
            session, actor=Actor.system("t"), key_id=made.key.key_id, account_id="acc_other", at=now
        )
    for key_id in (0, -1, 2**63, 999):
        with unit_of_work(world, write=True) as session, pytest.raises(NotFound):
            revoke_customer_key(session, actor=Actor.system("t"), key_id=key_id, at=now)


def test_an_account_has_a_bounded_number_of_active_keys(world: Engine, now: datetime) -> None:
    for n in range(MAX_ACTIVE_KEYS):
        make(world, now, name=f"k{n}", actor=Actor.system("t"))
    with pytest.raises(ValidationError) as refused:
        make(world, now, name="one more")
    assert refused.value.code == "too_many_keys"


def test_last_used_is_written_at_most_once_a_minute(world: Engine, now: datetime) -> None:
    made = make(world, now)
    steps = [now, now + timedelta(seconds=30), now + timedelta(seconds=59), now + timedelta(seconds=61)]
    written = []
    for at in steps:
        with unit_of_work(world, write=True) as session:
            written.append(note_key_used(session, made.key.key_id, at))
    assert written == [True, False, False, True]
    with unit_of_work(world) as session:
        assert list_customer_keys(session, ACCOUNT)[0].last_used_at == now + timedelta(seconds=61)


def test_two_submits_of_one_form_at_once_make_one_key(world: Engine, now: datetime) -> None:
    secret = new_secret()
    barrier = threading.Barrier(2)

    def submit() -> int:
        barrier.wait()
        return make(world, now, submission_id="form-race-1", secret=secret).key.key_id

    with ThreadPoolExecutor(2) as pool:
        key_ids = list(pool.map(lambda _: submit(), range(2)))
    assert key_ids[0] == key_ids[1]
    with unit_of_work(world) as session:
        assert len(list_customer_keys(session, ACCOUNT)) == 1
        assert len(session.scalars(select(AuditLog)).all()) == 1
