"""The ``meterline`` operator command.

    meterline db upgrade                   apply migrations (DATABASE_URL, else var/meterline.db)
    meterline ingest FILE                  backfill usage from JSON lines or CSV, 1,000 events a chunk
    meterline rates load FILE              load a TOML/YAML rate card (new versions only; audited)
    meterline rates rollback CARD --to VERSION --from DATETIME
                                           a new version with an earlier version's prices (future only)
    meterline costs load FILE              load an internal cost card (audited; never shown to customers)
    meterline finance margin --month YYYY-MM [--json]
                                           revenue, cost and margin per meter and model (UTC month)
    meterline ledger check                 prove the ledger invariants; exit 1 on a problem
    meterline demo seed [--if-empty]       the demo story (90 days of usage, four accounts)
    meterline demo seed --accounts N       N synthetic accounts instead (--days of usage each)
    meterline jobs run [--once]            periodic jobs (grant expiry) in their own process
    meterline payments reconcile           settle top-ups a lost webhook left open (also: alerts, sandbox)
    meterline spend backtest FILE.csv      walk a daily date,amount series: projection vs run rate
    meterline spend anomalies FILE.csv     the days a spend-spike rule would flag, each from the past only
    meterline api serve [--workers N]      the HTTP API alone, under uvicorn with N processes
    meterline export focus --account ACC --month YYYY-MM
                                           the account's month (UTC) as a FOCUS cost CSV on stdout
    meterline export events --account ACC --month YYYY-MM
                                           the account's raw events of the month (UTC) as CSV on stdout
    meterline events archive --before YYYY-MM [--dry-run]
                                           raw events of months before that one to Parquet, checked, dropped
    meterline keys create|revoke|list      customer API keys (create prints the secret as its last line)
    meterline finance rollforward --month YYYY-MM [--json]
                                           the month's credit roll-forward (UTC): deferred revenue at cost

Exit codes: 0 done; 1 done but something was wrong with the data (rejected lines, ledger
problems); 2 the command could not run (bad file, bad option, database not ready).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from core.clock import Clock, system_clock
from core.costs.cli import add_cost_commands
from core.customer_keys.cli import add_key_commands
from core.db import make_engine, unit_of_work
from core.errors import BillingError
from core.finance.cli import add_finance_commands
from core.metering.exact_json import NotJSON, loads_exact
from core.payments.cli import add_payment_commands
from core.usage.export_cli import add_export_commands

CHUNK_SIZE = 1_000  # events per write transaction: a crash loses at most the chunk in flight
EVENT_FIELDS = ("event_id", "account_id", "meter", "quantity", "timestamp")
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class LineRejection:
    """A rejected line of the input file (``line`` is 1-based, as an editor shows it)."""

    line: int
    event_id: str | None
    field: str | None
    code: str
    message: str


@dataclass
class IngestSummary:
    lines: int = 0
    chunks: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[LineRejection] = field(default_factory=list)


def _csv_value(column: str, value: str) -> object:
    """CSV cells are text: a quantity becomes an exact number so the same rules as the API apply.

    Whole numbers become ``int``, other numerals a ``Decimal`` (``2.5`` is then rejected as
    not an integer, never rounded); a cell that is no number stays text and is rejected as
    ``not_a_number``.
    """
    if column != "quantity":
        return value
    text = value.strip()
    if _INTEGER.match(text) and len(text) <= 40:
        return int(text)
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def _event_from_columns(row: dict[str, object]) -> dict[str, object]:
    """Core fields stay; every other column (model, project, api_key, ...) is a dimension."""
    event = {key: row[key] for key in EVENT_FIELDS if key in row and row[key] not in ("", None)}
    dimensions = dict(row["dimensions"]) if isinstance(row.get("dimensions"), dict) else {}
    for key, value in row.items():
        if key not in EVENT_FIELDS and key != "dimensions" and key and value not in ("", None):
            dimensions[key] = value
    if dimensions:
        event["dimensions"] = dimensions
    elif "dimensions" in row and not isinstance(row["dimensions"], dict):
        event["dimensions"] = row["dimensions"]  # let validation name the bad field
    return event


Line = tuple[int, dict[str, object] | LineRejection]


def _read_jsonl(path: Path) -> Iterator[Line]:
    # Bytes that are not UTF-8 become lone surrogates: inside a string, validation rejects
    # that field as invalid_character; elsewhere the line is not JSON. Either way, one line.
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                raw = loads_exact(text)
            except NotJSON as error:
                yield number, LineRejection(number, None, "line", "bad_json", f"not valid JSON: {error}")
                continue
            if not isinstance(raw, dict):
                yield (
                    number,
                    LineRejection(number, None, "line", "not_an_object", "each line must be an object"),
                )
                continue
            yield number, _event_from_columns(raw)


def _read_csv(path: Path) -> Iterator[Line]:
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            fieldnames = reader.fieldnames or []
        except csv.Error as error:
            raise ValueError(f"{path.name}: the CSV header cannot be read: {error}") from None
        missing = [name for name in EVENT_FIELDS if name not in fieldnames]
        if missing:
            raise ValueError(f"{path.name}: the CSV header needs the columns {', '.join(missing)}")
        while True:
            first_line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # e.g. a cell over the size limit: that row only
                yield (
                    first_line,
                    LineRejection(first_line, None, "line", "bad_csv", f"not a CSV row: {error}"),
                )
                continue
            number = reader.line_num  # physical line of the row's end (the header is line 1)
            if None in row:
                yield (
                    number,
                    LineRejection(
                        number,
                        _printable(row.get("event_id")),
                        "line",
                        "too_many_columns",
                        "more cells than header columns",
                    ),
                )
                continue
            yield number, _event_from_columns({k: _csv_value(k, v or "") for k, v in row.items()})


def _printable(value: object) -> str | None:
    """A value fit to print back (no invalid Unicode), or None."""
    if not isinstance(value, str):
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return None
    return value


def read_event_lines(path: Path) -> Iterator[Line]:
    """(line number, raw event or the reason the line cannot be an event), in file order."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return _read_jsonl(path)
    raise ValueError(f"{path.name}: give a .jsonl (JSON lines) or .csv file")


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def ingest_file(
    engine: Engine,
    path: Path,
    *,
    clock: Clock = system_clock,
    lateness: timedelta | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: bool = True,
) -> IngestSummary:
    """Ingest a file chunk by chunk, one write transaction each; committed chunks stay in."""
    from tqdm import tqdm

    from core.metering import ingest_events

    if chunk_size <= 0 or chunk_size > 5_000:
        raise ValueError("chunk size must be 1 to 5,000 events")
    summary = IngestSummary()
    touched: set[str] = set()  # accounts with committed usage, for the alert evaluation at the end
    lines = read_event_lines(path)
    bar = tqdm(
        total=_count_lines(path), unit=" lines", desc=path.name, file=sys.stderr, disable=not progress or None
    )

    def send(chunk: list[tuple[int, dict[str, object]]]) -> None:
        with unit_of_work(engine, write=True) as session:
            result = ingest_events(
                session, [event for _, event in chunk], clock=clock, source="cli", lateness=lateness
            )
        if result.batch_id is not None:
            touched.update(str(event.get("account_id")) for _, event in chunk)
        summary.chunks += 1
        summary.accepted += result.accepted
        summary.duplicates += len(result.duplicates)
        for rejection in result.rejected:
            summary.rejected.append(
                LineRejection(
                    chunk[rejection.index][0],
                    rejection.event_id,
                    rejection.field,
                    rejection.code,
                    rejection.message,
                )
            )

    chunk: list[tuple[int, dict[str, object]]] = []
    last_line = 0
    try:
        for number, item in lines:
            summary.lines += 1
            bar.update(number - last_line)
            last_line = number
            if isinstance(item, LineRejection):
                summary.rejected.append(item)
            else:
                chunk.append((number, item))
            if len(chunk) >= chunk_size:
                send(chunk)
                chunk = []
        if chunk:
            send(chunk)
    finally:
        bar.close()
    summary.rejected.sort(key=lambda r: r.line)
    # Spend control after the last commit: the alerts and caps of the accounts this file touched.
    from core.spend.runtime import evaluate_now

    evaluate_now(engine, touched, clock=clock)
    return summary


def _err(message: str) -> None:
    print(f"meterline: error: {message}", file=sys.stderr)


def _db_upgrade(_args: argparse.Namespace) -> int:
    from core.db.engine import database_url
    from core.db.migrate import upgrade

    upgrade()
    url = database_url()
    shown = url.split("@")[-1] if "@" in url else url
    print(f"database is up to date ({shown})")
    return 0


def _print_ingest_summary(summary: IngestSummary) -> None:
    print(
        f"{summary.lines:,} lines read in {summary.chunks} chunk(s): {summary.accepted:,} accepted, "
        f"{summary.duplicates:,} duplicates (already stored, counted once), "
        f"{len(summary.rejected):,} rejected"
    )
    for rejection in summary.rejected:  # every one: a line number, a field and a code each
        where = rejection.field or "line"
        event_id = _printable(rejection.event_id)
        event = f" (event {event_id})" if event_id else ""
        print(f"  line {rejection.line}{event}: {where}: {rejection.message} [{rejection.code}]")
    if summary.rejected:
        print("Accepted lines are stored; fix the rejected lines and send the file again (safe to resend).")


def _ingest(args: argparse.Namespace) -> int:
    engine = make_engine()
    try:
        lateness = None if args.lateness_days is None else timedelta(days=args.lateness_days)
        summary = ingest_file(engine, Path(args.file), lateness=lateness, chunk_size=args.chunk_size)
    finally:
        engine.dispose()
    _print_ingest_summary(summary)
    return 1 if summary.rejected else 0


def _rates_load(args: argparse.Namespace) -> int:
    from core.rating.history import load_rate_card_file_audited, operator_actor, print_load_report

    actor = operator_actor(args.actor)
    engine = make_engine()
    try:
        with unit_of_work(engine, write=True) as session:
            report = load_rate_card_file_audited(
                session, Path(args.file), at=system_clock(), actor=actor, allow_backdated=args.allow_backdated
            )
    finally:
        engine.dispose()
    print(f"rate card {report.card_key!r} from {args.file} (audited as {actor}):")
    if report.meters_created:
        print(f"  meters created: {', '.join(report.meters_created)}")
    print_load_report(report.versions_added, report.versions_unchanged)
    return 0


def _moment(text: str, field: str) -> datetime:
    """An RFC 3339 time with its offset, for an option; a ValidationError naming the option otherwise."""
    from core.errors import ValidationError

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationError(
            f"--{field} takes a time with its offset, e.g. 2026-12-01T00:00:00Z, not {text[:40]!r}",
            field=field,
        )
    return moment


def _rates_rollback(args: argparse.Namespace) -> int:
    from core.display import format_datetime
    from core.rating.history import operator_actor, rollback_rate_card

    actor = operator_actor(args.actor)
    effective_from = _moment(args.from_, "from")
    engine = make_engine()
    try:
        with unit_of_work(engine, write=True) as session:
            report = rollback_rate_card(
                session,
                card_key=args.card,
                to_version=args.to,
                effective_from=effective_from,
                at=system_clock(),
                actor=actor,
            )
    finally:
        engine.dispose()
    when = format_datetime(report.effective_from, "UTC")
    if report.version_added is None:
        print(
            f"rate card {report.card_key!r}: version {report.restored_version}'s prices from {when} "
            "were already loaded; nothing new"
        )
    else:
        print(
            f"rate card {report.card_key!r}: version {report.version_added} added with version "
            f"{report.restored_version}'s prices, in force from {when} (audited as {actor})"
        )
    return 0


def _ledger_check(_args: argparse.Namespace) -> int:
    from core.ledger import run_ledger_check

    engine = make_engine()
    try:
        report = run_ledger_check(engine)  # one snapshot: safe while ingestion runs
    finally:
        engine.dispose()
    print(
        f"checked {report.accounts_checked:,} accounts, {report.grants_checked:,} grants, "
        f"{report.batches_checked:,} batches: "
        + ("OK, every invariant holds" if report.ok else f"{len(report.problems)} problem(s)")
    )
    for problem in report.problems:
        print(f"  PROBLEM: {problem}")
    return 0 if report.ok else 1


def _events_archive(args: argparse.Namespace, clock: Clock = system_clock) -> int:
    from core.usage.archive import (
        archive_dir,
        archive_month,
        check_before,
        months_with_raw_events,
        parse_month,
    )

    before = parse_month(args.before, field="before")
    check_before(before, clock())  # refused before the database is opened
    directory = archive_dir()
    engine = make_engine()
    try:
        with unit_of_work(engine) as session:
            months = months_with_raw_events(session, before)
        if not months:
            print(f"no raw events before {before:%Y-%m}: nothing to archive")
            return 0
        total = 0
        for month in months:
            # One transaction per month: a failure leaves earlier months archived and this one intact.
            with unit_of_work(engine, write=True) as session:
                result = archive_month(session, month, directory, dry_run=args.dry_run, clock=clock)
            total += result.rows
            print(result.describe())
    finally:
        engine.dispose()
    done = "would archive" if args.dry_run else "archived"
    print(f"{done} {total:,} events of {len(months)} month(s) in {directory}")
    if args.dry_run:
        print("dry run: nothing was written or removed")
    return 0


def _has_accounts(engine: Engine) -> bool:
    from core.db.models import Account

    with unit_of_work(engine) as session:
        return bool(session.scalar(select(func.count()).select_from(Account)))


def _demo_seed(args: argparse.Namespace) -> int:
    from core.demo import seed_demo

    engine = make_engine()
    if args.accounts is not None:
        from core.demo.synthetic import seed_synthetic_accounts

        try:
            run = seed_synthetic_accounts(
                engine, count=args.accounts, now=system_clock(), days=args.days, progress=True
            )
        finally:
            engine.dispose()
        print(f"added {run.accounts:,} synthetic accounts, {run.events:,} usage events, {run.seconds:.0f} s")
        return 0
    try:
        if args.if_empty and _has_accounts(engine):
            print("demo seed skipped: the database already has accounts")
            return 0
        story = seed_demo(engine, now=system_clock(), days=args.days, progress=True)
    finally:
        engine.dispose()
    print(story.describe())
    return 0


def _jobs_run(args: argparse.Namespace) -> int:
    import threading

    from core.jobs import run_due_jobs, run_forever

    engine = make_engine()
    try:
        if args.once:
            outcome = run_due_jobs(engine)
            if not outcome.ran:
                print("jobs skipped: another process is running them right now")
            else:
                print(
                    f"jobs done: {outcome.grants_expired:,} grant(s) expired, "
                    f"{outcome.top_ups_reconciled:,} top-up(s) reconciled, "
                    f"{outcome.recharges_started:,} auto-recharge(s) started"
                )
            return 0
        print(f"running periodic jobs every {args.interval:g} s; Ctrl-C stops")
        run_forever(engine, threading.Event(), interval_s=args.interval)
    finally:
        engine.dispose()
    return 0


def _api_serve(args: argparse.Namespace) -> int:
    from core.api.server import serve

    if not 1 <= args.workers <= 64:
        raise ValueError("--workers must be 1 to 64")
    print(
        f"Meterline API on http://{args.host}:{args.port}/api/v1/, {args.workers} worker(s); Ctrl-C stops",
        flush=True,
    )
    serve(host=args.host, port=args.port, workers=args.workers)
    return 0


def _spend_backtest(args: argparse.Namespace) -> int:
    from core.spend.backtest import read_daily_series, result_json, result_text
    from core.spend.projection import MAX_BACKTEST_HORIZON_DAYS, backtest

    if args.horizon is not None and not 1 <= args.horizon <= MAX_BACKTEST_HORIZON_DAYS:
        raise ValueError(f"--horizon must be 1 to {MAX_BACKTEST_HORIZON_DAYS} days")
    path = Path(args.file)
    series = read_daily_series(path)
    result = backtest(series.first_day, series.amounts_nanos, horizon_days=args.horizon)
    print(result_json(result) if args.json else result_text(path.name, series, result))
    return 0


def _spend_anomalies(args: argparse.Namespace) -> int:
    from core.spend.alerts import parse_factor_percent
    from core.spend.anomaly import flag_days, report_json, report_text
    from core.spend.backtest import read_daily_series

    factor_percent = parse_factor_percent(args.factor)
    path = Path(args.file)
    series = read_daily_series(path)
    flags = flag_days(series.first_day, series.amounts_nanos, factor_percent)
    days = len(series.amounts_nanos)
    print(
        report_json(days, flags)
        if args.json
        else report_text(path.name, series.first_day, days, factor_percent, flags)
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meterline",
        description="Operator commands for Meterline. The database is DATABASE_URL, else var/meterline.db.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(run=_db_upgrade)

    ingest = commands.add_parser("ingest", help="ingest usage events from a JSON lines or CSV file")
    ingest.add_argument("file", help="*.jsonl / *.json (one event per line) or *.csv (with a header)")
    ingest.add_argument(
        "--lateness-days",
        type=int,
        default=None,
        help="accept events this many days old (default: METERLINE_MAX_LATENESS_DAYS or 35)",
    )
    ingest.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help=argparse.SUPPRESS)
    ingest.set_defaults(run=_ingest)

    api = commands.add_parser("api", help="the HTTP API on its own").add_subparsers(
        dest="action", required=True
    )
    api_serve = api.add_parser(
        "serve", help="the HTTP API under uvicorn with N worker processes (DATABASE_URL, METERLINE_API_TOKEN)"
    )
    api_serve.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    api_serve.add_argument("--port", type=int, default=8600, help="port (default 8600)")
    api_serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    api_serve.set_defaults(run=_api_serve)

    rates = commands.add_parser("rates", help="rate cards").add_subparsers(dest="action", required=True)
    load = rates.add_parser("load", help="load a TOML/YAML rate card file")
    load.add_argument("file")
    load.add_argument(
        "--allow-backdated",
        action="store_true",
        help="accept versions that start in the past, if no usage at or after that date was rated yet",
    )
    load.add_argument("--actor", help="who loads it, for the audit log (default: $USER)")
    load.set_defaults(run=_rates_load)
    rollback = rates.add_parser(
        "rollback", help="add a version that restores an earlier version's prices from a future moment"
    )
    rollback.add_argument("card", help="the rate card's key, e.g. standard")
    rollback.add_argument(
        "--to", type=int, required=True, metavar="VERSION", help="the version whose prices return"
    )
    rollback.add_argument(
        "--from",
        dest="from_",
        required=True,
        metavar="DATETIME",
        help="when they return (future, e.g. 2026-12-01T00:00:00Z)",
    )
    rollback.add_argument("--actor", help="who rolls back, for the audit log (default: $USER)")
    rollback.set_defaults(run=_rates_rollback)

    ledger = commands.add_parser("ledger", help="the credit ledger").add_subparsers(
        dest="action", required=True
    )
    ledger.add_parser("check", help="check balances, grants, batches and rollups").set_defaults(
        run=_ledger_check
    )

    demo = commands.add_parser("demo", help="demo data").add_subparsers(dest="action", required=True)
    seed = demo.add_parser("seed", help="seed the demo accounts, users, prices and 90 days of usage")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when accounts already exist")
    seed.add_argument("--days", type=int, default=90, help="days of usage history (default 90)")
    seed.add_argument(
        "--accounts",
        type=int,
        metavar="N",
        help="instead of the story, add N synthetic accounts with --days of usage each (for benchmarks)",
    )
    seed.set_defaults(run=_demo_seed)

    jobs = commands.add_parser("jobs", help="periodic jobs").add_subparsers(dest="action", required=True)
    run = jobs.add_parser(
        "run", help="run the periodic jobs (set METERLINE_JOBS=off on the portal servers when you do)"
    )
    run.add_argument("--once", action="store_true", help="run them once and exit")
    run.add_argument("--interval", type=float, default=60.0, help="seconds between runs (default 60)")
    run.set_defaults(run=_jobs_run)
    events = commands.add_parser("events", help="raw usage events").add_subparsers(
        dest="action", required=True
    )
    archive = events.add_parser(
        "archive",
        help="move raw events of old months to Parquet files (checked against the rollups), then drop them",
        description="Archives every UTC month before --before that still holds raw events: one Parquet file "
        "per month in METERLINE_ARCHIVE_DIR (default var/archive), checked (rows and amounts against the "
        "table and the hourly rollups), then the raw rows are removed. Months inside the retention period "
        "(METERLINE_RAW_RETENTION_MONTHS, default 13) or the lateness window are refused.",
    )
    archive.add_argument(
        "--before", required=True, metavar="YYYY-MM", help="archive the months before this one"
    )
    archive.add_argument("--dry-run", action="store_true", help="say what would be archived; change nothing")
    archive.set_defaults(run=_events_archive)
    add_payment_commands(commands)  # meterline payments reconcile | alerts | sandbox …
    add_export_commands(commands)  # meterline export focus --account ACC --month YYYY-MM
    add_key_commands(commands)  # meterline keys create | revoke | list
    finance = add_finance_commands(commands)  # meterline finance rollforward --month YYYY-MM [--json]
    add_cost_commands(commands, finance=finance)  # meterline costs load | finance margin

    spend = commands.add_parser("spend", help="spend projections")
    spend_actions = spend.add_subparsers(dest="action", required=True)
    spend_backtest = spend_actions.add_parser(
        "backtest", help="walk forward through a daily date,amount CSV: projection vs the 7-day run rate"
    )
    spend_backtest.add_argument("file", help="CSV with a header and the columns date, amount (currency)")
    spend_backtest.add_argument(
        "--horizon", type=int, default=None, help="project this many days from each cut (default: month end)"
    )
    spend_backtest.add_argument("--json", action="store_true", help="print one JSON object")
    spend_backtest.set_defaults(run=_spend_backtest)
    spend_anomalies = spend_actions.add_parser(
        "anomalies", help="the days of a daily date,amount CSV the spend-spike rule would flag"
    )
    spend_anomalies.add_argument("file", help="CSV with a header and the columns date, amount (currency)")
    spend_anomalies.add_argument(
        "--factor",
        default="2",
        help="K: flag at K × a usual day of its weekday (default 2, as a rule's factor)",
    )
    spend_anomalies.add_argument("--json", action="store_true", help='print {"flagged": [...], "days": N}')
    spend_anomalies.set_defaults(run=_spend_anomalies)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors are one line on stderr and exit code 2, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BillingError as error:
        field = f" ({error.field})" if error.field else ""
        _err(f"{error.message}{field}")
    except (ValueError, OSError) as error:
        _err(str(error))
    except SQLAlchemyError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        _err(f"database: {first_line} — is DATABASE_URL right, and did `meterline db upgrade` run?")
    except KeyboardInterrupt:
        _err("interrupted; chunks already committed stay in (resending the file is safe)")
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
