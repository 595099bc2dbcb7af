"""Build ledger histories for the roll-forward tests: real top-ups (paid, refunded, disputed),
grants, usage, expiry and support voids, through the services that post them in production."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.accounts import create_account
from core.db import unit_of_work
from core.db.models import TopUp
from core.ledger import expire_due_grants, grant_credits, lock_accounts, post_usage, void_grant
from core.payments.position import DisputeFact
from core.payments.settle import PaymentReceived, apply_dispute, apply_refund, fulfill_top_up

CREDIT = 10**9
NANOS_PER_CENT = CREDIT // 100
_TOP_UPS = itertools.count(1)


@dataclass
class History:
    """One account's story as it is being written, with the clock it has reached."""

    engine: Engine
    account_id: str
    clock: datetime
    started: datetime = field(init=False)
    top_ups: list[tuple[int, int]] = field(default_factory=list)  # (top-up id, cents)
    refunded_cents: dict[int, int] = field(default_factory=dict)
    grants: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started = self.clock
        with unit_of_work(self.engine, write=True) as session:
            create_account(session, account_id=self.account_id, name=self.account_id, at=self.clock)

    def buy(self, cents: int, credits_nanos: int | None = None) -> int:
        """A checkout top-up paid now (``credits_nanos`` other than the price's: a bonus pack)."""
        credits = cents * NANOS_PER_CENT if credits_nanos is None else credits_nanos
        intent = f"pi_rf_{self.account_id}_{next(_TOP_UPS)}"
        with unit_of_work(self.engine, write=True) as session:
            top_up = TopUp(
                account_id=self.account_id,
                kind="checkout",
                provider="stripe",
                state="pending_payment",
                amount_cents=cents,
                currency="usd",
                credits_nanos=credits,
                request_key=intent,
                payment_intent_id=intent,
                access_token="t",
                created_by="finance@rf.test",
                created_at=self.clock,
                updated_at=self.clock,
            )
            session.add(top_up)
            session.flush()
            top_up_id = top_up.id
            fulfill_top_up(
                session,
                top_up_id=top_up_id,
                payment=PaymentReceived(cents, "usd", intent, via="test"),
                at=self.clock,
            )
            grant_id = top_up.grant_id
        self.top_ups.append((top_up_id, cents))
        if grant_id is not None:
            self.grants.append(grant_id)  # support may void a purchase's grant too
        return top_up_id

    def refund(self, index: int, more_cents: int) -> None:
        """Refund ``more_cents`` more of the ``index``-th purchase (the provider's total grows)."""
        if not self.top_ups:
            return
        top_up_id, cents = self.top_ups[index % len(self.top_ups)]
        total = min(cents, self.refunded_cents.get(top_up_id, 0) + more_cents)
        self.refunded_cents[top_up_id] = total
        with unit_of_work(self.engine, write=True) as session:
            apply_refund(session, top_up_id=top_up_id, refunded_cents_total=total, at=self.clock)

    def dispute(self, index: int, cents: int, status: str, version: int) -> None:
        if not self.top_ups:
            return
        top_up_id, amount = self.top_ups[index % len(self.top_ups)]
        fact = DisputeFact(f"dp_{top_up_id}", min(cents, amount), status, version)
        with unit_of_work(self.engine, write=True) as session:
            apply_dispute(session, top_up_id=top_up_id, dispute=fact, at=self.clock)

    def grant(
        self, credits_nanos: int, source: str, expires_in: timedelta | None = None, cents: int | None = None
    ) -> None:
        with unit_of_work(self.engine, write=True) as session:
            view = grant_credits(
                session,
                account_id=self.account_id,
                amount_nanos=credits_nanos,
                source=source,
                at=self.clock,
                expires_at=None if expires_in is None else self.clock + expires_in,
                cost_basis_cents=cents,
            )
        self.grants.append(view.grant_id)

    def use(self, credits_nanos: int) -> None:
        with unit_of_work(self.engine, write=True) as session:
            account = lock_accounts(session, [self.account_id])[self.account_id]
            post_usage(
                session, account=account, amount_nanos=credits_nanos, at=self.clock, reference="test:rf"
            )

    def void(self, index: int) -> None:
        if not self.grants:
            return
        with unit_of_work(self.engine, write=True) as session:
            void_grant(
                session,
                grant_id=self.grants[index % len(self.grants)],
                at=self.clock,
                reason="granted by mistake",
                actor="agent@rf.test",
            )

    def wait(self, delta: timedelta) -> None:
        """Time passes; the expiry job runs."""
        self.clock += delta
        with unit_of_work(self.engine, write=True) as session:
            account = lock_accounts(session, [self.account_id])[self.account_id]
            expire_due_grants(session, at=self.clock, account=account)


def months_between(first: datetime, last: datetime) -> list[str]:
    """Every calendar month (UTC, "YYYY-MM") from ``first``'s to ``last``'s."""
    year, month = first.year, first.month
    months = []
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
