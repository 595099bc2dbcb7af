"""``meterline export focus``: an account's month as a FOCUS cost CSV on standard output;
``meterline export events``: its raw usage events (from the archive for an archived month)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.db import make_engine
from core.usage.focus import focus_csv, focus_snapshot, parse_month


def _export_focus(args: argparse.Namespace) -> int:
    parse_month(args.month)  # a bad month is refused before the database is opened
    engine = make_engine()
    try:
        with focus_snapshot(engine) as session:  # one snapshot: safe while ingestion runs
            data = focus_csv(session, args.account, args.month)
    finally:
        engine.dispose()
    sys.stdout.write(data.decode("utf-8"))
    sys.stdout.flush()
    return 0


def _export_events(args: argparse.Namespace) -> int:
    from core.usage.archive import parse_month
    from core.usage.event_export import write_raw_events_csv

    parse_month(args.month)
    engine = make_engine()
    try:
        with focus_snapshot(engine) as session:
            write_raw_events_csv(session, args.account, args.month, sys.stdout.buffer)
    finally:
        engine.dispose()
    sys.stdout.flush()
    return 0


def add_export_commands(commands: Any) -> None:
    """Add ``export focus`` to the ``meterline`` command's subcommands."""
    export = commands.add_parser("export", help="exports for other tools").add_subparsers(
        dest="action", required=True
    )
    focus = export.add_parser(
        "focus",
        help="an account's costs for one month (UTC) as a FOCUS 1.2 CSV, on standard output",
        description="Writes the FinOps FOCUS cost export of ACCOUNT for MONTH (a calendar month in UTC) "
        "to standard output: usage per day, meter, model, project and API key; purchases; credits applied.",
    )
    focus.add_argument("--account", required=True, metavar="ACCOUNT", help="the account id, e.g. acc_acme")
    focus.add_argument("--month", required=True, metavar="YYYY-MM", help="the calendar month in UTC")
    focus.set_defaults(run=_export_focus)
    events = export.add_parser(
        "events",
        help="an account's raw usage events of one month (UTC) as CSV, on standard output",
        description="Writes every usage event of ACCOUNT in MONTH (UTC) to standard output, one row each, "
        "exact values; an archived month is read from its Parquet file (METERLINE_ARCHIVE_DIR).",
    )
    events.add_argument("--account", required=True, metavar="ACCOUNT", help="the account id, e.g. acc_acme")
    events.add_argument("--month", required=True, metavar="YYYY-MM", help="the calendar month in UTC")
    events.set_defaults(run=_export_events)
