"""Auto-recharge: the settings, one recharge run, and the trigger after ingestion.

A run locks the account's settings row, decides with ``recharge_policy.decide`` and, if
it goes, creates the top-up and marks it in flight in the same transaction (so at most
one recharge per account is ever in flight), then charges the saved card off-session
outside any transaction and settles the answer like any other payment.

The trigger (``RechargeTrigger``) runs after an ingestion batch has committed: the request
thread lists the batch's account ids and hands them to a small background pool, where one
query finds those that crossed their threshold and their recharges run. The
periodic job (``sweep_auto_recharges``) catches whatever a trigger missed (a restart, the
CLI's ``ingest``, the end of a backoff).
"""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.permissions import AUTO_RECHARGE_EDIT, Actor, require_permission
from core.db import unit_of_work
from core.db.models import Account, AutoRecharge, PaymentCard, TopUp
from core.errors import NotFound, ValidationError
from core.money import cents_to_nanos
from core.payments import states
from core.payments.cards import CARD_REMOVED
from core.payments.notify import audit, notify_customer
from core.payments.provider import ChargeRequest, ProviderError
from core.payments.recharge_policy import Decision, check_settings, decide
from core.payments.runtime import Payments
from core.payments.settle import apply_payment, lock_recharge_settings
from core.payments.top_ups import CURRENCY, return_url
from core.payments.views import AutoRechargeView, auto_recharge_view, recharge_snapshot

log = logging.getLogger("meterline.payments")

MAX_QUEUED = 100  # batches waiting for the pool's check; past this the periodic sweep catches up
TRIGGER_MAX_ACCOUNTS = 1_000  # a batch naming more accounts than this checks them all at once


@dataclass(frozen=True)
class RechargeRun:
    account_id: str
    decision: Decision
    top_up_id: int | None = None
    state: str | None = None


def save_auto_recharge(
    payments: Payments,
    *,
    actor: Actor,
    account_id: str,
    enabled: bool,
    threshold_nanos: int,
    amount_cents: int,
    monthly_max_cents: int,
    card_id: str | None,
    mode: str = "fixed",
    target_nanos: int | None = None,
) -> AutoRechargeView:
    """Turn auto-recharge on or off and set its guardrails (owners, admins and billing members).

    ``mode`` "fixed" buys ``amount_cents`` each time; "target" buys what brings the balance back to
    ``target_nanos`` (greater than the threshold), and keeps ``amount_cents`` only as the fixed
    amount to offer again (the smallest top-up when it would not fit the monthly maximum)."""
    at = payments.clock()
    limits = payments.config.limits
    with unit_of_work(payments.engine, write=True) as session:
        require_permission(session, actor, account_id=account_id, permission=AUTO_RECHARGE_EDIT)
        account = session.get(Account, account_id)
        assert account is not None
        check_settings(
            threshold_nanos=threshold_nanos,
            amount_cents=amount_cents,
            monthly_max_cents=monthly_max_cents,
            limits=limits,
            balance_nanos=account.balance_nanos if enabled else threshold_nanos,
            mode=mode,
            target_nanos=target_nanos,
        )
        fits = limits.min_cents <= amount_cents <= min(limits.max_cents, monthly_max_cents)
        if mode == "target" and not fits:  # kept only to offer again: any amount the row accepts
            amount_cents = limits.min_cents
        if enabled and card_id is None:
            raise ValidationError("choose the saved card auto-recharge pays with", field="card")
        if card_id is not None:
            card = session.get(PaymentCard, card_id)
            if card is None or card.account_id != account_id or card.removed_at is not None:
                raise NotFound("that card is not saved for this account", field="card")
        settings = lock_recharge_settings(session, account_id)
        if settings is None:
            settings = AutoRecharge(
                account_id=account_id,
                failures=0,
                last_decision="",
                last_decision_code="",
                created_at=at,
                updated_by=actor.email,
                updated_at=at,
            )
            session.add(settings)
        turned_on = enabled and not settings.enabled
        settings.enabled = enabled
        settings.threshold_nanos = threshold_nanos
        settings.amount_cents = amount_cents
        settings.mode = mode
        settings.target_nanos = target_nanos if mode == "target" else None
        settings.monthly_max_cents = monthly_max_cents
        settings.card_id = card_id
        settings.updated_by = actor.email
        settings.updated_at = at
        if turned_on:  # a fresh start: the customer fixed the card or accepts the risk again
            settings.failures = 0
            settings.next_attempt_at = None
        if settings.last_decision_code == CARD_REMOVED:  # the settings now say what holds
            settings.last_decision_code = ""
        audit(
            session,
            actor=actor.email,
            action="payments.auto_recharge_saved",
            account_id=account_id,
            reason="auto-recharge " + ("on" if enabled else "off"),
            at=at,
            threshold_nanos=threshold_nanos,
            amount_cents=amount_cents,
            mode=mode,
            target_nanos=target_nanos if mode == "target" else None,
            monthly_max_cents=monthly_max_cents,
            card_id=card_id,
        )
        session.flush()
        return auto_recharge_view(
            session, account_id, at=at, max_failures=payments.config.recharge_max_failures, limits=limits
        )


def run_auto_recharge(payments: Payments, *, account_id: str, trigger: str = "ingestion") -> RechargeRun:
    """Recharge the account now if every guardrail allows it; what was decided, and the top-up made."""
    provider = payments.provider
    at = payments.clock()
    with unit_of_work(payments.engine, write=True) as session:
        settings = lock_recharge_settings(session, account_id)
        # The balance is read once the settings row is locked: the amount "back to the target" needs
        # is decided on the balance as it is now, by the one run that holds the lock.
        account = session.get(Account, account_id, populate_existing=True)
        if settings is None or account is None:
            return RechargeRun(account_id, Decision(False, "off", "Auto-recharge is not set up."))
        snapshot = recharge_snapshot(
            session,
            settings,
            account,
            at=at,
            max_failures=payments.config.recharge_max_failures,
            limits=payments.config.limits,
        )
        decision = decide(snapshot, at)
        if decision.go and provider is None:
            decision = Decision(False, "not_configured", "Payments are not configured on this server.")
        if not decision.go:
            _remember(session, settings, decision, at)
            return RechargeRun(account_id, decision)
        card = session.get(PaymentCard, settings.card_id)
        assert card is not None and provider is not None
        amount_cents = decision.amount_cents or settings.amount_cents
        top_up = TopUp(
            account_id=account_id,
            kind="auto_recharge",
            provider=provider.name,
            state=states.CREATED,
            amount_cents=amount_cents,
            currency=CURRENCY,
            credits_nanos=cents_to_nanos(amount_cents),
            request_key=f"auto:{uuid.uuid4().hex}",
            customer_id=card.customer_id,
            payment_method_id=card.id,
            card_brand=card.brand,
            card_last4=card.last4,
            access_token=secrets.token_urlsafe(24),
            created_by="auto-recharge",
            note=decision.message,
            created_at=at,
            updated_at=at,
        )
        session.add(top_up)
        session.flush()
        settings.in_flight_top_up_id = top_up.id
        settings.last_decision = f"{decision.message} (top-up #{top_up.id}, {trigger})"
        settings.last_decision_code = decision.code
        settings.last_decision_at = at
        request = charge_request(top_up, public_url=payments.config.public_url)
    top_up_id = request.top_up_id
    try:
        payment = provider.charge_saved_card(request)
    except ProviderError as error:
        log.warning(
            "auto-recharge of %s: the provider did not answer (%s); reconciliation retries", account_id, error
        )
        return RechargeRun(account_id, decision, top_up_id, states.CREATED)
    with unit_of_work(payments.engine, write=True) as session:
        apply_payment(session, top_up_id=top_up_id, payment=payment, at=payments.clock(), via="auto-recharge")
        state = session.scalar(select(TopUp.state).where(TopUp.id == top_up_id))
    return RechargeRun(account_id, decision, top_up_id, state)


def charge_request(top_up: TopUp, *, public_url: str) -> ChargeRequest:
    """The off-session charge of an auto-recharge (rebuilt the same way when reconciliation retries it)."""
    assert top_up.customer_id and top_up.payment_method_id
    return ChargeRequest(
        top_up_id=top_up.id,
        account_id=top_up.account_id,
        customer_id=top_up.customer_id,
        payment_method_id=top_up.payment_method_id,
        amount_cents=top_up.amount_cents,
        currency=top_up.currency,
        off_session=top_up.kind == "auto_recharge",
        return_url=return_url(f"{public_url}/buy_credits", top_up.id),
        idempotency_key=f"topup:{top_up.id}:payment",
    )


def _remember(session: Session, settings: AutoRecharge, decision: Decision, at: Any) -> None:
    """Keep the latest "why not" for the page; tell the customer once per reason (not once per batch)."""
    if decision.code == "above_threshold" or settings.last_decision == decision.message:
        return
    repeated = settings.last_decision_code == decision.code
    settings.last_decision = decision.message
    settings.last_decision_code = decision.code
    settings.last_decision_at = at
    if repeated:
        return
    if decision.code == "monthly_max":
        notify_customer(
            session,
            account_id=settings.account_id,
            title="Auto-recharge paused: monthly maximum reached",
            body=decision.message,
            at=at,
        )
    if decision.code == "too_small":
        notify_customer(
            session,
            account_id=settings.account_id,
            title="Auto-recharge cannot cover the balance",
            body=decision.message,
            at=at,
        )


def accounts_to_recharge(session: Session, account_ids: Collection[str] | None, *, at: Any) -> list[str]:
    """Accounts (of ``account_ids``, or all) whose balance is under their threshold and may recharge now.

    One indexed query on the small settings table joined to accounts: cheap enough to run
    after every ingestion batch. ``decide`` still has the last word, under the lock.
    """
    stmt = (
        select(AutoRecharge.account_id)
        .join(Account, Account.id == AutoRecharge.account_id)
        .where(
            AutoRecharge.enabled.is_(True),
            AutoRecharge.in_flight_top_up_id.is_(None),
            Account.balance_nanos < AutoRecharge.threshold_nanos,
            (AutoRecharge.next_attempt_at.is_(None)) | (AutoRecharge.next_attempt_at <= at),
        )
        .order_by(AutoRecharge.account_id)
    )
    if account_ids is not None:
        if not account_ids:
            return []
        stmt = stmt.where(AutoRecharge.account_id.in_(sorted(account_ids)))
    return list(session.scalars(stmt))


def sweep_auto_recharges(payments: Payments) -> list[RechargeRun]:
    """Run every recharge that is due (the periodic job)."""
    if payments.provider is None:
        return []
    with unit_of_work(payments.engine) as session:
        due = accounts_to_recharge(session, None, at=payments.clock())
    return [
        run_auto_recharge(payments, account_id=account_id, trigger="periodic check") for account_id in due
    ]


def accounts_in(raw_events: Iterable[Any]) -> set[str] | None:
    """The account ids a raw ingestion batch names (None: too many to list, check them all)."""
    found: set[str] = set()
    for event in raw_events:
        if isinstance(event, dict):
            account_id = event.get("account_id")
            if isinstance(account_id, str) and 0 < len(account_id) <= 64:
                found.add(account_id)
                if len(found) > TRIGGER_MAX_ACCOUNTS:
                    return None
    return found


class RechargeTrigger:
    """Called after an ingestion batch commits: check its accounts and recharge the due ones.

    With an executor (the server) the request thread only lists the batch's account ids and
    hands them over; the check (one query) and the recharges run on the pool. Without one
    (tests, scripts) it all runs at once, in the caller's thread.
    """

    def __init__(
        self,
        payments_provider: Callable[[], Payments],
        *,
        executor: ThreadPoolExecutor | None = None,
        run: Callable[[Payments, str], object] | None = None,
    ) -> None:
        self._payments = payments_provider
        self._executor = executor
        self._run = run or (lambda payments, account_id: run_auto_recharge(payments, account_id=account_id))
        self._running: set[str] = set()
        self._queued = 0
        self._lock = threading.Lock()

    def __call__(self, raw_events: Iterable[Any]) -> list[str]:
        """Hand the batch's accounts over (or, without a pool, recharge them now). Never raises."""
        try:
            accounts = accounts_in(raw_events)
            if self._executor is None:
                return self.check(accounts)
            with self._lock:
                if self._queued >= MAX_QUEUED:
                    return []  # a backlog: the periodic sweep catches up
                self._queued += 1
            self._executor.submit(self._check_queued, accounts)
        except Exception:  # the batch is in: a failed check must not turn its answer into an error
            log.exception("auto-recharge check after ingestion failed; the periodic sweep will retry")
        return []

    def check(self, accounts: set[str] | None) -> list[str]:
        """Recharge those of ``accounts`` that are due; the accounts a recharge ran for."""
        payments = self._payments()
        if payments.provider is None or accounts == set():
            return []
        with unit_of_work(payments.engine) as session:
            due = accounts_to_recharge(session, accounts, at=payments.clock())
        started = []
        for account_id in due:
            with self._lock:
                if account_id in self._running:
                    continue  # another worker is on it
                self._running.add(account_id)
            try:
                self._run(payments, account_id)
                started.append(account_id)
            except Exception:
                log.exception("auto-recharge of %s failed; the periodic sweep will retry", account_id)
            finally:
                with self._lock:
                    self._running.discard(account_id)
        return started

    def _check_queued(self, accounts: set[str] | None) -> None:
        try:
            self.check(accounts)
        except Exception:
            log.exception("auto-recharge check after ingestion failed; the periodic sweep will retry")
        finally:
            with self._lock:
                self._queued -= 1
