"""The ledger check can fail: each kind of corruption, written with raw SQL into a healthy
ledger built by the real services, is reported as exactly its own kind of problem."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import unit_of_work
from core.db.models import Account, CreditGrant, LedgerEntry, UsageEvent
from core.ledger import LedgerCheckReport, check, grant_credits, reasons, run_ledger_check
from core.ledger import expire_due_grants as sweep_expired
from core.metering import ingest_events
from core.money import credits_to_nanos
from tests.core.metering.catalog_setup import event, seed_catalog

# Every problem the check can report, by kind; a problem that matches none is a test failure.
KINDS = {
    "balance": r"account \S+: balance -?\d+ != sum of entries -?\d+",
    "running_sum": r"account \S+: entry \d+ says balance -?\d+, running sum is -?\d+",
    "positive_deficit": r"account \S+: deficit \d+ is positive \(must be 0 or less\)",
    "grant_sum": r"grant \d+: remaining -?\d+ != sum of entries -?\d+",
    "grant_range": r"grant \d+: remaining -?\d+ outside 0\.\.\d+",
    "expired_with_credits": r"grant \d+: expired, yet -?\d+ remaining",
    "foreign_entry": r"grant \d+: entry \d+ is on account \S+, the grant belongs to \S+",
    "batch_count": r"batch \d+: accepted \d+ events, \d+ stored",
    "batch_debit": r"batch \d+ account \S+: events rated -?\d+, ledger debited -?\d+",
    "no_batch": r"account \S+: usage entries reference '.*', which is no batch",
    "hourly_rollup": r"account \S+: hourly rollup \(quantity, amount, events\) .* != raw events .*",
    "daily_rollup": r"account \S+: daily rollup \(quantity, amount, events\) .* != raw events .*",
}


def _kinds(report: LedgerCheckReport) -> set[str]:
    found = set()
    for problem in report.problems:
        kinds = [kind for kind, pattern in KINDS.items() if re.fullmatch(pattern, problem)]
        assert len(kinds) == 1, f"unclassified problem: {problem}"
        found.add(kinds[0])
    return found


@dataclass(frozen=True)
class Ledger:
    """Ids in the healthy ledger that the corruptions aim at."""

    grant_a: int  # acc_a's purchased grant, partly burnt
    grant_b_expired: int  # acc_b's promotional grant, burnt, then swept as expired
    batch_id: int  # one batch with usage for acc_a, acc_b and acc_c


@pytest.fixture
def ledger(engine: Engine, now: datetime) -> Ledger:
    """Three accounts: acc_a in credit, acc_b with an expired grant, acc_c in deficit (partly repaid)."""
    seed_catalog(engine, now - timedelta(days=60), accounts=("acc_a", "acc_b", "acc_c"), grant_credits_each=0)
    with unit_of_work(engine, write=True) as s:
        grant_a = grant_credits(
            s, account_id="acc_a", amount_nanos=credits_to_nanos(100), source="purchased", at=now
        ).grant_id
        grant_credits(s, account_id="acc_b", amount_nanos=credits_to_nanos(50), source="goodwill", at=now)
        grant_b_expired = grant_credits(
            s,
            account_id="acc_b",
            amount_nanos=credits_to_nanos(5),
            source="promotional",
            at=now,
            expires_at=now + timedelta(hours=1),
        ).grant_id
        grant_credits(s, account_id="acc_c", amount_nanos=credits_to_nanos(1), source="promotional", at=now)
    # 1,000,000 input tokens cost 2 credits after Nov 15.
    events = [event(f"a{i}", account_id="acc_a", dimensions={"model": f"m{i % 2}"}) for i in range(3)]
    events += [event(f"b{i}", account_id="acc_b") for i in range(2)]
    events += [event(f"c{i}", account_id="acc_c", meter="requests", quantity=250) for i in range(2)]
    with unit_of_work(engine, write=True) as s:
        result = ingest_events(s, events, at=now)
        assert result.accepted == len(events) and result.batch_id is not None
        batch_id = result.batch_id
    later = now + timedelta(hours=2)
    with unit_of_work(engine, write=True) as s:
        assert sweep_expired(s, at=later) == 1  # acc_b's promotional grant: 1 credit left, expired
        grant_credits(s, account_id="acc_c", amount_nanos=credits_to_nanos(2), source="goodwill", at=later)
    with unit_of_work(engine) as s:
        assert s.get(Account, "acc_c").balance_nanos == credits_to_nanos(-2)  # deficit -4, repaid 2
        deficit = s.scalar(
            select(func.sum(LedgerEntry.amount_nanos)).where(
                LedgerEntry.account_id == "acc_c", LedgerEntry.grant_id.is_(None)
            )
        )
        assert deficit == credits_to_nanos(-2)
    return Ledger(grant_a=grant_a, grant_b_expired=grant_b_expired, batch_id=batch_id)


def _corrupt(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as conn:
        assert conn.execute(text(sql), params).rowcount >= 1


def test_healthy_ledger_reports_ok(engine: Engine, ledger: Ledger) -> None:
    report = run_ledger_check(engine)
    assert report.ok, report.problems
    assert (report.accounts_checked, report.grants_checked, report.batches_checked) == (3, 5, 1)
    with unit_of_work(engine) as s:
        assert check.check_ledger(s).ok  # the same answer in a caller's own transaction
        swept = s.get(CreditGrant, ledger.grant_b_expired)
        assert swept is not None and swept.expired and swept.remaining_nanos == 0  # expired is fine at 0


def test_balance_that_differs_from_its_entries_is_reported(engine: Engine, ledger: Ledger) -> None:
    _corrupt(engine, "UPDATE accounts SET balance_nanos = balance_nanos + 1 WHERE id = 'acc_a'")
    report = run_ledger_check(engine)
    assert _kinds(report) == {"balance"}
    assert report.problems[0].startswith("account acc_a: balance ")


def test_entry_balance_after_that_is_not_the_running_sum_is_reported(engine: Engine, ledger: Ledger) -> None:
    _corrupt(
        engine,
        "UPDATE ledger_entries SET balance_after_nanos = balance_after_nanos + 1 WHERE id = "
        "(SELECT min(id) FROM ledger_entries WHERE account_id = 'acc_b')",
    )
    assert _kinds(run_ledger_check(engine)) == {"running_sum"}


def test_grant_remaining_that_differs_from_its_entries_is_reported(engine: Engine, ledger: Ledger) -> None:
    _corrupt(
        engine,
        "UPDATE credit_grants SET remaining_nanos = remaining_nanos - 1 WHERE id = :id",
        id=ledger.grant_a,
    )
    report = run_ledger_check(engine)
    assert _kinds(report) == {"grant_sum"}
    assert report.problems[0].startswith(f"grant {ledger.grant_a}: remaining ")


def test_grant_remaining_above_its_amount_is_reported(engine: Engine, ledger: Ledger) -> None:
    # Remaining still equals its entries; the grant's amount shrank below it.
    _corrupt(
        engine,
        "UPDATE credit_grants SET amount_nanos = remaining_nanos - 1 WHERE id = :id",
        id=ledger.grant_a,
    )
    assert _kinds(run_ledger_check(engine)) == {"grant_range"}


def test_batch_whose_stored_events_differ_from_its_accepted_count_is_reported(
    engine: Engine, ledger: Ledger
) -> None:
    _corrupt(
        engine,
        "UPDATE ingest_batches SET accepted_count = accepted_count + 1 WHERE id = :id",
        id=ledger.batch_id,
    )
    report = run_ledger_check(engine)
    assert _kinds(report) == {"batch_count"}
    assert report.problems == [f"batch {ledger.batch_id}: accepted 8 events, 7 stored"]


def test_batch_debit_that_differs_from_its_rated_events_is_reported(engine: Engine, ledger: Ledger) -> None:
    # One event's rated amount grows by one nano, and its rollups with it: only the debit disagrees.
    _corrupt(
        engine,
        "UPDATE usage_events SET amount_nanos = amount_nanos + 1 "
        "WHERE account_id = 'acc_a' AND event_id = 'a0'",
    )
    for table in ("usage_rollup_hourly", "usage_rollup_daily"):
        _corrupt(
            engine,
            f"UPDATE {table} SET amount_nanos = amount_nanos + 1 WHERE account_id = 'acc_a' AND model = 'm0'",
        )
    report = run_ledger_check(engine)
    assert _kinds(report) == {"batch_debit"}
    assert report.problems == [
        f"batch {ledger.batch_id} account acc_a: events rated {credits_to_nanos(6) + 1}, "
        f"ledger debited {credits_to_nanos(6)}"
    ]


def test_usage_entry_that_references_no_batch_is_reported(engine: Engine, ledger: Ledger) -> None:
    _corrupt(
        engine,
        "UPDATE ledger_entries SET reference = 'manual fix' WHERE account_id = 'acc_a' AND reason = :usage",
        usage=reasons.USAGE,
    )
    report = run_ledger_check(engine)
    # The batch that lost its debit is reported too: its events are rated but not debited.
    assert _kinds(report) == {"no_batch", "batch_debit"}
    assert "account acc_a: usage entries reference 'manual fix', which is no batch" in report.problems


def test_hourly_rollup_that_differs_from_raw_events_is_reported(engine: Engine, ledger: Ledger) -> None:
    _corrupt(engine, "UPDATE usage_rollup_hourly SET quantity = quantity + 1 WHERE account_id = 'acc_b'")
    report = run_ledger_check(engine)
    assert _kinds(report) == {"hourly_rollup"}
    assert report.problems[0].startswith("account acc_b: hourly rollup")


def test_daily_rollup_that_differs_from_raw_events_is_reported(engine: Engine, ledger: Ledger) -> None:
    _corrupt(engine, "UPDATE usage_rollup_daily SET event_count = event_count - 1 WHERE account_id = 'acc_c'")
    report = run_ledger_check(engine)
    assert _kinds(report) == {"daily_rollup"}
    assert report.problems[0].startswith("account acc_c: daily rollup")


def _corrupt_past_foreign_keys(engine: Engine, sql: str, **params: object) -> None:
    """A change the foreign keys refuse, made with them off (a restore without constraints, say)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # outside a transaction
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SET LOCAL session_replication_role = replica"))  # no FK triggers
                assert conn.execute(text(sql), params).rowcount >= 1
        finally:
            if engine.dialect.name == "sqlite":
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def test_entry_on_another_accounts_grant_is_reported(engine: Engine, ledger: Ledger) -> None:
    # acc_a's grant moves to acc_b: every entry on it now sits on the wrong account. The entries'
    # foreign key (account_id, grant_id) refuses that (migration 0020), so it is forced past it.
    with pytest.raises(IntegrityError):
        _corrupt(engine, "UPDATE credit_grants SET account_id = 'acc_b' WHERE id = :id", id=ledger.grant_a)
    _corrupt_past_foreign_keys(
        engine, "UPDATE credit_grants SET account_id = 'acc_b' WHERE id = :id", id=ledger.grant_a
    )
    report = run_ledger_check(engine)
    assert _kinds(report) == {"foreign_entry"}
    assert all(
        re.fullmatch(rf"grant {ledger.grant_a}: entry \d+ is on account acc_a, the grant belongs to acc_b", p)
        for p in report.problems
    )
    with unit_of_work(engine) as s:
        on_grant = s.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.grant_id == ledger.grant_a)
        )
    assert len(report.problems) == on_grant


def test_expired_grant_that_still_holds_credits_is_reported(engine: Engine, ledger: Ledger) -> None:
    _corrupt(engine, "UPDATE credit_grants SET expired = :yes WHERE id = :id", yes=True, id=ledger.grant_a)
    report = run_ledger_check(engine)
    assert _kinds(report) == {"expired_with_credits"}
    assert report.problems[0].startswith(f"grant {ledger.grant_a}: expired, yet ")


def test_grant_past_its_expiry_not_yet_swept_is_not_a_problem(
    engine: Engine, ledger: Ledger, now: datetime
) -> None:
    with unit_of_work(engine, write=True) as s:
        grant_credits(
            s,
            account_id="acc_a",
            amount_nanos=credits_to_nanos(3),
            source="promotional",
            at=now,
            expires_at=now + timedelta(minutes=1),
        )
    # The check has no clock: an unswept grant (the job runs every minute) is fine.
    assert run_ledger_check(engine).ok


def test_positive_deficit_is_reported(engine: Engine, ledger: Ledger, now: datetime) -> None:
    # Credits added with no grant behind them: balance and running sum still agree.
    with unit_of_work(engine) as s:
        balance = s.get(Account, "acc_a").balance_nanos
    amount = credits_to_nanos(5)
    with engine.begin() as conn:
        conn.execute(
            insert(LedgerEntry).values(
                account_id="acc_a",
                grant_id=None,
                amount_nanos=amount,
                balance_after_nanos=balance + amount,
                reason=reasons.ADJUSTMENT,
                reference="",
                memo="",
                effective_at=now,
                created_at=now,
            )
        )
        conn.execute(
            text("UPDATE accounts SET balance_nanos = balance_nanos + :x WHERE id = 'acc_a'"), {"x": amount}
        )
    report = run_ledger_check(engine)
    assert _kinds(report) == {"positive_deficit"}
    assert report.problems == [f"account acc_a: deficit {amount} is positive (must be 0 or less)"]


def test_run_ledger_check_reads_one_read_only_snapshot(
    engine: Engine, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, ...]] = []
    real = check.check_ledger

    def spy(session: Session) -> LedgerCheckReport:
        if engine.dialect.name == "postgresql":
            seen.append(
                (
                    session.scalar(text("SHOW transaction_isolation")),
                    session.scalar(text("SHOW transaction_read_only")),
                )
            )
        else:
            # pysqlite runs without its own transaction handling here: this is the real BEGIN.
            dbapi = session.connection().connection.dbapi_connection
            seen.append(("in transaction", str(dbapi.in_transaction)))
        return real(session)

    monkeypatch.setattr(check, "check_ledger", spy)
    assert run_ledger_check(engine).ok
    expected = (
        ("repeatable read", "on") if engine.dialect.name == "postgresql" else ("in transaction", "True")
    )
    assert seen == [expected]
    # The pooled connection goes back to the default level for the next user.
    with unit_of_work(engine) as s:
        if engine.dialect.name == "postgresql":
            assert s.scalar(text("SHOW transaction_isolation")) == "read committed"
            assert s.scalar(text("SHOW transaction_read_only")) == "off"
        assert s.scalar(select(func.count()).select_from(UsageEvent)) == 7
