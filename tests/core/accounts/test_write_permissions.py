"""Every customer write in the core, called as every kind of actor: exactly the documented outcome.

The table below is written out by hand from the permissions documented in docs/domain.md and
``core.accounts.permissions`` (not derived from the code's table, so a changed rule fails here).
An allowed call changes the account's rows; a refused one raises ``PermissionDenied`` (code
``forbidden``) naming the role, and changes nothing. A customer API key of the account may change
caps and alert rules with the ``spend:write`` scope, and nothing else. A support agent viewing
the account as its customer is refused every write, also when the agent is an admin of the
account. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

import core
from core.accounts import Actor, add_member
from core.accounts.invitations import invite_member, revoke_invitation
from core.accounts.members import change_role, remove_member
from core.customer_keys import create_customer_key, revoke_customer_key
from core.db import unit_of_work
from core.db.models import (
    AlertRule,
    AlertSlackWebhook,
    AlertWebhook,
    AutoRecharge,
    CustomerApiKey,
    Invitation,
    Membership,
    Notification,
    NotificationRead,
    PaymentCard,
    SpendCap,
    SpendSettings,
    TopUp,
)
from core.errors import NotFound, PermissionDenied
from core.money import credits_to_nanos
from core.payments import (
    Payments,
    buy_with_saved_card,
    cancel_checkout,
    remove_saved_card,
    save_auto_recharge,
    start_checkout,
)
from core.spend.alerts import (
    RuleInput,
    create_rule,
    create_webhook,
    delete_rule,
    delete_webhook,
    list_webhooks,
    roll_webhook_secret,
    set_rule_paused,
    update_rule,
)
from core.spend.caps import create_cap, delete_cap, set_cap, set_overdraft, update_cap
from core.spend.notifications import mark_read
from core.spend.slack_hooks import create_slack_webhook, delete_slack_webhook, list_slack_webhooks
from tests.core.payments.helpers import (
    ACCOUNT,
    BILLING,
    OUTSIDER,
    OWNER,
    PAGE_URL,
    VIEWER,
    MovableClock,
    make_account,
    sandbox,
)
from tests.core.payments.test_remove_card import _save as save_card

ADMIN = "ada@pay.test"
AGENT_MEMBER = "agent@meterline.test"  # a support agent who is also an admin of the account
AGENT = "sue@meterline.test"  # a support agent with no membership

ACTORS: dict[str, Actor] = {
    "owner": Actor.member(OWNER.email),
    "admin": Actor.member(ADMIN),
    "billing": Actor.member(BILLING.email),
    "viewer": Actor.member(VIEWER.email),
    "non-member": Actor.member(OUTSIDER.email),
    "view-as, member": Actor.viewing_as_customer(AGENT_MEMBER),
    "view-as, non-member": Actor.viewing_as_customer(AGENT),
    "support console": Actor.agent(AGENT),
    "system": Actor.system("tests"),
    "key, spend:write": Actor.customer_key(
        key_id=1, prefix="ml_live_test01", account_id=ACCOUNT, scopes=("usage:read", "spend:write")
    ),
    "key, usage:read": Actor.customer_key(
        key_id=2, prefix="ml_live_test02", account_id=ACCOUNT, scopes=("usage:read", "balance:read")
    ),
}

# What the refusal says for each actor refused: the role, or why there is none.
REFUSAL_NAMES = {
    "admin": "you are admin",
    "billing": "you are billing",
    "viewer": "you are viewer",
    "non-member": "you are not a member of this account",
    "view-as, member": "viewing this account as its customer",
    "view-as, non-member": "viewing this account as its customer",
    "support console": "a support agent cannot",
    "key, spend:write": "is not open to customer API keys",
    "key, usage:read": "customer API key",
}

EDITORS = {"owner", "admin", "system"}
PAYERS = {"owner", "admin", "billing", "system"}
MEMBERS = {"owner", "admin", "billing", "viewer", "system"}
SPEND_KEY = {"key, spend:write"}  # a customer API key with the spend:write scope

# The documented outcome: who may make each write (every other actor is refused).
ALLOWED: dict[str, set[str]] = {
    "create_rule": EDITORS | SPEND_KEY,
    "update_rule": EDITORS | SPEND_KEY,
    "set_rule_paused": EDITORS | SPEND_KEY,
    "delete_rule": EDITORS | SPEND_KEY,
    "create_webhook": EDITORS,
    "roll_webhook_secret": EDITORS,
    "delete_webhook": EDITORS,
    "create_slack_webhook": EDITORS,
    "delete_slack_webhook": EDITORS,
    "set_cap": EDITORS | {"support console"} | SPEND_KEY,
    "create_cap": EDITORS | {"support console"} | SPEND_KEY,
    "update_cap": EDITORS | {"support console"} | SPEND_KEY,
    "delete_cap": EDITORS | {"support console"} | SPEND_KEY,
    "set_overdraft": EDITORS,
    "mark_read": MEMBERS,
    "start_checkout": PAYERS,
    "buy_with_saved_card": PAYERS,
    "cancel_checkout": PAYERS,
    "save_auto_recharge": PAYERS,
    "remove_saved_card": PAYERS,
    "invite_member": EDITORS,
    "revoke_invitation": EDITORS,
    "change_role": EDITORS,
    "remove_member": EDITORS,
    "create_customer_key": PAYERS,
    "revoke_customer_key": PAYERS,
}
# Writes that take the acting person but are decided by something else than the table: accepting an
# invitation needs the invited email signed in (tests/core/accounts/test_invitations.py).
NOT_IN_THE_TABLE = {"accept_invitation"}


@dataclass(frozen=True)
class World:
    """One account with a member of each role and a notification; targets are made per call."""

    engine: Engine
    payments: Payments
    at: datetime
    notification_id: int


@pytest.fixture
def world(engine: Engine, now: datetime) -> World:
    make_account(engine, now)  # owner, billing, viewer
    with unit_of_work(engine, write=True) as session:
        add_member(session, account_id=ACCOUNT, email=ADMIN, role="admin", at=now)
        add_member(session, account_id=ACCOUNT, email=AGENT_MEMBER, role="admin", at=now)
        note = Notification(account_id=ACCOUNT, title="Low balance", body="Below 10 credits", created_at=now)
        session.add(note)
        session.flush()
        notification_id = note.id
    return World(engine, sandbox(engine, MovableClock(now)), now, notification_id)


SETUP = Actor.system("setup")


def _in_session(w: World, command: Callable[..., Any], actor: Actor, **fields: Any) -> Any:
    """A spend command in its own write transaction, as a page runs it."""
    with unit_of_work(w.engine, write=True) as session:
        return command(session, account_id=ACCOUNT, actor=actor, **fields)


def _rule(w: World, n: int) -> int:
    rule = RuleInput(name=f"Low {n}", kind="balance_below", threshold="10")
    return int(_in_session(w, create_rule, SETUP, rule=rule, at=w.at).rule_id)


def _webhook(w: World, n: int) -> int:
    """A fresh endpoint (the earlier ones removed: an account has at most 10)."""
    with unit_of_work(w.engine, write=True) as session:
        for hook in list_webhooks(session, ACCOUNT):
            delete_webhook(session, account_id=ACCOUNT, webhook_id=hook.webhook_id, actor=SETUP, at=w.at)
    return int(
        _in_session(w, create_webhook, SETUP, url=f"https://hooks.example/{n}", at=w.at).webhook.webhook_id
    )


def _slack_url(n: int) -> str:
    return f"https://hooks.slack.com/services/T0000/B0000/secret{n:04d}"


def _clear_slack(w: World) -> None:
    """Remove the account's Slack webhooks (an account has at most 10)."""
    with unit_of_work(w.engine, write=True) as session:
        for hook in list_slack_webhooks(session, ACCOUNT):
            delete_slack_webhook(
                session, account_id=ACCOUNT, slack_webhook_id=hook.slack_webhook_id, actor=SETUP, at=w.at
            )


def _slack(w: World, n: int) -> int:
    """A fresh Slack webhook to delete."""
    _clear_slack(w)
    made = _in_session(w, create_slack_webhook, SETUP, label=f"#setup{n}", url=_slack_url(900 + n), at=w.at)
    return int(made.slack_webhook.slack_webhook_id)


def _no_slack(w: World, n: int) -> None:
    _clear_slack(w)


def _cap(w: World, n: int) -> int:
    cap = _in_session(
        w, set_cap, SETUP, scope="project", scope_value=f"p{n}", limit="100", mode="hard", at=w.at
    )
    return int(cap.cap_id)


def _card(w: World, n: int) -> str:
    return save_card(w.payments, w.at)


def _checkout(w: World, n: int) -> int:
    view = start_checkout(
        w.engine,
        w.payments.provider,  # type: ignore[arg-type]
        w.payments.config,
        actor=SETUP,
        account_id=ACCOUNT,
        amount_cents=2_000,
        save_card=False,
        request_key=f"setup-{n}",
        page_url=PAGE_URL,
        clock=w.payments.clock,
    )
    assert view.state == "pending_payment"
    return view.top_up_id


def _customer_key(w: World, n: int) -> int:
    made = _in_session(w, create_customer_key, SETUP, name=f"setup {n}", scopes=["usage:read"], at=w.at)
    return int(made.key.key_id)


def _none(w: World, n: int) -> None:
    return None


def _invite(w: World, a: Actor, email: str, submission_id: str) -> Any:
    with unit_of_work(w.engine, write=True) as session:
        return invite_member(
            session,
            a,
            account_id=ACCOUNT,
            email=email,
            role="viewer",
            submission_id=submission_id,
            secret=b"secret",
            link_base="http://portal.test",
            at=w.at,
        )


def _invitation(w: World, n: int) -> int:
    return int(_invite(w, SETUP, f"invited{n}@pay.test", f"invite-setup-{n:04d}").invitation.invitation_id)


def _member(w: World, n: int) -> str:
    """A viewer to change or remove (not an owner: admins may change them too)."""
    email = f"member{n}@pay.test"
    with unit_of_work(w.engine, write=True) as session:
        add_member(session, account_id=ACCOUNT, email=email, role="viewer", at=w.at)
    return email


def _members_write(w: World, command: Callable[..., Any], actor: Actor, n: int, **fields: Any) -> Any:
    with unit_of_work(w.engine, write=True) as session:
        return command(
            session, actor, account_id=ACCOUNT, submission_id=f"members-form-{n:04d}", at=w.at, **fields
        )


@dataclass(frozen=True)
class Write:
    """A customer write: ``prepare`` makes what one call acts on (a rule to delete, a checkout to
    cancel), ``call`` makes the write as ``actor``; ``n`` differs on every call, so each allowed
    call changes something."""

    prepare: Callable[[World, int], Any]
    call: Callable[[World, Actor, Any, int], Any]


def _rule_input(n: int) -> RuleInput:
    return RuleInput(name=f"Spend {n}", kind="spend_above", threshold=str(50 + n))


WRITES: dict[str, Write] = {
    "create_rule": Write(
        _none, lambda w, a, _, n: _in_session(w, create_rule, a, rule=_rule_input(n), at=w.at)
    ),
    "update_rule": Write(
        _rule,
        lambda w, a, rule_id, n: _in_session(
            w, update_rule, a, rule_id=rule_id, rule=_rule_input(n), at=w.at
        ),
    ),
    "set_rule_paused": Write(
        _rule,
        lambda w, a, rule_id, n: _in_session(w, set_rule_paused, a, rule_id=rule_id, paused=True, at=w.at),
    ),
    "delete_rule": Write(
        _rule, lambda w, a, rule_id, n: _in_session(w, delete_rule, a, rule_id=rule_id, at=w.at)
    ),
    "create_webhook": Write(
        _none,
        lambda w, a, _, n: _in_session(w, create_webhook, a, url=f"https://hooks.example/new{n}", at=w.at),
    ),
    "roll_webhook_secret": Write(
        _webhook, lambda w, a, hook_id, n: _in_session(w, roll_webhook_secret, a, webhook_id=hook_id)
    ),
    "delete_webhook": Write(
        _webhook, lambda w, a, hook_id, n: _in_session(w, delete_webhook, a, webhook_id=hook_id, at=w.at)
    ),
    "create_slack_webhook": Write(
        _no_slack,
        lambda w, a, _, n: _in_session(
            w, create_slack_webhook, a, label=f"#ops{n}", url=_slack_url(n), at=w.at
        ),
    ),
    "delete_slack_webhook": Write(
        _slack,
        lambda w, a, hook_id, n: _in_session(w, delete_slack_webhook, a, slack_webhook_id=hook_id, at=w.at),
    ),
    "set_cap": Write(
        _none,
        lambda w, a, _, n: _in_session(
            w, set_cap, a, scope="account", limit=str(70 + n), mode="soft", at=w.at
        ),
    ),
    "create_cap": Write(
        _none,
        lambda w, a, _, n: _in_session(
            w, create_cap, a, scope="project", scope_value=f"new{n}", limit="5", mode="hard", at=w.at
        ),
    ),
    "update_cap": Write(
        _cap,
        lambda w, a, cap_id, n: _in_session(w, update_cap, a, cap_id=cap_id, limit=str(80 + n), at=w.at),
    ),
    "delete_cap": Write(_cap, lambda w, a, cap_id, n: _in_session(w, delete_cap, a, cap_id=cap_id, at=w.at)),
    "set_overdraft": Write(
        _none, lambda w, a, _, n: _in_session(w, set_overdraft, a, overdraft=str(25 + n), at=w.at)
    ),
    "mark_read": Write(  # each person has their own read mark
        _none, lambda w, a, _, n: _in_session(w, mark_read, a, up_to_id=w.notification_id, at=w.at)
    ),
    "start_checkout": Write(
        _none,
        lambda w, a, _, n: start_checkout(
            w.engine,
            w.payments.provider,  # type: ignore[arg-type]
            w.payments.config,
            actor=a,
            account_id=ACCOUNT,
            amount_cents=1_000,
            save_card=True,
            request_key=f"click-{n}",
            page_url=PAGE_URL,
            clock=w.payments.clock,
        ),
    ),
    "buy_with_saved_card": Write(
        _card,
        lambda w, a, card_id, n: buy_with_saved_card(
            w.engine,
            w.payments.provider,  # type: ignore[arg-type]
            w.payments.config,
            actor=a,
            account_id=ACCOUNT,
            amount_cents=1_000,
            card_id=card_id,
            request_key=f"click-{n}",
            page_url=PAGE_URL,
            clock=w.payments.clock,
        ),
    ),
    "cancel_checkout": Write(
        _checkout,
        lambda w, a, top_up_id, n: cancel_checkout(
            w.engine,
            w.payments.provider,  # type: ignore[arg-type]
            actor=a,
            account_id=ACCOUNT,
            top_up_id=top_up_id,
            clock=w.payments.clock,
        ),
    ),
    "save_auto_recharge": Write(
        _card,
        lambda w, a, card_id, n: save_auto_recharge(
            w.payments,
            actor=a,
            account_id=ACCOUNT,
            enabled=True,
            threshold_nanos=credits_to_nanos(5 + n),
            amount_cents=2_000,
            monthly_max_cents=10_000,
            card_id=card_id,
        ),
    ),
    "remove_saved_card": Write(
        _card,
        lambda w, a, card_id, n: remove_saved_card(w.payments, actor=a, account_id=ACCOUNT, card_id=card_id),
    ),
    "invite_member": Write(
        _none, lambda w, a, _, n: _invite(w, a, f"new{n}@pay.test", f"invite-form-{n:04d}")
    ),
    "revoke_invitation": Write(
        _invitation,
        lambda w, a, invitation_id, n: _members_write(
            w, revoke_invitation, a, n, invitation_id=invitation_id
        ),
    ),
    "change_role": Write(
        _member, lambda w, a, email, n: _members_write(w, change_role, a, n, email=email, role="billing")
    ),
    "remove_member": Write(
        _member, lambda w, a, email, n: _members_write(w, remove_member, a, n, email=email)
    ),
    "create_customer_key": Write(
        _none,
        lambda w, a, _, n: _in_session(
            w, create_customer_key, a, name=f"key {n}", scopes=["usage:read", "balance:read"], at=w.at
        ),
    ),
    "revoke_customer_key": Write(
        _customer_key,
        lambda w, a, key_id, n: _in_session(w, revoke_customer_key, a, key_id=key_id, at=w.at),
    ),
}


def _rows(engine: Engine) -> tuple[object, ...]:
    """Everything a customer write can change, as plain values."""
    with unit_of_work(engine) as session:
        return (
            session.execute(
                select(
                    AlertRule.id,
                    AlertRule.name,
                    AlertRule.paused,
                    AlertRule.deleted_at,
                    AlertRule.threshold_nanos,
                )
            ).all(),
            session.execute(select(AlertWebhook.id, AlertWebhook.secret, AlertWebhook.deleted_at)).all(),
            session.execute(select(AlertSlackWebhook.id, AlertSlackWebhook.deleted_at)).all(),
            session.execute(
                select(SpendCap.id, SpendCap.limit_nanos, SpendCap.mode, SpendCap.deleted_at)
            ).all(),
            session.execute(select(SpendSettings.account_id, SpendSettings.overdraft_nanos)).all(),
            session.execute(select(NotificationRead.email, NotificationRead.last_read_id)).all(),
            session.execute(select(TopUp.id, TopUp.state).order_by(TopUp.id)).all(),
            session.execute(select(PaymentCard.id, PaymentCard.removed_at)).all(),
            session.execute(
                select(AutoRecharge.account_id, AutoRecharge.enabled, AutoRecharge.threshold_nanos)
            ).all(),
            session.execute(
                select(Membership.user_id, Membership.role).order_by(
                    Membership.user_id, Membership.account_id
                )
            ).all(),
            session.execute(select(Invitation.id, Invitation.state).order_by(Invitation.id)).all(),
            session.execute(select(CustomerApiKey.id, CustomerApiKey.revoked_at)).all(),
        )


def _outcome(w: World, write: Write, who: str, n: int) -> str:
    """What one call did: "allowed" when it went through and changed something, "refused, naming: <the
    actor's role>" when it raised ``PermissionDenied`` (forbidden) and changed nothing; else what it did."""
    target = write.prepare(w, n)
    before = _rows(w.engine)
    try:
        write.call(w, ACTORS[who], target, n)
    except PermissionDenied as refused:
        if _rows(w.engine) != before:
            return f"refused, but wrote: {refused.message}"
        named = REFUSAL_NAMES.get(who)
        if refused.code == "forbidden" and named and named in refused.message:
            return f"refused, naming: {named}"
        return f"refused ({refused.code}): {refused.message}"
    return "allowed" if _rows(w.engine) != before else "allowed, but changed nothing"


@pytest.mark.parametrize("name", list(WRITES))
def test_each_write_as_each_actor_has_the_documented_outcome(world: World, name: str) -> None:
    outcomes = {who: _outcome(world, WRITES[name], who, n) for n, who in enumerate(ACTORS)}
    assert outcomes == {
        who: "allowed" if who in ALLOWED[name] else f"refused, naming: {REFUSAL_NAMES[who]}" for who in ACTORS
    }


def _customer_writes() -> Iterator[str]:
    """Every function in the core that takes the acting ``Actor``: the customer writes."""
    for module_info in pkgutil.walk_packages(core.__path__, "core."):
        module = importlib.import_module(module_info.name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or function.__module__ != module.__name__:
                continue
            actor = inspect.signature(function).parameters.get("actor")
            if actor is not None and actor.annotation in ("Actor", Actor) and name != "require_permission":
                yield name


def test_the_table_covers_every_customer_write_in_the_core() -> None:
    assert sorted(set(_customer_writes())) == sorted(set(WRITES) | NOT_IN_THE_TABLE)


def test_a_customer_key_on_another_account_is_answered_as_an_account_that_does_not_exist(
    world: World,
) -> None:
    other = Actor.customer_key(
        key_id=3, prefix="ml_live_test03", account_id="acc_other", scopes=("spend:write",)
    )
    before = _rows(world.engine)
    with pytest.raises(NotFound) as refused:
        WRITES["create_cap"].call(world, other, None, 0)
    assert refused.value.field == "account_id" and _rows(world.engine) == before
