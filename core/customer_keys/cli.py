"""``meterline keys …``: customer API keys from the command line (the operator acts as the system).

    meterline keys create --account ACC --name NAME [--scope SCOPE ...] [--expires YYYY-MM-DD]
    meterline keys revoke KEY_ID
    meterline keys list --account ACC

``create`` prints the new secret as its last line (``tail -n 1`` takes it), the only time it is
shown; without ``--scope`` the key gets ``usage:read`` and ``balance:read``. ``--expires`` is the
last day the key works (it stops at 00:00 UTC the day after). Both writes are audited as the
``cli`` actor.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta

from core.accounts.permissions import Actor
from core.accounts.service import find_account, shown_id
from core.clock import system_clock
from core.customer_keys.service import (
    DEFAULT_SCOPES,
    SCOPES,
    CustomerKeyView,
    create_customer_key,
    list_customer_keys,
    revoke_customer_key,
)
from core.db import make_engine, unit_of_work
from core.errors import NotFound, ValidationError

CLI_ACTOR = Actor.system("cli")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"--expires takes a date as YYYY-MM-DD, not {text[:40]!r}", field="expires"
        ) from None


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def _expiry(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return f"{_when(moment)} (works through {(moment - timedelta(days=1)):%Y-%m-%d})"


def _line(key: CustomerKeyView, at: datetime) -> str:
    return (
        f"{key.key_id:>6}  {key.shown:<16} {key.status(at):<8} {key.name}  "
        f"[{', '.join(key.scopes)}]  created {_when(key.created_at)} by {key.created_by}, "
        f"expires {_expiry(key.expires_at)}, last used {_when(key.last_used_at)}"
        + (f", revoked {_when(key.revoked_at)} by {key.revoked_by}" if key.revoked_at else "")
    )


def _create(args: argparse.Namespace) -> int:
    expires_on = _day(args.expires) if args.expires else None
    at = system_clock()
    engine = make_engine()
    try:
        with unit_of_work(engine, write=True) as session:
            made = create_customer_key(
                session,
                actor=CLI_ACTOR,
                account_id=args.account,
                name=args.name,
                scopes=args.scope or DEFAULT_SCOPES,
                expires_on=expires_on,
                at=at,
            )
    finally:
        engine.dispose()
    key = made.key
    print(f"created customer API key {key.key_id} ({key.shown}) for account {key.account_id}: {key.name}")
    print(f"scopes: {', '.join(key.scopes)}; expires: {_expiry(key.expires_at)}")
    print("the secret follows; store it now, it is not shown again:")
    print(made.secret)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    if not args.key_id.isascii() or not args.key_id.isdigit() or len(args.key_id) > 18:
        raise NotFound(f"no customer API key {args.key_id[:40]!r}", field="key_id")
    engine = make_engine()
    try:
        with unit_of_work(engine, write=True) as session:
            key = revoke_customer_key(session, actor=CLI_ACTOR, key_id=int(args.key_id), at=system_clock())
    finally:
        engine.dispose()
    print(
        f"revoked customer API key {key.key_id} ({key.shown}) of account {key.account_id} "
        f"at {_when(key.revoked_at)}"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    at = system_clock()
    engine = make_engine()
    try:
        with unit_of_work(engine) as session:
            if find_account(session, args.account) is None:
                raise NotFound(f"account {shown_id(args.account)} does not exist", field="account")
            keys = list_customer_keys(session, args.account)
    finally:
        engine.dispose()
    if not keys:
        print(f"account {args.account} has no customer API keys")
        return 0
    print(f"{'id':>6}  {'key':<16} {'status':<8} name  [scopes] …")
    for key in keys:
        print(_line(key, at))
    return 0


def add_key_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``meterline keys create | revoke | list``."""
    keys = commands.add_parser("keys", help="customer API keys (for the Usage & Cost API)")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key; prints its secret as the last line")
    create.add_argument("--account", required=True, help="the account id, e.g. acc_acme")
    create.add_argument("--name", required=True, help="what the key is for, e.g. 'Finance export'")
    create.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        help=f"repeat for several (default: {' '.join(DEFAULT_SCOPES)})",
    )
    create.add_argument("--expires", metavar="YYYY-MM-DD", help="the last day it works (UTC); default: never")
    create.set_defaults(run=_create)
    revoke = actions.add_parser("revoke", help="revoke a key (it stops working at once)")
    revoke.add_argument("key_id", help="the key's id, from `meterline keys list`")
    revoke.set_defaults(run=_revoke)
    listing = actions.add_parser("list", help="an account's keys: prefix, name, scopes, dates, status")
    listing.add_argument("--account", required=True)
    listing.set_defaults(run=_list)
