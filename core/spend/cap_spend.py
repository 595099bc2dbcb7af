"""Spend per cap period: one grouped read of the daily rollup, then pure sums per cap.

Caps stack (account, project, meter, API key; per day, week or month), so the spend each one
measures comes from the same rows: ``read_cells`` reads an account's rollup from the earliest
period start any of its caps needs, grouped by project, meter, API key and local day (one
indexed read; authorize runs it every half second per active account), and ``spent_in``
sums the cells of one cap's scope and period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import NamedTuple

from sqlalchemy import BigInteger, func, select
from sqlalchemy.orm import Session

from core.db.models import UsageRollupDaily


class SpendCell(NamedTuple):
    project: str
    meter_id: int
    api_key: str
    day: date
    nanos: int


def read_cells(session: Session, account_id: str, start: date, end: date) -> list[SpendCell]:
    """The account's rated spend on local days ``start``..``end`` per project, meter, key and day."""
    rows = session.execute(
        select(
            UsageRollupDaily.project,
            UsageRollupDaily.meter_id,
            UsageRollupDaily.api_key,
            UsageRollupDaily.usage_date,
            func.sum(UsageRollupDaily.amount_nanos).cast(BigInteger),
        )
        .where(
            UsageRollupDaily.account_id == account_id,
            UsageRollupDaily.usage_date >= start,
            UsageRollupDaily.usage_date <= end,
        )
        .group_by(
            UsageRollupDaily.project,
            UsageRollupDaily.meter_id,
            UsageRollupDaily.api_key,
            UsageRollupDaily.usage_date,
        )
    ).all()
    return [SpendCell(project, int(meter), key, day, int(nanos)) for project, meter, key, day, nanos in rows]


def spent_in(
    cells: Iterable[SpendCell],
    *,
    scope: str,
    scope_value: str,
    start: date,
    end: date,
    meter_ids: Mapping[str, int],
) -> int:
    """What ``cells`` hold on days ``start``..``end`` in one cap's scope (a meter by name)."""
    if scope == "account":
        return sum(c.nanos for c in cells if start <= c.day <= end)
    if scope == "project":
        return sum(c.nanos for c in cells if c.project == scope_value and start <= c.day <= end)
    if scope == "api_key":
        return sum(c.nanos for c in cells if c.api_key == scope_value and start <= c.day <= end)
    if scope == "meter":
        meter_id = meter_ids.get(scope_value)
        if meter_id is None:
            return 0
        return sum(c.nanos for c in cells if c.meter_id == meter_id and start <= c.day <= end)
    raise ValueError(f"unknown cap scope {scope!r}")
