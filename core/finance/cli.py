"""``meterline finance rollforward --month YYYY-MM [--json]``: the credit roll-forward of a month."""

from __future__ import annotations

import argparse
from typing import Any

from core.db import make_engine
from core.finance.report import rollforward_json, rollforward_text
from core.finance.rollforward import credit_rollforward
from core.usage.focus import focus_snapshot, parse_month


def _rollforward(args: argparse.Namespace) -> int:
    month = parse_month(args.month)  # a bad month is refused before the database is opened
    engine = make_engine()
    try:
        with focus_snapshot(engine) as session:  # one snapshot: the queries agree while writers commit
            report = credit_rollforward(session, month)
    finally:
        engine.dispose()
    print(rollforward_json(report) if args.json else rollforward_text(report))
    return 0 if report.identity_holds else 1  # 1: done, but the data is wrong (as `ledger check`)


def add_finance_commands(commands: Any) -> Any:
    """Add ``finance rollforward`` to the ``meterline`` command's subcommands; returns ``finance``'s
    sub-commands, where others add theirs (``finance margin``)."""
    finance = commands.add_parser("finance", help="finance reports").add_subparsers(
        dest="action", required=True
    )
    rollforward = finance.add_parser(
        "rollforward",
        help="a month's credit roll-forward (UTC): deferred revenue, recognised, breakage, refunds",
        description="Per account and in total, for MONTH (a calendar month in UTC): opening deferred revenue "
        "(purchased credits not yet consumed, in dollars at cost basis), purchases, recognised revenue, "
        "breakage, refunds and closing deferred revenue; and promotional and goodwill credits granted, "
        "consumed and expired (in credits, no revenue). Exit 1 if the identity fails for a row.",
    )
    rollforward.add_argument("--month", required=True, metavar="YYYY-MM", help="the calendar month in UTC")
    rollforward.add_argument(
        "--json", action="store_true", help="print one JSON object (exact decimal strings)"
    )
    rollforward.set_defaults(run=_rollforward)
    return finance
