"""A cheap version of an account's data, so live pages recompute only when it changed.

Every ingested batch stamps the accounts it touched (``accounts.last_batch_id``), and
every movement of credits is a new ledger entry with a larger id: the pair changes
whenever anything the portal shows for the account changes (usage, late usage, balance,
grants, expiries), and reading it is two index lookups.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from core.db.models import Account, LedgerEntry
from core.usage.ranges import account_today

DataVersion = tuple[int, int]


def _last_entry_id(account_id: str) -> ScalarSelect[int | None]:
    return select(func.max(LedgerEntry.id)).where(LedgerEntry.account_id == account_id).scalar_subquery()


def data_version(session: Session, account_id: str) -> DataVersion:
    """``(last batch id, last ledger entry id)`` of the account; ``(0, 0)`` when it has neither."""
    row = session.execute(
        select(Account.last_batch_id, _last_entry_id(account_id)).where(Account.id == account_id)
    ).first()
    if row is None:
        return (0, 0)
    return (int(row[0] or 0), int(row[1] or 0))


def data_stamp(session: Session, account_id: str, at: datetime) -> tuple[DataVersion, date | None]:
    """The data version and the account's local date at ``at``, in one query: what a live page
    shows depends on nothing else. It says whether to redraw, never what: no access check."""
    row = session.execute(
        select(Account.last_batch_id, _last_entry_id(account_id), Account.timezone).where(
            Account.id == account_id
        )
    ).first()
    if row is None:
        return (0, 0), None
    return (int(row[0] or 0), int(row[1] or 0)), account_today(row[2], at)
