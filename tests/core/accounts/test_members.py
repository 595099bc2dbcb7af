"""Members of an account (issue 17), on SQLite and PostgreSQL: role changes and removals follow the
permission table, the last owner stays, admins leave owners alone, each change is audited (and in
the support timeline) once per submission, and two owners demoting each other at once keep one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from core.accounts import Actor, add_member, create_account
from core.accounts.members import change_role, list_members, record_sign_in, remove_member
from core.db import unit_of_work
from core.db.models import AuditLog
from core.errors import BillingError, Conflict, NotFound, PermissionDenied
from core.support import timeline

ACCOUNT = "acc_team"
OWNER = "olga@team.test"
ADMIN = "ada@team.test"
BILLING = "bill@team.test"
VIEWER = "vera@team.test"


@pytest.fixture
def team(engine: Engine, now: datetime) -> Engine:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id=ACCOUNT, name="Team Co", at=now)
        for email, role in ((OWNER, "owner"), (ADMIN, "admin"), (BILLING, "billing"), (VIEWER, "viewer")):
            add_member(session, account_id=ACCOUNT, email=email, role=role, at=now)
    return engine


_ids = iter(range(10**6))


def _sid() -> str:
    return f"members-form-{next(_ids):06d}"


def _change(engine: Engine, actor: Actor, email: str, role: str, at: datetime, sid: str | None = None) -> Any:
    with unit_of_work(engine, write=True) as session:
        return change_role(
            session, actor, account_id=ACCOUNT, email=email, role=role, submission_id=sid or _sid(), at=at
        )


def _remove(engine: Engine, actor: Actor, email: str, at: datetime, sid: str | None = None) -> Any:
    with unit_of_work(engine, write=True) as session:
        return remove_member(
            session, actor, account_id=ACCOUNT, email=email, submission_id=sid or _sid(), at=at
        )


def _roles(engine: Engine) -> dict[str, str]:
    with unit_of_work(engine) as session:
        return {m.email: m.role for m in list_members(session, ACCOUNT)}


def _audit(engine: Engine) -> list[AuditLog]:
    with unit_of_work(engine) as session:
        stmt = select(AuditLog).where(AuditLog.action.startswith("members.")).order_by(AuditLog.id)
        return list(session.scalars(stmt))


def test_an_owner_changes_a_role_and_it_is_audited_in_the_timeline(team: Engine, now: datetime) -> None:
    change = _change(team, Actor.member(OWNER), VIEWER, "billing", now)
    assert (change.role_before, change.role_after, change.changed) == ("viewer", "billing", True)
    assert _roles(team)[VIEWER] == "billing"
    [entry] = _audit(team)
    assert (entry.actor, entry.action, entry.account_id) == (OWNER, "members.role_changed", ACCOUNT)
    assert entry.details == {
        "target": f"member:{VIEWER}",
        "before": {"role": "viewer"},
        "after": {"role": "billing"},
    }
    with unit_of_work(team) as session:
        items = [item for item in timeline(session, ACCOUNT) if item.kind == "members"]
    assert [(i.title, i.detail, i.actor) for i in items] == [
        ("members.role_changed", f"changed {VIEWER} from viewer to billing", OWNER)
    ]


def test_the_same_role_changes_nothing_and_writes_no_entry(team: Engine, now: datetime) -> None:
    change = _change(team, Actor.member(OWNER), VIEWER, "viewer", now)
    assert change.changed is False
    assert _audit(team) == []


def test_the_last_owner_can_be_neither_demoted_nor_removed(team: Engine, now: datetime) -> None:
    with pytest.raises(Conflict) as demoted:
        _change(team, Actor.member(OWNER), OWNER, "admin", now)
    assert (demoted.value.code, demoted.value.field) == ("last_owner", "role")
    assert "last owner" in demoted.value.message
    with pytest.raises(Conflict) as removed:
        _remove(team, Actor.system("cli"), OWNER, now)  # not even the system actor
    assert (removed.value.code, removed.value.field) == ("last_owner", "email")
    assert _roles(team)[OWNER] == "owner"
    assert _audit(team) == []

    _change(team, Actor.member(OWNER), ADMIN, "owner", now)  # a second owner: now either may go
    _change(team, Actor.member(OWNER), OWNER, "viewer", now)
    assert _roles(team)[OWNER] == "viewer"
    with pytest.raises(Conflict):
        _remove(team, Actor.member(ADMIN), ADMIN, now)  # ada is the last owner now


def test_an_admin_manages_everyone_but_owners(team: Engine, now: datetime) -> None:
    admin = Actor.member(ADMIN)
    refusals: list[Callable[[], Any]] = [
        lambda: _change(team, admin, VIEWER, "owner", now),  # make an owner
        lambda: _change(team, admin, OWNER, "viewer", now),  # demote an owner
        lambda: _remove(team, admin, OWNER, now),  # remove an owner
    ]
    for refused in refusals:
        with pytest.raises(PermissionDenied) as error:
            refused()
        assert (
            "making, changing or removing owners needs the owner role; you are admin" in error.value.message
        )
    assert _roles(team) == {OWNER: "owner", ADMIN: "admin", BILLING: "billing", VIEWER: "viewer"}

    _change(team, admin, VIEWER, "billing", now)
    _remove(team, admin, BILLING, now)
    _change(team, admin, ADMIN, "viewer", now)  # an admin may step down
    assert _roles(team) == {OWNER: "owner", VIEWER: "billing", ADMIN: "viewer"}
    assert [e.action for e in _audit(team)] == [
        "members.role_changed",
        "members.removed",
        "members.role_changed",
    ]


@pytest.mark.parametrize(
    ("actor", "says"),
    [
        (Actor.member(BILLING), "you are billing"),
        (Actor.member(VIEWER), "you are viewer"),
        (Actor.member("eve@elsewhere.test"), "you are not a member"),
        (Actor.viewing_as_customer(OWNER), "viewing this account as its customer"),
        (Actor.agent("sue@meterline.test"), "a support agent cannot"),
    ],
)
def test_others_may_change_nobody(team: Engine, now: datetime, actor: Actor, says: str) -> None:
    for attempt in (
        lambda: _change(team, actor, VIEWER, "admin", now),
        lambda: _remove(team, actor, VIEWER, now),
    ):
        with pytest.raises(PermissionDenied) as error:
            attempt()
        assert says in error.value.message
    assert _roles(team)[VIEWER] == "viewer"
    assert _audit(team) == []


def test_a_member_not_there_is_named(team: Engine, now: datetime) -> None:
    with pytest.raises(NotFound) as error:
        _change(team, Actor.member(OWNER), "nobody@team.test", "viewer", now)
    assert error.value.field == "email"


def test_one_submission_acts_once(team: Engine, now: datetime) -> None:
    owner = Actor.member(OWNER)
    first = _change(team, owner, VIEWER, "admin", now, sid="role-form-0001")
    _change(team, owner, VIEWER, "viewer", now)  # someone sets it back meanwhile
    again = _change(team, owner, VIEWER, "admin", now + timedelta(seconds=5), sid="role-form-0001")
    assert again == first  # the retry answers with the first result and changes nothing
    assert _roles(team)[VIEWER] == "viewer"
    with pytest.raises(Conflict) as other:
        _change(team, owner, VIEWER, "billing", now, sid="role-form-0001")
    assert other.value.field == "submission_id"

    _remove(team, owner, BILLING, now, sid="remove-form-0001")
    assert _remove(team, owner, BILLING, now, sid="remove-form-0001").role_before == "billing"
    assert [e.action for e in _audit(team)] == [
        "members.role_changed",
        "members.role_changed",
        "members.removed",
    ]


def test_two_owners_demoting_each_other_at_once_keep_one_owner(team: Engine, now: datetime) -> None:
    _change(team, Actor.member(OWNER), ADMIN, "owner", now)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(actor: str, target: str) -> None:
        barrier.wait()
        try:
            _change(team, Actor.member(actor), target, "viewer", now)
            outcomes.append("demoted")
        except BillingError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=demote, args=pair) for pair in ((OWNER, ADMIN), (ADMIN, OWNER))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # The second one waits for the first; then it is either the last owner (last_owner) or no
    # longer an owner at all (it cannot demote one any more: forbidden).
    assert sorted(outcomes)[0] == "demoted" and len(outcomes) == 2 and outcomes.count("demoted") == 1, (
        outcomes
    )
    assert list(_roles(team).values()).count("owner") == 1


def test_last_sign_in_is_kept_and_listed(team: Engine, now: datetime) -> None:
    with unit_of_work(team) as session:
        assert {m.email: m.last_signed_in_at for m in list_members(session, ACCOUNT)}[VIEWER] is None
    with unit_of_work(team, write=True) as session:
        record_sign_in(session, email=" Vera@Team.test ", at=now + timedelta(hours=2))
    with unit_of_work(team) as session:
        members = list_members(session, ACCOUNT)
    assert [m.role for m in members] == ["owner", "admin", "billing", "viewer"]  # owners first
    assert members[-1].last_signed_in_at == now + timedelta(hours=2)
