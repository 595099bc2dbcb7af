"""Invitations (issue 17), on SQLite and PostgreSQL: a signed, single-use link that expires, stored
only as a hash; accepted by the invited email alone (a first-time user becomes a user and a member),
refused plainly when used, revoked, expired or for someone else; one invitation and one email per
submission; two tabs accepting at once make one membership."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine, func, select

from core.accounts import Actor, add_member, create_account
from core.accounts.invitations import (
    accept_invitation,
    find_invitation,
    invitation_token,
    invitation_ttl,
    invite_member,
    open_invitations,
    revoke_invitation,
    token_hash,
)
from core.accounts.members import list_members
from core.db import unit_of_work
from core.db.models import AuditLog, Invitation, Membership, SupportSubmission, User
from core.errors import BillingError, Conflict, NotFound, PermissionDenied, ValidationError
from core.support import timeline
from tests.core.payments.test_notify_email import Inbox, inbox  # noqa: F401 (a fixture)

ACCOUNT = "acc_team"
OWNER = "olga@team.test"
ADMIN = "ada@team.test"
VIEWER = "vera@team.test"
NEWCOMER = "nina@newco.test"
SECRET = b"invitation-test-secret"
PORTAL = "http://portal.test"

_ids = iter(range(10**6))


@pytest.fixture(autouse=True)
def _no_smtp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMTP_URL", raising=False)
    monkeypatch.delenv("METERLINE_INVITATION_TTL_DAYS", raising=False)


@pytest.fixture
def team(engine: Engine, now: datetime) -> Engine:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id=ACCOUNT, name="Team Co", at=now)
        for email, role in ((OWNER, "owner"), (ADMIN, "admin"), (VIEWER, "viewer")):
            add_member(session, account_id=ACCOUNT, email=email, role=role, at=now)
    return engine


def _invite(
    engine: Engine,
    at: datetime,
    *,
    actor: str = OWNER,
    email: str = NEWCOMER,
    role: str = "viewer",
    **kw: Any,
) -> Any:
    with unit_of_work(engine, write=True) as session:
        return invite_member(
            session,
            Actor.member(actor),
            account_id=ACCOUNT,
            email=email,
            role=role,
            submission_id=kw.pop("sid", None) or f"invite-form-{next(_ids):06d}",
            secret=SECRET,
            link_base=PORTAL,
            at=at,
            **kw,
        )


def _token(link: str) -> str:
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{PORTAL}/accept-invitation"
    return parse_qs(parts.query)["token"][0]


def _accept(engine: Engine, email: str, token: str, at: datetime) -> Any:
    with unit_of_work(engine, write=True) as session:
        return accept_invitation(session, Actor.member(email), token=token, at=at)


def _revoke(engine: Engine, actor: str, invitation_id: int, at: datetime, sid: str | None = None) -> Any:
    with unit_of_work(engine, write=True) as session:
        return revoke_invitation(
            session,
            Actor.member(actor),
            account_id=ACCOUNT,
            invitation_id=invitation_id,
            submission_id=sid or f"revoke-form-{next(_ids):06d}",
            at=at,
        )


def _roles(engine: Engine) -> dict[str, str]:
    with unit_of_work(engine) as session:
        return {m.email: m.role for m in list_members(session, ACCOUNT)}


def _actions(engine: Engine) -> list[str]:
    with unit_of_work(engine) as session:
        stmt = select(AuditLog.action).where(AuditLog.action.startswith("members.")).order_by(AuditLog.id)
        return list(session.scalars(stmt))


def test_a_first_time_user_accepts_and_becomes_a_member(team: Engine, now: datetime) -> None:
    invited = _invite(team, now, role="billing")
    assert (invited.invitation.email, invited.invitation.role, invited.emailed) == (
        NEWCOMER,
        "billing",
        False,
    )
    assert invited.invitation.expires_at == now + timedelta(days=7)
    token = _token(invited.link)
    with unit_of_work(team) as session:
        assert session.scalar(select(User).where(User.email == NEWCOMER)) is None  # never signed in
        assert [i.email for i in open_invitations(session, ACCOUNT)] == [NEWCOMER]

    accepted = _accept(team, NEWCOMER.upper(), token, now + timedelta(days=6, hours=23))
    assert (accepted.account_id, accepted.account_name, accepted.role, accepted.already_member) == (
        ACCOUNT,
        "Team Co",
        "billing",
        False,
    )
    assert _roles(team)[NEWCOMER] == "billing"
    with unit_of_work(team) as session:
        assert open_invitations(session, ACCOUNT) == []
        assert find_invitation(session, token).state == "accepted"  # type: ignore[union-attr]
        items = [(i.title, i.actor) for i in timeline(session, ACCOUNT) if i.kind == "members"]
    assert items == [("members.invitation_accepted", NEWCOMER), ("members.invited", OWNER)]


def test_only_a_hash_of_the_token_is_stored(team: Engine, now: datetime) -> None:
    invited = _invite(team, now, sid="invite-form-hash")
    token = _token(invited.link)
    assert token == invitation_token(SECRET, "invite-form-hash")  # the server's signature of the submission
    assert invitation_token(b"another secret", "invite-form-000000") != invitation_token(
        SECRET, "invite-form-000000"
    )
    with unit_of_work(team) as session:
        row = session.scalars(select(Invitation)).one()
        stored = [
            *(str(getattr(row, c.key)) for c in Invitation.__table__.columns),
            *(json.dumps([s.fields, s.result]) for s in session.scalars(select(SupportSubmission))),
            *(json.dumps([a.details, a.reason]) for a in session.scalars(select(AuditLog))),
        ]
    assert row.token_hash == token_hash(token) != token
    assert not [value for value in stored if token in value]


def test_a_link_for_another_email_is_refused_and_says_what_to_do(team: Engine, now: datetime) -> None:
    token = _token(_invite(team, now).link)
    with pytest.raises(PermissionDenied) as error:
        _accept(team, VIEWER, token, now)
    assert error.value.code == "invitation_for_another_email"
    assert f"this invitation is for {NEWCOMER}, and you are signed in as {VIEWER}" in error.value.message
    assert f"sign in as {NEWCOMER}" in error.value.message
    assert NEWCOMER not in _roles(team) and _roles(team)[VIEWER] == "viewer"
    _accept(team, NEWCOMER, token, now)  # still works for the right person


def test_a_link_works_once(team: Engine, now: datetime) -> None:
    token = _token(_invite(team, now).link)
    _accept(team, NEWCOMER, token, now)
    with pytest.raises(Conflict) as error:
        _accept(team, NEWCOMER, token, now + timedelta(minutes=1))
    assert error.value.code == "invitation_used"
    assert "already used" in error.value.message and "a link works once" in error.value.message
    assert _actions(team) == ["members.invited", "members.invitation_accepted"]


def test_a_link_expires_after_the_ttl(team: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    token = _token(_invite(team, now).link)
    with pytest.raises(Conflict) as error:
        _accept(team, NEWCOMER, token, now + timedelta(days=7))
    assert error.value.code == "invitation_expired"
    assert "expired on Nov 27, 2026, 12:00 UTC" in error.value.message
    assert "ask an owner or admin of Team Co to invite you again" in error.value.message
    with unit_of_work(team) as session:
        [still_listed] = open_invitations(session, ACCOUNT)
    assert still_listed.status(now + timedelta(days=7)) == "expired"

    _invite(team, now + timedelta(days=7), email=NEWCOMER)  # an expired one does not block a new one

    monkeypatch.setenv("METERLINE_INVITATION_TTL_DAYS", "2")
    assert invitation_ttl() == timedelta(days=2)
    short = _invite(team, now, email="sam@newco.test")
    assert short.invitation.expires_at == now + timedelta(days=2)
    for bad in ("0", "91", "1.5", "seven"):
        monkeypatch.setenv("METERLINE_INVITATION_TTL_DAYS", bad)
        with pytest.raises(ValidationError) as invalid:
            invitation_ttl()
        assert invalid.value.field == "METERLINE_INVITATION_TTL_DAYS"


def test_a_revoked_link_stops_working(team: Engine, now: datetime) -> None:
    invited = _invite(team, now)
    revoked = _revoke(team, ADMIN, invited.invitation.invitation_id, now)
    assert (revoked.state, revoked.revoked_by) == ("revoked", ADMIN)
    with pytest.raises(Conflict) as error:
        _accept(team, NEWCOMER, _token(invited.link), now)
    assert error.value.code == "invitation_revoked"
    assert "withdrawn" in error.value.message
    with pytest.raises(Conflict):
        _revoke(team, OWNER, invited.invitation.invitation_id, now)  # nothing left to revoke
    assert _actions(team) == ["members.invited", "members.invitation_revoked"]
    _invite(team, now, email=NEWCOMER)  # a new one may be sent now


def test_an_admin_neither_invites_nor_revokes_owners(team: Engine, now: datetime) -> None:
    with pytest.raises(PermissionDenied) as error:
        _invite(team, now, actor=ADMIN, role="owner")
    assert "making, changing or removing owners needs the owner role; you are admin" in error.value.message
    owner_invite = _invite(team, now, role="owner")
    with pytest.raises(PermissionDenied):
        _revoke(team, ADMIN, owner_invite.invitation.invitation_id, now)
    _invite(team, now, actor=ADMIN, email="sam@newco.test", role="admin")
    assert _accept(team, NEWCOMER, _token(owner_invite.link), now).role == "owner"


@pytest.mark.parametrize(
    ("actor", "says"),
    [
        (Actor.member(VIEWER), "you are viewer"),
        (Actor.member("eve@elsewhere.test"), "you are not a member"),
        (Actor.viewing_as_customer(OWNER), "viewing this account as its customer"),
        (Actor.agent("sue@meterline.test"), "a support agent cannot"),
    ],
)
def test_only_owners_and_admins_invite(team: Engine, now: datetime, actor: Actor, says: str) -> None:
    with pytest.raises(PermissionDenied) as error, unit_of_work(team, write=True) as session:
        invite_member(
            session,
            actor,
            account_id=ACCOUNT,
            email=NEWCOMER,
            role="viewer",
            submission_id="invite-form-refused",
            secret=SECRET,
            link_base=PORTAL,
            at=now,
        )
    assert says in error.value.message
    with unit_of_work(team) as session:
        assert session.scalar(select(func.count()).select_from(Invitation)) == 0


def test_bad_invitations_name_the_field(team: Engine, now: datetime) -> None:
    cases: list[tuple[dict[str, str], type[BillingError], str]] = [
        ({"email": ""}, ValidationError, "email"),
        ({"email": "not an address"}, ValidationError, "email"),
        ({"email": "nina@newco.test\nBcc: x@y.test"}, ValidationError, "email"),
        ({"email": VIEWER.upper()}, ValidationError, "email"),  # already a member
        ({"role": "root"}, ValidationError, "role"),
    ]
    for fields, kind, field in cases:
        with pytest.raises(kind) as error:
            _invite(team, now, **fields)
        assert error.value.field == field, fields
    _invite(team, now)
    with pytest.raises(Conflict) as twice:
        _invite(team, now, email=NEWCOMER)
    assert (twice.value.code, twice.value.field) == ("already_invited", "email")


def test_a_link_that_opens_nothing_says_so(team: Engine, now: datetime) -> None:
    _invite(team, now)
    for token in ("", "x" * 43, "a" * 10_000, "\ud800" * 43, "abc def", "token=1"):
        with pytest.raises(NotFound) as error:
            _accept(team, NEWCOMER, token, now)
        assert error.value.code == "invitation_not_found"
        assert "does not open an invitation" in error.value.message
    with unit_of_work(team) as session:
        assert find_invitation(session, None) is None


def test_a_member_who_accepts_keeps_their_role(team: Engine, now: datetime) -> None:
    token = _token(_invite(team, now, role="admin").link)
    with unit_of_work(team, write=True) as session:
        add_member(session, account_id=ACCOUNT, email=NEWCOMER, role="viewer", at=now)  # by an operator
    accepted = _accept(team, NEWCOMER, token, now)
    assert (accepted.role, accepted.already_member) == ("viewer", True)
    assert _roles(team)[NEWCOMER] == "viewer"


def test_one_submission_makes_one_invitation_and_one_email(team: Engine, now: datetime, inbox: Inbox) -> None:  # noqa: F811
    first = _invite(team, now, sid="invite-form-double")
    again = _invite(team, now + timedelta(seconds=1), sid="invite-form-double")
    assert first.emailed and again.emailed and again.replayed and not first.replayed
    assert again.link == first.link and again.invitation == first.invitation
    with pytest.raises(Conflict):
        _invite(team, now, sid="invite-form-double", email="sam@newco.test")
    [mail] = inbox.wait_for(1)
    inbox.wait_for(2, timeout_s=1)
    assert len(inbox.messages) == 1
    assert mail["To"] == NEWCOMER and mail["Subject"] == "Invitation to Team Co on Meterline"
    body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert first.link in body and f"Sign in as {NEWCOMER}" in body
    with unit_of_work(team) as session:
        assert session.scalar(select(func.count()).select_from(Invitation)) == 1


def test_a_refused_invitation_sends_nothing(team: Engine, now: datetime, inbox: Inbox) -> None:  # noqa: F811
    with pytest.raises(ValidationError):
        _invite(team, now, email=VIEWER)
    inbox.wait_for(1, timeout_s=1)
    assert inbox.messages == []


def test_two_tabs_accepting_at_once_make_one_membership(team: Engine, now: datetime) -> None:
    token = _token(_invite(team, now).link)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def accept() -> None:
        barrier.wait()
        try:
            _accept(team, NEWCOMER, token, now)
            outcomes.append("accepted")
        except BillingError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["accepted", "invitation_used"]
    with unit_of_work(team) as session:
        user_id = session.scalar(select(User.id).where(User.email == NEWCOMER))
        assert (
            session.scalar(select(func.count()).select_from(Membership).where(Membership.user_id == user_id))
            == 1
        )
    assert _actions(team) == ["members.invited", "members.invitation_accepted"]
