"""``meterline payments …``: reconcile stuck top-ups, list what support must look at, play the sandbox.

    meterline payments reconcile [--older-than MIN]   settle open top-ups by asking the provider
    meterline payments alerts [--account ID]          disputes, refunds of spent credits, mismatches
    meterline payments sandbox refund TOP_UP [--amount DOLLARS]
    meterline payments sandbox dispute TOP_UP [--close won|lost]

The sandbox commands do what Stripe's dashboard does to a payment (refund it, or have the
bank dispute it), so the whole story can be tried without Stripe; the webhook handler
then does what it would do for Stripe's events.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from core.db import make_engine, unit_of_work
from core.db.models import AuditLog, TopUp
from core.display import format_datetime
from core.errors import NotFound, ValidationError
from core.payments.config import dollars_to_cents
from core.payments.notify import ALERT_PREFIX
from core.payments.reconcile import reconcile
from core.payments.runtime import payments_from_env, sandbox_payments
from core.payments.sandbox import SandboxProvider


def _reconcile(args: argparse.Namespace) -> int:
    engine = make_engine()
    try:
        payments = payments_from_env(engine)
        if payments.provider is None:
            print("payments are not configured (set STRIPE_API_KEY): nothing to reconcile")
            return 0
        if isinstance(payments.provider, SandboxProvider):  # its events delivered before the command exits
            payments = sandbox_payments(engine, payments.config, delivery="sync")
        report = reconcile(payments, stale_after=timedelta(minutes=args.older_than))
    finally:
        engine.dispose()
    print(
        f"checked {report.checked:,} open top-up(s) with {payments.provider.name}: "
        f"{len(report.changed):,} settled or changed, {report.still_open:,} still open"
    )
    for line in report.changed:
        print(f"  {line}")
    for line in report.errors:
        print(f"  ERROR: {line}")
    return 1 if report.errors else 0


def _alerts(args: argparse.Namespace) -> int:
    engine = make_engine()
    try:
        with unit_of_work(engine) as session:
            stmt = select(AuditLog).where(AuditLog.action.startswith(ALERT_PREFIX))
            if args.account:
                stmt = stmt.where(AuditLog.account_id == args.account)
            rows = session.scalars(stmt.order_by(AuditLog.id.desc()).limit(args.limit)).all()
    finally:
        engine.dispose()
    if not rows:
        print("no payment alerts")
    for row in rows:
        kind = row.action.removeprefix(ALERT_PREFIX)
        print(f"{format_datetime(row.created_at, 'UTC')}  {row.account_id}  {kind}: {row.reason}")
    return 0


def _sandbox_intent(engine: Any, top_up_id: int) -> str:
    with unit_of_work(engine) as session:
        top_up = session.get(TopUp, top_up_id)
        if top_up is None:
            raise NotFound(f"top-up {top_up_id} does not exist", field="top_up")
        if top_up.provider != "sandbox" or not top_up.payment_intent_id:
            raise ValidationError(f"top-up {top_up_id} was not paid in the sandbox", field="top_up")
        return top_up.payment_intent_id


def _sandbox(args: argparse.Namespace) -> int:
    engine = make_engine()
    try:
        payments = payments_from_env(engine)
        if not isinstance(payments.provider, SandboxProvider):
            raise ValidationError("payments do not run in the sandbox here (STRIPE_API_KEY is set)")
        payments = sandbox_payments(engine, payments.config, delivery="sync")  # settle before exiting
        provider = payments.provider
        assert isinstance(provider, SandboxProvider)
        intent_id = _sandbox_intent(engine, args.top_up)
        if args.action == "refund":
            cents = None if args.amount is None else dollars_to_cents(args.amount)
            provider.refund(intent_id, cents)
        else:
            provider.dispute(intent_id, close_as=args.close)
        with unit_of_work(engine) as session:
            top_up = session.get(TopUp, args.top_up)
            assert top_up is not None
            print(f"top-up #{top_up.id}: {top_up.state}; {top_up.note or 'no note'}")
    finally:
        engine.dispose()
    return 0


def add_payment_commands(commands: Any) -> None:
    """Register ``meterline payments …`` on the top-level sub-parsers."""
    payments = commands.add_parser("payments", help="top-ups and payments").add_subparsers(
        dest="action", required=True
    )
    rec = payments.add_parser("reconcile", help="settle top-ups stuck open (a lost webhook) by asking Stripe")
    rec.add_argument(
        "--older-than",
        type=float,
        default=10.0,
        metavar="MIN",
        help="only top-ups open this long",
    )
    rec.set_defaults(run=_reconcile)
    alerts = payments.add_parser(
        "alerts", help="what support must look at (disputes, refunds of used credits)"
    )
    alerts.add_argument("--account", help="only this account")
    alerts.add_argument("--limit", type=int, default=50)
    alerts.set_defaults(run=_alerts)
    sandbox = payments.add_parser("sandbox", help="act on a sandbox payment as Stripe's dashboard would")
    actions = sandbox.add_subparsers(dest="action", required=True)
    refund = actions.add_parser("refund", help="refund a sandbox top-up (all, or --amount dollars)")
    refund.add_argument("top_up", type=int)
    refund.add_argument("--amount", help="dollars to refund (default: what is left)")
    refund.set_defaults(run=_sandbox)
    dispute = actions.add_parser("dispute", help="the bank disputes a sandbox top-up (or --close won|lost)")
    dispute.add_argument("top_up", type=int)
    dispute.add_argument("--close", choices=("won", "lost"))
    dispute.set_defaults(run=_sandbox)
