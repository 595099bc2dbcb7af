"""Ledger commands: grant credits, post usage, expire grants. Append-only.

Every movement goes through ``_append``, which writes the entry and moves the two
cached sums (``accounts.balance_nanos`` and ``credit_grants.remaining_nanos``) in
the same transaction. Callers hold the account lock (``lock_accounts``) for the
whole unit of work so that concurrent writers queue instead of losing a debit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core.clock import Clock, fixed_clock
from core.db.models import GRANT_SOURCES, Account, CreditGrant, LedgerEntry
from core.errors import Conflict, NotFound, ValidationError
from core.ledger import reasons
from core.ledger.engine import GrantBalance, Posting, plan_deficit_repayment, plan_usage_burn
from core.money import TOTAL_CEILING

# account_id -> the grants usage may burn or must expire (see ``load_usage_grants``)
UsageGrants = dict[str, list[CreditGrant]]


@dataclass(frozen=True)
class GrantView:
    """A grant as the portal shows it."""

    grant_id: int
    account_id: str
    source: str
    description: str
    priority: int
    amount_nanos: int
    remaining_nanos: int
    cost_basis_cents: int | None
    effective_at: datetime
    expires_at: datetime | None
    expired: bool
    created_by: str
    created_at: datetime


def _grant_view(grant: CreditGrant) -> GrantView:
    return GrantView(
        grant_id=grant.id,
        account_id=grant.account_id,
        source=grant.source,
        description=grant.description,
        priority=grant.priority,
        amount_nanos=grant.amount_nanos,
        remaining_nanos=grant.remaining_nanos,
        cost_basis_cents=grant.cost_basis_cents,
        effective_at=grant.effective_at,
        expires_at=grant.expires_at,
        expired=grant.expired,
        created_by=grant.created_by,
        created_at=grant.created_at,
    )


def lock_accounts(session: Session, account_ids: Iterable[str]) -> dict[str, Account]:
    """Load and lock accounts for this transaction, in id order (no deadlocks between writers).

    PostgreSQL: ``SELECT … FOR UPDATE``. SQLite: the write session already holds the
    database lock (``unit_of_work(write=True)``), so a plain select is enough.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    stmt = select(Account).where(Account.id.in_(ids)).order_by(Account.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    # populate_existing: a lock must come with the row as it is now, not a stale identity-map copy.
    accounts = session.scalars(stmt.execution_options(populate_existing=True)).all()
    found = {account.id: account for account in accounts}
    missing = [account_id for account_id in ids if account_id not in found]
    if missing:
        raise NotFound(f"account {missing[0]!r} does not exist", field="account_id")
    return found


def _append(
    session: Session,
    account: Account,
    grant: CreditGrant | None,
    amount_nanos: int,
    reason: str,
    *,
    at: datetime,
    reference: str = "",
    memo: str = "",
) -> LedgerEntry:
    if amount_nanos == 0:
        raise ValueError("ledger entries move a non-zero amount")
    account.balance_nanos += amount_nanos
    if grant is not None:
        grant.remaining_nanos += amount_nanos
        if grant.remaining_nanos < 0:
            raise AssertionError(f"grant {grant.id} would go negative")
    entry = LedgerEntry(
        account_id=account.id,
        grant_id=None if grant is None else grant.id,
        amount_nanos=amount_nanos,
        balance_after_nanos=account.balance_nanos,
        reason=reason,
        reference=reference,
        memo=memo[:500],
        effective_at=at,
        created_at=at,
    )
    session.add(entry)
    return entry


def deficit_nanos(session: Session, account_id: str) -> int:
    """The part of the balance no grant covers (zero or negative)."""
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_nanos), 0)).where(
            LedgerEntry.account_id == account_id, LedgerEntry.grant_id.is_(None)
        )
    )
    return int(total or 0)


def _apply(
    session: Session,
    account: Account,
    postings: list[Posting],
    grants: dict[int, CreditGrant],
    reason: str,
    *,
    at: datetime,
    reference: str,
    memo: str = "",
) -> None:
    for posting in postings:
        grant = None if posting.grant_id is None else grants[posting.grant_id]
        _append(session, account, grant, posting.amount_nanos, reason, at=at, reference=reference, memo=memo)


def grant_credits(
    session: Session,
    *,
    account_id: str,
    amount_nanos: int,
    source: str,
    at: datetime,
    priority: int | None = None,
    expires_at: datetime | None = None,
    cost_basis_cents: int | None = None,
    description: str = "",
    idempotency_key: str | None = None,
    created_by: str = "system",
) -> GrantView:
    """Add credits to an account, paying off any negative balance first.

    With an ``idempotency_key``, a retry with the same fields returns the grant made the
    first time; the same key with other fields raises ``Conflict``.
    """
    if source not in GRANT_SOURCES:
        raise ValidationError(f"source must be one of {', '.join(GRANT_SOURCES)}", field="source")
    if not isinstance(amount_nanos, int) or isinstance(amount_nanos, bool) or amount_nanos <= 0:
        raise ValidationError("amount must be a positive number of credits", field="amount")
    if expires_at is not None and expires_at <= at:
        raise ValidationError("expiry must be in the future", field="expires_at")
    if cost_basis_cents is not None and cost_basis_cents < 0:
        raise ValidationError("cost basis cannot be negative", field="cost_basis_cents")
    account = lock_accounts(session, [account_id])[account_id]
    if account.balance_nanos + amount_nanos > TOTAL_CEILING:
        raise ValidationError(
            f"the balance would pass the ceiling of {TOTAL_CEILING // 10**9:,} credits",
            code="too_large",
            field="amount",
        )
    if idempotency_key is not None:
        # Keys are the account's own (unique with account_id): another account's same key is another grant.
        existing = session.scalar(
            select(CreditGrant).where(
                CreditGrant.account_id == account_id, CreditGrant.idempotency_key == idempotency_key
            )
        )
        if existing is not None:
            same = (
                existing.account_id == account_id
                and existing.amount_nanos == amount_nanos
                and existing.source == source
                and existing.cost_basis_cents == cost_basis_cents
            )
            if not same:
                raise Conflict(
                    "this idempotency key was already used for a different grant",
                    field="idempotency_key",
                )
            return _grant_view(existing)
    grant = CreditGrant(
        account_id=account_id,
        source=source,
        description=description[:500],
        priority=reasons.DEFAULT_PRIORITY[source] if priority is None else priority,
        amount_nanos=amount_nanos,
        remaining_nanos=0,
        cost_basis_cents=cost_basis_cents,
        effective_at=at,
        expires_at=expires_at,
        idempotency_key=idempotency_key,
        created_by=created_by,
        created_at=at,
    )
    session.add(grant)
    session.flush()
    reference = f"grant:{grant.id}"
    _append(
        session,
        account,
        grant,
        amount_nanos,
        reasons.GRANT_ISSUED,
        at=at,
        reference=reference,
        memo=description,
    )
    repayment = plan_deficit_repayment(deficit_nanos(session, account_id), grant.id, grant.remaining_nanos)
    _apply(session, account, repayment, {grant.id: grant}, reasons.DEFICIT_REPAID, at=at, reference=reference)
    session.flush()
    return _grant_view(grant)


def post_usage(
    session: Session,
    *,
    account: Account,
    amount_nanos: int,
    at: datetime,
    reference: str,
    memo: str = "",
) -> list[Posting]:
    """Burn ``amount_nanos`` of rated usage from the account's grants, in burn order.

    The caller holds the lock on ``account`` (see ``lock_accounts``). What no grant
    covers drives the balance negative; usage is never refused here (hard caps are
    enforced before usage happens, by ``authorize``).
    """
    return post_usage_batch(
        session,
        accounts={account.id: account},
        amounts={account.id: amount_nanos},
        at=at,
        reference=reference,
        memo=memo,
    ).get(account.id, [])


def load_usage_grants(session: Session, account_ids: Iterable[str], at: datetime) -> UsageGrants:
    """Every grant of these locked accounts that usage at ``at`` may burn or must expire first.

    One query: grants that are open (remaining > 0) or due to expire, as they are now.
    """
    ids = sorted(set(account_ids))
    grants: UsageGrants = {account_id: [] for account_id in ids}
    if not ids:
        return grants
    session.flush()  # pending grant changes reach the database before populate_existing reloads them
    candidates = session.scalars(
        select(CreditGrant)
        .where(
            CreditGrant.account_id.in_(ids),
            CreditGrant.expired.is_(False),
            or_(
                CreditGrant.remaining_nanos > 0,
                and_(CreditGrant.expires_at.is_not(None), CreditGrant.expires_at <= at),
            ),
        )
        .order_by(CreditGrant.account_id, CreditGrant.id)
        # Under the account lock, the rows as they are now (not a copy loaded before it).
        .execution_options(populate_existing=True)
    )
    for grant in candidates:
        grants[grant.account_id].append(grant)
    return grants


def deficit_of(account: Account, grants: Sequence[CreditGrant]) -> int:
    """The account's deficit (zero or negative), from its balance and its open grants.

    ``grants`` must be every grant with credits left (``load_usage_grants`` gives them):
    the balance is the deficit plus what the grants hold.
    """
    return account.balance_nanos - sum(g.remaining_nanos for g in grants)


def post_usage_batch(
    session: Session,
    *,
    accounts: dict[str, Account],
    amounts: dict[str, int],
    at: datetime,
    reference: str,
    memo: str = "",
    grants: UsageGrants | None = None,
) -> dict[str, list[Posting]]:
    """``post_usage`` for several locked accounts at once: one debit each, in two queries.

    One query loads every grant of these accounts that is either open or due to expire
    (``load_usage_grants``; pass its result as ``grants`` when you already have it); due
    ones get their expiry entry first (as ``expire_due_grants`` would), then each
    account's amount burns the rest in burn order. Entries are appended in account-id
    order, so the result does not depend on the order of ``amounts``.
    """
    ids = sorted(account_id for account_id, amount in amounts.items() if amount != 0)
    if not ids:
        return {}
    if any(amounts[account_id] < 0 for account_id in ids):
        raise ValueError("usage amount cannot be negative")
    if grants is None:
        grants = load_usage_grants(session, ids, at)
    result: dict[str, list[Posting]] = {}
    for account_id in ids:
        account = accounts[account_id]
        open_grants: dict[int, CreditGrant] = {}
        for grant in grants.get(account_id, ()):
            if grant.expires_at is not None and grant.expires_at <= at:
                _expire(session, account, grant, at=at)
            elif grant.remaining_nanos > 0:
                open_grants[grant.id] = grant
        balances = [
            GrantBalance(g.id, g.priority, g.effective_at, g.expires_at, g.remaining_nanos)
            for g in open_grants.values()
        ]
        postings = plan_usage_burn(balances, amounts[account_id], at)
        _apply(session, account, postings, open_grants, reasons.USAGE, at=at, reference=reference, memo=memo)
        result[account_id] = postings
    return result


def _expire(session: Session, account: Account, grant: CreditGrant, *, at: datetime) -> None:
    """Post the expiry of what is left of a due grant and mark it expired."""
    if grant.remaining_nanos > 0:
        _append(
            session,
            account,
            grant,
            -grant.remaining_nanos,
            reasons.GRANT_EXPIRED,
            at=grant.expires_at or at,
            reference=f"grant:{grant.id}",
            memo=grant.description,
        )
    grant.expired = True


def expire_due_grants(
    session: Session,
    *,
    at: datetime | None = None,
    clock: Clock | None = None,
    account: Account | None = None,
) -> int:
    """Post an expiry entry for every grant whose ``expires_at`` has passed; return how many.

    Without ``account``, sweeps every account (the periodic job), locking each in turn.
    Give ``clock`` (live) or ``at``: the clock is read again once the accounts are locked,
    and only grants due at that moment are expired (DESIGN invariant 9).
    """
    if (at is None) == (clock is None):
        raise ValueError("expire_due_grants needs exactly one of at= and clock=")
    read_clock = clock if clock is not None else fixed_clock(at)  # type: ignore[arg-type]

    def due_grants(moment: datetime) -> list[tuple[int, str]]:
        stmt = select(CreditGrant.id, CreditGrant.account_id).where(
            CreditGrant.expired.is_(False),
            CreditGrant.expires_at.is_not(None),
            CreditGrant.expires_at <= moment,
        )
        if account is not None:
            stmt = stmt.where(CreditGrant.account_id == account.id)
        return [(g, a) for g, a in session.execute(stmt.order_by(CreditGrant.account_id, CreditGrant.id))]

    candidates = due_grants(read_clock())
    if not candidates:
        return 0
    accounts = (
        {account.id: account} if account is not None else lock_accounts(session, {a for _, a in candidates})
    )
    # Under the lock, as of now: a grant that usage burned or a void emptied meanwhile is as it is now.
    due = [(g, a) for g, a in due_grants(read_clock()) if a in accounts]
    expired = 0
    for grant_id, account_id in due:
        grant = session.get(CreditGrant, grant_id, populate_existing=True)
        assert grant is not None
        if not grant.expired:
            _expire(session, accounts[account_id], grant, at=grant.expires_at or read_clock())
            expired += 1
    session.flush()
    return expired


def _locked_grant(session: Session, grant_id: int) -> tuple[CreditGrant, Account]:
    """The grant and its account, the account locked and the grant read as it is under the lock."""
    grant = session.get(CreditGrant, grant_id)
    if grant is None:
        raise NotFound(f"grant {grant_id} does not exist", field="grant_id")
    account = lock_accounts(session, [grant.account_id])[grant.account_id]
    session.refresh(grant)
    return grant, account


def void_grant(session: Session, *, grant_id: int, at: datetime, reason: str, actor: str) -> GrantView:
    """Take back what is left of a grant (a correction is a new entry, never an edit)."""
    if not reason.strip():
        raise ValidationError("say why the credits are reversed", field="reason")
    grant, account = _locked_grant(session, grant_id)
    if grant.remaining_nanos > 0:
        _append(
            session,
            account,
            grant,
            -grant.remaining_nanos,
            reasons.GRANT_VOIDED,
            at=at,
            reference=f"grant:{grant.id}",
            memo=f"{reason} (by {actor})",
        )
    grant.expired = True
    session.flush()
    return _grant_view(grant)


@dataclass(frozen=True)
class GrantMove:
    """One settlement movement on a grant (or on the negative balance it paid off), signed."""

    amount_nanos: int
    reason: str
    memo: str = ""
    on_deficit: bool = False  # the account's uncovered balance, not the grant itself


def grant_entry_sums(session: Session, grant_id: int) -> dict[tuple[str, bool], int]:
    """The entries that reference the grant (``grant:<id>``), summed by reason and by whether
    they sit on the grant (True) or on the account's negative balance (False)."""
    rows = session.execute(
        select(LedgerEntry.reason, LedgerEntry.grant_id.is_not(None), func.sum(LedgerEntry.amount_nanos))
        .where(LedgerEntry.reference == f"grant:{grant_id}")
        .group_by(LedgerEntry.reason, LedgerEntry.grant_id.is_not(None))
    ).all()
    return {(reason, bool(on_grant)): int(total or 0) for reason, on_grant, total in rows}


def move_grant_credits(session: Session, *, grant_id: int, moves: Sequence[GrantMove], at: datetime) -> None:
    """Post ``moves`` in order, then let what the grant holds pay off a negative balance.

    For settling a purchase (``core.payments.settle``): refunds and disputes take credits
    out of the grant or put them back. The caller has computed the moves under the account
    lock (taken again here, in the same transaction) so that none takes more than the grant
    holds. Nothing goes back into an expired or voided grant: what the moves leave in one
    (a hold released) is voided again at the end, so the balance does not grow.
    """
    grant, account = _locked_grant(session, grant_id)
    reference = f"grant:{grant.id}"
    for move in moves:
        if move.amount_nanos == 0:
            continue
        if move.on_deficit:
            _append(
                session,
                account,
                None,
                move.amount_nanos,
                move.reason,
                at=at,
                reference=reference,
                memo=move.memo,
            )
            continue
        _append(
            session,
            account,
            grant,
            move.amount_nanos,
            move.reason,
            at=at,
            reference=reference,
            memo=move.memo,
        )
    if grant.expired and grant.remaining_nanos > 0:  # what came back into a closed grant goes again
        _append(
            session,
            account,
            grant,
            -grant.remaining_nanos,
            reasons.GRANT_VOIDED,
            at=at,
            reference=reference,
            memo="The grant was reversed before: these credits do not return.",
        )
    if not grant.expired:
        repayment = plan_deficit_repayment(
            deficit_nanos(session, account.id), grant.id, grant.remaining_nanos
        )
        _apply(
            session, account, repayment, {grant.id: grant}, reasons.DEFICIT_REPAID, at=at, reference=reference
        )
    session.flush()
