"""What every roll-forward must satisfy, asserted over a run of months for some accounts."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, select

from core.db.models import CreditGrant
from core.finance import RollforwardLine, credit_rollforward, deferred_now_usd_nanos
from core.finance.rollforward import TOTAL
from core.usage.focus import focus_snapshot


def lines_by_month(
    engine: Engine, months: list[str], accounts: Iterable[str]
) -> list[dict[str, RollforwardLine]]:
    """Each month's line per account (an empty line for an account the month leaves out)."""
    wanted = list(accounts)
    result = []
    with focus_snapshot(engine) as session:
        for month in months:
            report = credit_rollforward(session, month)
            assert report.identity_holds, month
            assert report.totals.account_id == TOTAL
            summed = RollforwardLine(TOTAL)
            for line in report.lines:
                summed = summed.plus(line, TOTAL)
            assert summed == report.totals, month
            found = {line.account_id: line for line in report.lines}
            result.append({account: found.get(account, RollforwardLine(account)) for account in wanted})
    return result


def assert_rolls_forward(engine: Engine, months: list[str], accounts: Iterable[str]) -> None:
    """Identity per account per month; closing of m = opening of m+1; the last month (the current
    one) closes at the ledger's purchased remainder at cost; promotional credits add up to what
    the promotional and goodwill grants hold."""
    wanted = list(accounts)
    runs = lines_by_month(engine, months, wanted)
    with focus_snapshot(engine) as session:
        deferred = deferred_now_usd_nanos(session)
        free_left: dict[str, int] = {}
        for account_id, remaining in session.execute(
            select(CreditGrant.account_id, CreditGrant.remaining_nanos).where(
                CreditGrant.source != "purchased", CreditGrant.account_id.in_(wanted)
            )
        ):
            free_left[account_id] = free_left.get(account_id, 0) + int(remaining)
    for account in wanted:
        previous = None
        for month, lines in zip(months, runs, strict=True):
            line = lines[account]
            assert line.identity_holds, (account, month, line)
            if previous is None:
                assert line.opening_deferred_usd_nanos == 0, (account, month, line)
            else:
                assert line.opening_deferred_usd_nanos == previous.closing_deferred_usd_nanos, (
                    account,
                    month,
                )
            previous = line
        assert previous is not None
        assert previous.closing_deferred_usd_nanos == deferred.get(account, 0), account
        promotional = sum(
            lines[account].promotional_granted_nanos
            - lines[account].promotional_consumed_nanos
            - lines[account].promotional_expired_nanos
            for lines in runs
        )
        assert promotional == free_left.get(account, 0), account
