"""Archiving a month of raw events to Parquet: the file holds them exactly, the checks guard the drop,
and everything read from the rollups, the ledger or the archive says the same before and after."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, func, select, update

from core.accounts import create_account
from core.cli import main
from core.db import unit_of_work
from core.db.models import ArchivedEventTotal, UsageArchive, UsageEvent, UsageRollupHourly
from core.errors import ValidationError
from core.ledger import grant_credits, run_ledger_check
from core.metering import ingest_events
from core.money import NANOS_PER_CREDIT
from core.rating import load_rate_card
from core.statements.build import statement
from core.usage import archive
from core.usage.archive import ArchiveCheckFailed, archive_month, file_name
from core.usage.event_export import raw_events_csv
from core.usage.focus import focus_csv
from core.usage.report import read_report
from core.usage.report_query import parse_report_query
from core.usage.views import usage_export_frame, usage_frame

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
AUGUST = date(2025, 8, 1)
ACCOUNTS = {"acc_a": "UTC", "acc_b": "America/New_York"}

# A price change inside an hour (Aug 10, 12:30): the FOCUS export reads that hour event by event.
CARD = """
[[meters]]
name = "input_tokens"
unit = "token"
dimensions = ["model", "project", "api_key"]

[[meters]]
name = "requests"
unit = "request"
dimensions = ["model"]

[card]
key = "standard"
name = "Standard"

[[versions]]
effective_from = "2025-01-01T00:00:00Z"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "3.00"
[[versions.prices]]
meter = "requests"
price = "0.01"

[[versions]]
effective_from = "2025-08-10T12:30:00Z"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "2.00"
[[versions.prices]]
meter = "requests"
price = "0.013"
"""


def _events(day: datetime, serial: int) -> list[dict[str, Any]]:
    events = []
    for account_id in ACCOUNTS:
        for index in range(4):
            at = day + timedelta(hours=index * 5 + 1, minutes=serial % 60, microseconds=index * 7)
            events.append(
                {
                    "event_id": f"{account_id}-{serial}-{index}",
                    "account_id": account_id,
                    "meter": "input_tokens" if index % 2 else "requests",
                    "quantity": 1_234_567 * (index + 1) + serial if index % 2 else 3 + index,
                    "timestamp": at.isoformat().replace("+00:00", "Z"),
                    "dimensions": {"model": f"atlas-{index % 3}", "project": "=cmd" if index == 3 else "web"}
                    if index % 2
                    else {"model": "atlas-0"},
                }
            )
    return events


def _seed(engine: Engine) -> None:
    """Jul 25 to Sep 6, 2025: a batch a day (sent six hours after midnight UTC, so the first of each
    month also carries the last hours of the month before), two accounts, two meters."""
    start = datetime(2025, 7, 1, tzinfo=UTC)
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, tomllib.loads(CARD), at=start, allow_backdated=True)
        for account_id, zone in ACCOUNTS.items():
            create_account(
                session,
                account_id=account_id,
                name=account_id,
                at=start,
                timezone=zone,
                rate_card_key="standard",
                default_alerts=False,
            )
            grant_credits(
                session,
                account_id=account_id,
                amount_nanos=50 * NANOS_PER_CREDIT,
                source="purchased",
                at=start,
            )
    day = datetime(2025, 7, 25, tzinfo=UTC)
    serial = 0
    while day < datetime(2025, 9, 6, tzinfo=UTC):
        late = day - timedelta(hours=3)  # the day before, three hours before midnight
        events = _events(day, serial)
        events.append({**events[0], "event_id": f"late-{serial}", "timestamp": late.isoformat()})
        if day.day == 10 and day.month == 8:  # either side of the price change at 12:30
            for minute in (10, 50):
                stamp = day.replace(hour=12, minute=minute).isoformat()
                events.append({**events[1], "event_id": f"mixed-{minute}", "timestamp": stamp})
        with unit_of_work(engine, write=True) as session:
            result = ingest_events(session, events, at=day + timedelta(hours=26))
            assert result.accepted == len(events), result.rejected
        serial += 1
        day += timedelta(days=1)


def _month_rows(engine: Engine, month: date) -> tuple[int, int]:
    start, end = archive.month_bounds(month)
    with unit_of_work(engine) as session:
        count, amount = session.execute(
            select(func.count(), func.coalesce(func.sum(UsageEvent.amount_nanos), 0)).where(
                UsageEvent.occurred_at >= start, UsageEvent.occurred_at < end
            )
        ).one()
    return int(count), int(amount)


def _report(session: Any, account_id: str, bucket: str, start: str, end: str) -> Any:
    pairs = [("start", start), ("end", end), ("bucket", bucket), ("limit", "31" if bucket == "1d" else "168")]
    pairs += [("group_by", name) for name in ("model", "project", "api_key")]
    query = parse_report_query("usage", pairs).resolved(account_id)
    return read_report(session, query)


def _everything(engine: Engine) -> dict[str, Any]:
    """What customers and the ledger see of August (and its neighbours)."""
    seen: dict[str, Any] = {"check": run_ledger_check(engine).problems}
    with unit_of_work(engine) as session:
        for account_id in ACCOUNTS:
            seen[f"{account_id} 1d"] = _report(
                session, account_id, "1d", "2025-07-25T00:00:00Z", "2025-08-25T00:00:00Z"
            )
            seen[f"{account_id} 1h"] = _report(
                session, account_id, "1h", "2025-08-10T00:00:00Z", "2025-08-17T00:00:00Z"
            )
            for granularity in ("day", "hour"):
                frame = usage_frame(
                    session,
                    account_id,
                    start=date(2025, 7, 28),
                    end=date(2025, 9, 3),
                    granularity=granularity,
                )
                seen[f"{account_id} frame {granularity}"] = frame.to_dict("list")
            export = usage_export_frame(session, account_id, start=date(2025, 7, 28), end=date(2025, 9, 3))
            seen[f"{account_id} export"] = export.to_dict("list")
            for month in ("2025-07", "2025-08", "2025-09"):
                built = statement(session, account_id, month, at=NOW)
                seen[f"{account_id} statement {month}"] = (
                    built.opening_nanos,
                    built.closing_nanos,
                    built.lines,
                )
                seen[f"{account_id} focus {month}"] = focus_csv(session, account_id, month)
                seen[f"{account_id} events {month}"] = raw_events_csv(session, account_id, month)
    return seen


@pytest.fixture
def where(tmp_path: Path) -> Path:
    """An archive directory of its own (the SQLite test database lives in pytest's tmp_path)."""
    directory = tmp_path / "archive"
    directory.mkdir()
    return directory


@pytest.fixture
def history(engine: Engine) -> Engine:
    _seed(engine)
    return engine


def test_archiving_a_month_changes_nothing_anyone_reads(history: Engine, where: Path) -> None:
    before = _everything(history)
    assert before["check"] == []
    rows, amount = _month_rows(history, AUGUST)
    assert rows > 100 and amount > 0
    assert before["acc_a statement 2025-08"][2]  # the month has usage lines
    assert b"2025-08-10" in before["acc_a focus 2025-08"]

    with unit_of_work(history, write=True) as session:
        result = archive_month(session, AUGUST, where, clock=lambda: NOW)
    assert result.archived and (result.rows, result.amount_nanos) == (rows, amount)
    assert result.path == where / "usage_events_2025_08.parquet" and result.size_bytes > 0
    assert _month_rows(history, AUGUST) == (0, 0)
    assert _month_rows(history, date(2025, 7, 1))[0] > 0  # its neighbours keep their raw events

    # The file: exact types, every row, the same sum; nothing else left beside it.
    table = pq.read_table(result.path)
    assert table.schema.field("amount_nanos").type == pa.int64()
    assert table.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert table.num_rows == rows and sum(table.column("amount_nanos").to_pylist()) == amount
    occurred = table.column("occurred_at").to_pylist()
    assert all(datetime(2025, 8, 1, tzinfo=UTC) <= at < datetime(2025, 9, 1, tzinfo=UTC) for at in occurred)
    assert sorted(p.name for p in where.iterdir()) == ["usage_events_2025_08.parquet"]
    with unit_of_work(history) as session:
        record = session.get(UsageArchive, AUGUST)
        assert record is not None and (record.row_count, record.amount_nanos) == (rows, amount)
        assert len(record.sha256) == 64 and record.size_bytes == result.path.stat().st_size
        totals = session.execute(
            select(func.sum(ArchivedEventTotal.event_count), func.sum(ArchivedEventTotal.amount_nanos))
        ).one()
        assert (int(totals[0]), int(totals[1])) == (rows, amount)

    after = _everything(history)
    assert after["check"] == []
    for key, value in before.items():
        assert after[key] == value, key  # the raw CSV of August byte for byte, from the file now

    # Minute detail is gone with the raw rows: said so, not shown as zeros.
    with unit_of_work(history) as session:
        with pytest.raises(ValidationError, match="minute detail of 2025-08 was archived") as refused:
            _report(session, "acc_a", "1m", "2025-08-10T00:00:00Z", "2025-08-10T02:00:00Z")
        assert refused.value.code == "minute_detail_archived"
        minutes = _report(session, "acc_a", "1m", "2025-09-02T00:00:00Z", "2025-09-02T12:00:00Z")
        assert any(bucket.results for bucket in minutes.buckets)

    # Archiving it again is a no-op: no raw rows are left.
    with unit_of_work(history, write=True) as session:
        again = archive_month(session, AUGUST, where, clock=lambda: NOW)
    assert not again.archived and again.rows == 0


def test_dry_run_changes_nothing(history: Engine, where: Path) -> None:
    rows, amount = _month_rows(history, AUGUST)
    with unit_of_work(history, write=True) as session:
        result = archive_month(session, AUGUST, where, dry_run=True, clock=lambda: NOW)
    assert result.dry_run and not result.archived and (result.rows, result.amount_nanos) == (rows, amount)
    assert "would archive" in result.describe()
    assert _month_rows(history, AUGUST) == (rows, amount)
    assert list(where.iterdir()) == []
    with unit_of_work(history) as session:
        assert session.scalar(select(func.count()).select_from(UsageArchive)) == 0
        assert session.scalar(select(func.count()).select_from(ArchivedEventTotal)) == 0


def test_month_inside_the_lateness_window_is_refused(history: Engine, where: Path) -> None:
    # At Sep 20, 2025, events 35 days old (Aug 16) are still accepted: August may still change.
    with unit_of_work(history, write=True) as session, pytest.raises(ValidationError) as refused:
        archive_month(session, AUGUST, where, clock=lambda: datetime(2025, 9, 20, tzinfo=UTC))
    assert refused.value.code == "month_too_recent"
    assert "lateness window" in refused.value.message and "2025-07" in refused.value.message
    assert _month_rows(history, AUGUST)[0] > 0


def test_a_failed_check_keeps_the_raw_rows_and_says_so(history: Engine, where: Path) -> None:
    rows, amount = _month_rows(history, AUGUST)
    hourly = UsageRollupHourly
    with unit_of_work(history, write=True) as session:  # a rollup that no longer matches its events
        tampered = session.execute(
            update(hourly)
            .where(hourly.account_id == "acc_b", hourly.hour_start == datetime(2025, 8, 12, 1, tzinfo=UTC))
            .values(amount_nanos=hourly.amount_nanos + 1)
        )
        assert tampered.rowcount == 1
    with unit_of_work(history, write=True) as session, pytest.raises(ArchiveCheckFailed) as failed:
        archive_month(session, AUGUST, where, clock=lambda: NOW)
    assert "left in place" in failed.value.message and "hourly rollups" in failed.value.message
    assert str(amount + 1) in failed.value.message
    assert _month_rows(history, AUGUST) == (rows, amount)
    assert list(where.iterdir()) == []  # neither the file nor a temporary one stays
    with unit_of_work(history) as session:
        assert session.get(UsageArchive, AUGUST) is None


def test_a_month_without_events_is_a_no_op(history: Engine, where: Path) -> None:
    with unit_of_work(history, write=True) as session:
        result = archive_month(session, date(2024, 3, 1), where, clock=lambda: NOW)
    assert (result.rows, result.archived) == (0, False) and "nothing to do" in result.describe()
    assert list(where.iterdir()) == []


def test_settings_refuse_bad_values_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert archive.retention_months() == 13 or "METERLINE_RAW_RETENTION_MONTHS" in __import__("os").environ
    for bad in ("0", "-3", "twelve", "1.5"):
        monkeypatch.setenv("METERLINE_RAW_RETENTION_MONTHS", bad)
        with pytest.raises(ValidationError, match="METERLINE_RAW_RETENTION_MONTHS") as refused:
            archive.retention_months()
        assert refused.value.field == "METERLINE_RAW_RETENTION_MONTHS"
    monkeypatch.setenv("METERLINE_RAW_RETENTION_MONTHS", "6")
    assert archive.retention_months() == 6
    monkeypatch.delenv("METERLINE_ARCHIVE_DIR", raising=False)
    assert archive.archive_dir() == Path("var") / "archive"
    monkeypatch.setenv("METERLINE_ARCHIVE_DIR", "/srv/archive")
    assert archive.archive_dir() == Path("/srv/archive")
    assert file_name(AUGUST) == "usage_events_2025_08.parquet"


def test_the_periodic_job_archives_once_a_month(
    history: Engine, where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.jobs import _archive_due_months

    monkeypatch.setenv("METERLINE_ARCHIVE_DIR", str(where))
    monkeypatch.delenv("METERLINE_RAW_RETENTION_MONTHS", raising=False)
    # Oct 2, 2026: the retention limit is 2025-09, so July and August go; September stays.
    at = datetime(2026, 10, 2, tzinfo=UTC)
    assert _archive_due_months(history, lambda: at) == 2
    assert sorted(p.name for p in where.iterdir()) == [file_name(date(2025, 7, 1)), file_name(AUGUST)]
    assert _month_rows(history, date(2025, 9, 1))[0] > 0
    assert _archive_due_months(history, lambda: at + timedelta(days=3)) == 0  # same month: settings only
    assert run_ledger_check(history).ok
    assert _archive_due_months(history, lambda: datetime(2026, 11, 2, tzinfo=UTC)) == 1  # September
    assert _month_rows(history, date(2025, 9, 1)) == (0, 0)
    assert run_ledger_check(history).ok


def test_cli_archives_months_before_and_refuses_recent_ones(
    history: Engine, db_url: str, where: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("METERLINE_ARCHIVE_DIR", str(where))
    monkeypatch.delenv("METERLINE_RAW_RETENTION_MONTHS", raising=False)
    monkeypatch.delenv("METERLINE_MAX_LATENESS_DAYS", raising=False)
    rows, _ = _month_rows(history, AUGUST)

    assert main(["events", "archive", "--before", "2025-09", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2025-07: would archive" in out and f"2025-08: would archive {rows:,} events" in out
    assert "dry run: nothing was written or removed" in out
    assert list(where.iterdir()) == [] and _month_rows(history, AUGUST)[0] == rows

    assert main(["events", "archive", "--before", "2025-09"]) == 0
    out = capsys.readouterr().out
    assert f"2025-08: archived {rows:,} events" in out and "usage_events_2025_08.parquet" in out
    assert "bytes" in out and " s\n" in out
    assert _month_rows(history, AUGUST) == (0, 0)

    assert main(["events", "archive", "--before", "2025-09"]) == 0
    assert "nothing to archive" in capsys.readouterr().out

    # The wall clock says December 2026 or later: 13 months back is at least 2025-11.
    assert main(["events", "archive", "--before", "2099-01"]) == 2
    err = capsys.readouterr().err
    assert "retention period" in err and "METERLINE_RAW_RETENTION_MONTHS" in err and "latest --before" in err
    assert main(["events", "archive", "--before", "2025-13"]) == 2
    assert "YYYY-MM" in capsys.readouterr().err

    # The raw-event export of the archived month, through the command too.
    assert main(["export", "events", "--account", "acc_a", "--month", "2025-08"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("event_id,occurred_at_utc") and len(lines) > 50


def test_the_file_holds_every_value_exactly_whichever_way_it_is_read(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL reads the month with COPY into Arrow, SQLite row by row: the files are the same,
    value for value, row group for row group (with chunks of 4 rows, to cut the month in three)."""
    monkeypatch.setattr(archive, "CHUNK_ROWS", 4)
    march = date(2024, 3, 1)
    tricky = {"b": 1, "aa": "x", "a": {"d": [1.5, None, True, -0.0], "c": "é\u2028\"',\n"}, "é": "ü"}
    times = [
        datetime(2024, 3, 1, tzinfo=UTC),  # the month's first microsecond
        datetime(2024, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # and its last
        datetime(2024, 3, 15, 12, 0, 0, 1, tzinfo=UTC),
    ]
    outside = [datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)]
    stored = []
    for index in range(11):
        at = times[index % 3] + timedelta(minutes=index) if index >= 3 else times[index]
        stored.append(
            {
                "event_id": ['a,b"c\nd', "", "e\\f", "plain"][index % 4] + str(index),
                "account_id": f"acc_{'ab'[index % 2]}",
                "meter_id": 1 + index % 3,
                "quantity": 2**53 + 1 + index,  # past a float's exact integers
                "occurred_at": at if at < datetime(2024, 4, 1, tzinfo=UTC) else times[0],
                "usage_date": date(2024, 2, 29) + timedelta(days=index),
                "model": ["", "atlas-1", 'ä, "q"'][index % 3],
                "project": ["", "web\n2"][index % 2],
                "api_key": "key",
                "dimensions": [{}, tricky, {"model": "atlas-1"}][index % 3],
                "amount_nanos": 2**62 + 3 * index,
                "rate_card_version_id": None if index % 2 else 7 + index,
                "content_hash": f"{index:032x}",
                "batch_id": 100 + index,
                "received_at": at + timedelta(seconds=5, microseconds=index),
            }
        )
    with unit_of_work(engine, write=True) as session:
        session.add_all(UsageEvent(**values) for values in stored)
        session.add_all(UsageEvent(**{**stored[0], "occurred_at": at}) for at in outside)

    order = sorted(range(len(stored)), key=lambda i: (stored[i]["account_id"], stored[i]["occurred_at"], i))
    expected = [stored[i] for i in order]  # by account, time and id (ids follow the inserts)
    postgres = engine.dialect.name == "postgresql"
    with unit_of_work(engine) as session:
        assert archive._uses_copy(session) == postgres
        written = archive._write_file(session, march, tmp_path / "default")
        row_by_row = archive._write_file(session, march, tmp_path / "rows", copy=False)

    table = pq.read_table(written)
    assert table.schema == archive.SCHEMA
    assert pq.ParquetFile(written).metadata.num_row_groups == 3
    assert [row["event_id"] for row in table.to_pylist()] == [row["event_id"] for row in expected]
    for row, values in zip(table.to_pylist(), expected, strict=True):
        assert row["dimensions"] == archive.dimensions_text(values["dimensions"])
        assert {name: row[name] for name in values if name != "dimensions"} == {
            name: value for name, value in values.items() if name != "dimensions"
        }
    assert archive.dimensions_text(tricky).startswith('{"a":{"c":')  # sorted keys, nested too

    other = pq.read_table(row_by_row)
    assert table.equals(other)  # same values, same types, same nulls
    first, second = pq.ParquetFile(written).metadata, pq.ParquetFile(row_by_row).metadata
    assert [first.row_group(i).num_rows for i in range(3)] == [second.row_group(i).num_rows for i in range(3)]
