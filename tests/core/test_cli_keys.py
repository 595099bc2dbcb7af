"""``meterline keys create | list | revoke`` on both databases: the secret is the last line printed and
the only place it appears; listing shows prefixes and status; errors are one line and exit 2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from core.accounts import create_account
from core.cli import main
from core.customer_keys import list_customer_keys, secret_digest
from core.db import unit_of_work
from core.db.models import AuditLog

ACCOUNT = "acc_cli_keys"


@pytest.fixture
def cli_db(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("DATABASE_URL", db_url)
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id=ACCOUNT, name="CLI keys", at=datetime.now(UTC))
    return engine


def test_create_prints_the_secret_last_and_stores_only_its_hash(
    cli_db: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    last_day = (datetime.now(UTC) + timedelta(days=30)).date()
    code = main(
        ["keys", "create", "--account", ACCOUNT, "--name", "Finance export", "--scope", "usage:read",
         "--expires", last_day.isoformat()]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    secret = out.rstrip("\n").splitlines()[-1]
    assert secret.startswith("ml_live_") and len(secret) == 56
    assert out.count(secret) == 1  # printed once, as the last line
    with unit_of_work(cli_db) as session:
        (key,) = list_customer_keys(session, ACCOUNT)
        audit = session.execute(select(AuditLog.action, AuditLog.actor)).one()
    assert key.scopes == ("usage:read",) and key.created_by == "cli" and key.name == "Finance export"
    assert key.expires_at == datetime.combine(last_day + timedelta(days=1), datetime.min.time(), UTC)
    assert tuple(audit) == ("api_keys.create", "cli")
    with cli_db.connect() as connection:
        stored = connection.exec_driver_sql("SELECT secret_sha256, prefix FROM customer_api_keys").one()
    assert tuple(stored) == (secret_digest(secret), secret[:14])


def test_list_and_revoke(cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--account", ACCOUNT, "--name", "Dashboards"]) == 0
    secret = capsys.readouterr().out.splitlines()[-1]
    with unit_of_work(cli_db) as session:
        (key,) = list_customer_keys(session, ACCOUNT)
    assert key.scopes == ("usage:read", "balance:read")  # the default scopes

    assert main(["keys", "list", "--account", ACCOUNT]) == 0
    listing = capsys.readouterr().out
    assert f"{secret[:14]}…" in listing and "active" in listing and "Dashboards" in listing
    assert secret not in listing

    assert main(["keys", "revoke", str(key.key_id)]) == 0
    assert "revoked customer API key" in capsys.readouterr().out
    assert main(["keys", "list", "--account", ACCOUNT]) == 0
    assert "revoked" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["keys", "create", "--account", "acc_ghost", "--name", "x"], "does not exist"),
        (["keys", "create", "--account", ACCOUNT, "--name", "x", "--expires", "2020-01-01"], "in the past"),
        (["keys", "create", "--account", ACCOUNT, "--name", "x", "--expires", "soon"], "YYYY-MM-DD"),
        (["keys", "create", "--account", ACCOUNT, "--name", " "], "give the key a name"),
        (["keys", "revoke", "999"], "no customer API key"),
        (["keys", "revoke", "99999999999999999999999"], "no customer API key"),
        (["keys", "list", "--account", "acc_ghost"], "does not exist"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    cli_db: Engine, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_unknown_scope_is_refused_by_the_parser(
    cli_db: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["keys", "create", "--account", ACCOUNT, "--name", "x", "--scope", "admin"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
