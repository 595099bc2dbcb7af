"""The ``meterline`` command on both databases: ingest files, load rates, check the ledger, seed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from core.accounts import create_account
from core.cli import main
from core.db import unit_of_work
from core.db.models import Account, UsageEvent
from core.demo.seed import RATE_CARD_FILE

ACCOUNT = "acc_cli"


@pytest.fixture
def cli_db(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A database with the demo rate card (loaded by the command) and one account."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["rates", "load", str(RATE_CARD_FILE), "--allow-backdated"]) == 0
    with unit_of_work(engine, write=True) as session:
        create_account(
            session, account_id=ACCOUNT, name="CLI Test", at=datetime.now(UTC), rate_card_key="standard"
        )
    return engine


def _stamp(minutes_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(event_id: str, quantity: object = 1200, meter: str = "input_tokens") -> dict[str, object]:
    return {
        "event_id": event_id,
        "account_id": ACCOUNT,
        "meter": meter,
        "quantity": quantity,
        "timestamp": _stamp(30),
        "dimensions": {"model": "atlas-large", "project": "web"},
    }


def _stored(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.count()).select_from(UsageEvent)) or 0)


def test_ingest_jsonl_names_bad_lines_and_keeps_good_ones(
    cli_db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        json.dumps(_event("e1")),
        json.dumps(_event("e2", meter="output_tokens")),
        json.dumps(_event("e3", quantity=-5)),
        "",
        "{not json",
        json.dumps({**_event("e6"), "dimensions": None, "model": "atlas-mini"}),  # top-level dimension
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    capsys.readouterr()

    assert main(["ingest", str(path)]) == 1
    out = capsys.readouterr().out
    assert "3 accepted" in out
    assert "line 3 (event e3): quantity:" in out
    assert "line 5: line: not valid JSON" in out
    assert _stored(cli_db) == 3
    with unit_of_work(cli_db) as session:
        assert session.scalar(select(UsageEvent.model).where(UsageEvent.event_id == "e6")) == "atlas-mini"
        assert session.get(Account, ACCOUNT).balance_nanos < 0  # usage was rated and debited


def test_resending_a_file_counts_duplicates_once(
    cli_db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(_event(f"r{i}")) + "\n" for i in range(5)))
    assert main(["ingest", str(path), "--chunk-size", "2"]) == 0
    assert "5 accepted" in capsys.readouterr().out
    with unit_of_work(cli_db) as session:
        balance = session.get(Account, ACCOUNT).balance_nanos

    assert main(["ingest", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0 accepted, 5 duplicates" in out
    assert _stored(cli_db) == 5
    with unit_of_work(cli_db) as session:
        assert session.get(Account, ACCOUNT).balance_nanos == balance


def test_ingest_csv_with_dimension_columns_and_a_bad_line(
    cli_db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "backfill.csv"
    path.write_text(
        "event_id,account_id,meter,quantity,timestamp,model,project,api_key\n"
        f"c1,{ACCOUNT},input_tokens,1000,{_stamp(60)},atlas-mini,search,key_a\n"
        f"c2,{ACCOUNT},no_such_meter,10,{_stamp(60)},atlas-mini,search,key_a\n"
        f"c3,{ACCOUNT},requests,2.5,{_stamp(60)},,search,key_b\n"
        f"c4,{ACCOUNT},requests,3,{_stamp(60)},,search,key_b\n"
    )
    assert main(["ingest", str(path)]) == 1
    out = capsys.readouterr().out
    assert "2 accepted" in out
    assert "line 3 (event c2): meter:" in out
    assert "line 4 (event c3): quantity:" in out
    with unit_of_work(cli_db) as session:
        row = session.execute(
            select(UsageEvent.model, UsageEvent.project, UsageEvent.api_key).where(
                UsageEvent.event_id == "c1"
            )
        ).one()
    assert tuple(row) == ("atlas-mini", "search", "key_a")


def test_ledger_check_passes_after_ingest(
    cli_db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(_event("l1")) + "\n")
    assert main(["ingest", str(path)]) == 0
    assert main(["ledger", "check"]) == 0
    assert "OK, every invariant holds" in capsys.readouterr().out


def test_errors_are_one_line_and_exit_2(
    cli_db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["ingest", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["rates", "load", str(RATE_CARD_FILE.with_name("nope.toml"))]) == 2
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("event_id,meter\nx,input_tokens\n")
    assert main(["ingest", str(bad_csv)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 3
    assert all(line.startswith("meterline: error: ") for line in err.strip().splitlines())


def test_backdated_rate_card_needs_the_flag(cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    # Already loaded by the fixture: loading again adds nothing.
    assert main(["rates", "load", str(RATE_CARD_FILE), "--allow-backdated"]) == 0
    assert "nothing new" in capsys.readouterr().out


def test_demo_seed_if_empty_is_idempotent(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["demo", "seed", "--if-empty", "--days", "7"]) == 0
    seeded = _stored(engine)
    assert seeded > 0
    assert main(["demo", "seed", "--if-empty", "--days", "7"]) == 0
    assert _stored(engine) == seeded
    assert main(["demo", "seed", "--days", "7"]) == 2  # without --if-empty: refused, one line
    assert main(["ledger", "check"]) == 0


def test_db_upgrade_honours_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "fresh.db").exists()


def test_jobs_run_once_expires_due_grants(cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    from core.ledger import grant_credits

    granted_at = datetime.now(UTC) - timedelta(days=2)
    with unit_of_work(cli_db, write=True) as session:
        grant_credits(
            session,
            account_id=ACCOUNT,
            amount_nanos=5_000_000_000,
            source="promotional",
            at=granted_at,
            expires_at=granted_at + timedelta(days=1),
        )
    assert main(["jobs", "run", "--once"]) == 0
    assert "1 grant(s) expired" in capsys.readouterr().out
    with unit_of_work(cli_db) as session:
        account = session.get(Account, ACCOUNT)
        assert account is not None and account.balance_nanos == 0
    assert main(["jobs", "run", "--once"]) == 0
    assert "0 grant(s) expired" in capsys.readouterr().out


def test_ingest_reports_every_hostile_line_and_keeps_the_good_ones(
    cli_db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps(_event("good"))
    lines = [
        good.encode(),
        json.dumps({**_event("big"), "quantity": 10**16}).encode(),  # rated past int64 nanos
        json.dumps({**_event("edge"), "timestamp": "9999-12-31T23:00:00-05:00"}).encode(),
        b'{"event_id": "bad-\\ud800", "account_id": "acc_cli", "meter": "input_tokens", "quantity": 1, '
        + f'"timestamp": "{_stamp(30)}"}}'.encode(),
        json.dumps({**_event("frac")}).replace('"quantity": 1200', '"quantity": 2.9999999999999999').encode(),
        b'{"event_id": "\xff\xfe", "account_id": "acc_cli"}',  # not UTF-8 inside a string
        b"\xff\xfe not json at all",
        b'{"quantity": NaN}',
        b"[" * 50_000,
        json.dumps({**_event("digits")}).replace('"quantity": 1200', '"quantity": ' + "9" * 5000).encode(),
        json.dumps(_event("also-good")).encode(),
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    capsys.readouterr()

    assert main(["ingest", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "2 accepted" in out and "9 rejected" in out
    reported = [line for line in out.splitlines() if line.startswith("  line ")]
    assert [line.split(":")[0].split()[1] for line in reported] == [str(n) for n in range(2, 11)]
    assert "line 2 (event big): quantity:" in out and "[amount_too_large]" in out
    assert "line 3 (event edge): timestamp:" in out and "[out_of_range]" in out
    assert "line 4: event_id:" in out and "[invalid_character]" in out
    assert "line 5 (event frac): quantity:" in out and "[not_an_integer]" in out
    assert "line 8: line: not valid JSON" in out
    assert "line 10 (event digits): quantity:" in out and "[too_large]" in out
    assert _stored(cli_db) == 2


def test_ingest_csv_quantities_must_be_exact_numbers(
    cli_db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stamp = _stamp(30)
    rows = [
        "event_id,account_id,meter,quantity,timestamp,model",
        f"c1,{ACCOUNT},input_tokens,1200,{stamp},atlas-large",
        f"c2,{ACCOUNT},input_tokens,2.9999999999999999,{stamp},atlas-large",
        f"c3,{ACCOUNT},input_tokens,12abc,{stamp},atlas-large",
        f"c4,{ACCOUNT},input_tokens,NaN,{stamp},atlas-large",
        f"c5,{ACCOUNT},input_tokens,1e3,{stamp},atlas-large",
        f'c6,{ACCOUNT},input_tokens,5,{stamp},"{"x" * 200_000}"',  # a cell over the csv module's limit
        f"c7,{ACCOUNT},input_tokens,1200.000,{stamp},",
    ]
    path = tmp_path / "events.csv"
    path.write_text("\n".join(rows) + "\n")
    capsys.readouterr()

    assert main(["ingest", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "line 3 (event c2): quantity:" in out and "[not_an_integer]" in out
    assert "line 4 (event c3): quantity:" in out and "line 5 (event c4): quantity:" in out
    assert "line 7: line:" in out and "[bad_csv]" in out
    with unit_of_work(cli_db) as session:
        stored = dict(session.execute(select(UsageEvent.event_id, UsageEvent.quantity)).all())
    assert stored == {"c1": 1200, "c5": 1000, "c7": 1200}


def test_ingest_exits_zero_when_nothing_was_rejected(
    cli_db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "clean.jsonl"
    path.write_text(json.dumps(_event("fine")) + "\n")
    assert main(["ingest", str(path)]) == 0
    assert "0 rejected" in capsys.readouterr().out
