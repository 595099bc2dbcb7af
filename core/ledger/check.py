"""The ledger check: proves DESIGN.md invariants 1 and 5 against the database.

1. Each account's balance equals the sum of its entries (and each entry's
   ``balance_after`` equals the running sum); the entries without a grant (the
   deficit) sum to zero or less. Each grant's remaining amount equals the sum of its
   entries, stays within 0..amount, and is zero once the grant is expired or voided;
   every entry on a grant belongs to the grant's account.
5. Nothing accepted is lost: each batch's accepted count equals its stored events,
   the usage debits of a batch equal the rated amounts of its events, and the
   hourly and daily rollups equal the raw events they summarise. Events of an archived
   month (``core.usage.archive``) count through their totals in ``archived_event_totals``.

The queries only agree with each other when they read one snapshot (invariant 9):
``run_ledger_check`` opens one (REPEATABLE READ, READ ONLY on PostgreSQL; a single
read transaction on SQLite, which in WAL mode is one snapshot). ``check_ledger`` is
for callers that already hold one; under READ COMMITTED with writers running it
reports problems that are not there.

A grant past its ``expires_at`` that the expiry job has not swept yet is not a
problem (the job runs every minute, and the next debit of the account expires it
first); only a grant marked expired that still holds credits is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.db.engine import is_postgres, unit_of_work
from core.db.models import (
    Account,
    ArchivedEventTotal,
    CreditGrant,
    IngestBatch,
    LedgerEntry,
    UsageEvent,
    UsageRollupDaily,
    UsageRollupHourly,
)
from core.ledger import reasons

MAX_PROBLEMS = 200


@dataclass
class LedgerCheckReport:
    accounts_checked: int = 0
    grants_checked: int = 0
    batches_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def _check_balances(session: Session, report: LedgerCheckReport) -> None:
    sums = dict(
        session.execute(
            select(LedgerEntry.account_id, func.sum(LedgerEntry.amount_nanos)).group_by(
                LedgerEntry.account_id
            )
        ).all()
    )
    for account_id, balance in session.execute(select(Account.id, Account.balance_nanos)):
        report.accounts_checked += 1
        total = int(sums.get(account_id) or 0)
        if total != balance:
            report.add(f"account {account_id}: balance {balance} != sum of entries {total}")
    running = func.sum(LedgerEntry.amount_nanos).over(
        partition_by=LedgerEntry.account_id, order_by=LedgerEntry.id
    )
    sub = select(
        LedgerEntry.id, LedgerEntry.account_id, LedgerEntry.balance_after_nanos, running.label("running")
    ).subquery()
    for entry_id, account_id, after, run in session.execute(
        select(sub).where(sub.c.balance_after_nanos != sub.c.running).limit(MAX_PROBLEMS)
    ):
        report.add(f"account {account_id}: entry {entry_id} says balance {after}, running sum is {run}")
    deficit = func.sum(LedgerEntry.amount_nanos)
    for account_id, total in session.execute(
        select(LedgerEntry.account_id, deficit)
        .where(LedgerEntry.grant_id.is_(None))
        .group_by(LedgerEntry.account_id)
        .having(deficit > 0)
        .order_by(LedgerEntry.account_id)
        .limit(MAX_PROBLEMS)
    ):
        report.add(f"account {account_id}: deficit {int(total)} is positive (must be 0 or less)")


def _check_grants(session: Session, report: LedgerCheckReport) -> None:
    sums = dict(
        session.execute(
            select(LedgerEntry.grant_id, func.sum(LedgerEntry.amount_nanos))
            .where(LedgerEntry.grant_id.is_not(None))
            .group_by(LedgerEntry.grant_id)
        ).all()
    )
    for grant_id, remaining, amount, expired in session.execute(
        select(CreditGrant.id, CreditGrant.remaining_nanos, CreditGrant.amount_nanos, CreditGrant.expired)
    ):
        report.grants_checked += 1
        total = int(sums.get(grant_id) or 0)
        if total != remaining:
            report.add(f"grant {grant_id}: remaining {remaining} != sum of entries {total}")
        if remaining < 0 or remaining > amount:
            report.add(f"grant {grant_id}: remaining {remaining} outside 0..{amount}")
        if expired and remaining != 0:
            report.add(f"grant {grant_id}: expired, yet {remaining} remaining")
    for entry_id, account_id, grant_id, owner in session.execute(
        select(LedgerEntry.id, LedgerEntry.account_id, LedgerEntry.grant_id, CreditGrant.account_id)
        .join(CreditGrant, CreditGrant.id == LedgerEntry.grant_id)
        .where(LedgerEntry.account_id != CreditGrant.account_id)
        .order_by(LedgerEntry.id)
        .limit(MAX_PROBLEMS)
    ):
        report.add(
            f"grant {grant_id}: entry {entry_id} is on account {account_id}, the grant belongs to {owner}"
        )


def _archived(session: Session, *keys: Any) -> list[Any]:
    """Sums of ``archived_event_totals`` grouped by ``keys``: (keys..., quantity, amount, events)."""
    total = ArchivedEventTotal
    return list(
        session.execute(
            select(
                *keys, func.sum(total.quantity), func.sum(total.amount_nanos), func.sum(total.event_count)
            ).group_by(*keys)
        )
    )


def _check_batches(session: Session, report: LedgerCheckReport) -> None:
    stored: dict[int, int] = defaultdict(int)
    for batch_id, count in session.execute(
        select(UsageEvent.batch_id, func.count()).group_by(UsageEvent.batch_id)
    ):
        stored[batch_id] += int(count)
    for batch_id, _, _, count in _archived(session, ArchivedEventTotal.batch_id):
        stored[batch_id] += int(count)
    for batch_id, accepted in session.execute(select(IngestBatch.id, IngestBatch.accepted_count)):
        report.batches_checked += 1
        if stored.get(batch_id, 0) != accepted:
            report.add(f"batch {batch_id}: accepted {accepted} events, {stored.get(batch_id, 0)} stored")
    rated: dict[tuple[int, str], int] = defaultdict(int)
    for batch_id, account_id, total in session.execute(
        select(UsageEvent.batch_id, UsageEvent.account_id, func.sum(UsageEvent.amount_nanos)).group_by(
            UsageEvent.batch_id, UsageEvent.account_id
        )
    ):
        rated[(batch_id, account_id)] += int(total)
    for batch_id, account_id, _, amount, _ in _archived(
        session, ArchivedEventTotal.batch_id, ArchivedEventTotal.account_id
    ):
        rated[(batch_id, account_id)] += int(amount)
    debited: dict[tuple[int, str], int] = {}
    for reference, account_id, total in session.execute(
        select(LedgerEntry.reference, LedgerEntry.account_id, func.sum(LedgerEntry.amount_nanos))
        .where(LedgerEntry.reason == reasons.USAGE)
        .group_by(LedgerEntry.reference, LedgerEntry.account_id)
    ):
        batch_ref = reference.removeprefix("batch:")
        if not batch_ref.isdigit():
            report.add(f"account {account_id}: usage entries reference {reference!r}, which is no batch")
            continue
        debited[(int(batch_ref), account_id)] = -int(total)
    for key in set(rated) | set(debited):
        if rated.get(key, 0) != debited.get(key, 0):
            report.add(
                f"batch {key[0]} account {key[1]}: events rated {rated.get(key, 0)}, "
                f"ledger debited {debited.get(key, 0)}"
            )


def _check_rollups(session: Session, report: LedgerCheckReport) -> None:
    def totals(model: type) -> dict[str, tuple[int, int, int]]:
        return {
            account_id: (int(q), int(a), int(n))
            for account_id, q, a, n in session.execute(
                select(
                    model.account_id,
                    func.sum(model.quantity),
                    func.sum(model.amount_nanos),
                    func.sum(model.event_count) if model is not UsageEvent else func.count(),
                ).group_by(model.account_id)
            )
        }

    raw = totals(UsageEvent)
    # Archived months: their raw events live in files now, their totals here.
    for account_id, quantity, amount, count in _archived(session, ArchivedEventTotal.account_id):
        q, a, n = raw.get(account_id, (0, 0, 0))
        raw[account_id] = (q + int(quantity), a + int(amount), n + int(count))
    for name, model in (("hourly", UsageRollupHourly), ("daily", UsageRollupDaily)):
        rolled = totals(model)
        for account_id in set(raw) | set(rolled):
            if raw.get(account_id, (0, 0, 0)) != rolled.get(account_id, (0, 0, 0)):
                report.add(
                    f"account {account_id}: {name} rollup (quantity, amount, events) "
                    f"{rolled.get(account_id, (0, 0, 0))} != raw events {raw.get(account_id, (0, 0, 0))}"
                )


def run_ledger_check(engine: Engine) -> LedgerCheckReport:
    """Run every check in one read-only snapshot of ``engine``'s database, safe while writers run."""
    bind = engine
    if is_postgres(engine):
        bind = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with unit_of_work(bind) as session:
        return check_ledger(session)


def check_ledger(session: Session) -> LedgerCheckReport:
    """Run every check in ``session``'s transaction; the report lists each problem (empty when all hold).

    While writers may run, that transaction must be one snapshot (see ``run_ledger_check``).
    """
    report = LedgerCheckReport()
    _check_balances(session, report)
    _check_grants(session, report)
    _check_batches(session, report)
    _check_rollups(session, report)
    return report
