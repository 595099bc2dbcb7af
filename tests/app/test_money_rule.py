"""One money rule, everywhere (issue 16, docs/money.md): every page, for every demo user, on the
seeded demo story.

Each page is drawn as the user sees it (AppTest), and every piece of text it shows (markdown,
captions, alerts, metric labels, values and help, widget labels and options, table cells under
their headers, chart tooltips and axes) goes through ``tests/app/money_rule.py``: every money
figure carries its unit with two decimals, a balance or spend is never in dollars, dates and
times are written one way. Then one amount shown in two places must read the same: the balance
on Overview, on Balance & credits and in the support console; this period's spend on Overview,
Usage and Balance; a day's row in the 30-day and the 90-day Usage views.

The demo story is seeded once per database (about 40 s); each page is drawn once and kept.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from core.clock import system_clock
from core.db import make_engine
from core.db.migrate import upgrade
from core.demo import seed_demo
from core.demo.personas import SUPPORT_ADMIN_EMAIL, SUPPORT_EMAIL
from core.demo.seed import USERS
from tests.app.harness import MAIN
from tests.app.money_rule import Shown, collect, date_problems, metric_values, problems, table_rows
from tests.conftest import _postgres_admin_url

TIMEOUT = 120
CUSTOMER_PAGES = ("overview", "usage", "balance", "buy_credits", "prices", "alerts", "limits")
SUPPORT_PAGES = ("support_search", "support_account", "support_audit")
SEARCH_STATE = "_st_keyup_support_search.query"  # what the console's search field reports

# Pages other helpers are rewriting for issue 16; the lead removes these marks after merging them.
PENDING = pytest.mark.xfail(strict=False, reason="pages-a/pages-b pending merge")
MONEY_PENDING = {"overview", "usage"}  # "Cumulative spend (USD)"; the usage table's Spend in $
DATES_PENDING = set(CUSTOMER_PAGES)  # "as of 17:04:33 UTC", "Dec 07", ISO days, "… 2026 04:48"
SAME_AMOUNT_PENDING = False  # they agree already


@dataclass(frozen=True)
class Case:
    email: str
    page: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        shown = ",".join(value for _, value in self.params)
        return f"{self.email.split('@')[0]}-{self.page}" + (f"-{shown}" if shown else "")


ACCOUNTS = sorted({account for _, _, memberships in USERS for account, _ in memberships})
CUSTOMER_CASES = [
    Case(email, page, (("account", account),))
    for email, _, memberships in USERS
    for account, _ in memberships
    for page in CUSTOMER_PAGES
]
SUPPORT_CASES = [
    Case(agent, page, params)
    for agent in (SUPPORT_EMAIL, SUPPORT_ADMIN_EMAIL)
    for page, params in [
        ("support_search", ()),
        ("support_audit", ()),
        *[("support_account", (("open", account),)) for account in ACCOUNTS],
    ]
]
OWNERS = {account: next(e for e, _, m in USERS if (account, "owner") in m) for account in ACCOUNTS}


@dataclass
class Seen:
    """What one page showed: its text, its metrics, and its usage rows by day (Usage only)."""

    items: list[Shown]
    metrics: dict[str, str]
    days: list[dict[str, str]] = field(default_factory=list)


class DemoPortal:
    """The portal on the demo story; each page drawn once per (user, page, address)."""

    def __init__(self) -> None:
        self._seen: dict[Case, Seen] = {}

    def show(self, case: Case) -> Seen:
        if case not in self._seen:
            at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
            at.user = {"is_logged_in": True, "email": case.email}
            for name, value in case.params:
                at.query_params[name] = value
            at.run()
            at.switch_page(f"../pages/{case.page}.py")
            at.run()
            if case.page == "support_search":  # what every demo account shares: list them all
                at.session_state[SEARCH_STATE] = {"value": "example"}
                at.run()
            assert not at.exception, [e.value for e in at.exception]
            days = table_rows(at, having="Day") if case.page == "usage" else []
            self._seen[case] = Seen(collect(at), metric_values(at), days)
        return self._seen[case]


def _seed(url: str) -> None:
    engine = make_engine(url)
    try:
        seed_demo(engine, now=system_clock())  # 90 days: the 90-day Usage view has them all
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def portal(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPortal]:
    """The demo story in a database of its own, the portal pointed at it, support agents allowed."""
    admin_engine = None
    name = ""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("money_rule") / "demo.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        admin = _postgres_admin_url()
        if admin is None:
            pytest.skip(
                "PostgreSQL half skipped: set TEST_DATABASE_URL (make test does when a server answers)"
            )
        name = f"meterline_money_{uuid.uuid4().hex[:10]}"
        admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
    try:
        _seed(url)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DATABASE_URL", url)
            patch.setenv("METERLINE_SUPPORT_EMAILS", SUPPORT_EMAIL)
            patch.setenv("METERLINE_SUPPORT_ADMIN_EMAILS", SUPPORT_ADMIN_EMAIL)
            patch.delenv("METERLINE_ENV", raising=False)
            get_engine.clear()
            yield DemoPortal()
            get_engine().dispose()
            get_engine.clear()
    finally:
        if admin_engine is not None:
            with admin_engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin_engine.dispose()


def _params(cases: list[Case], pending: set[str]) -> list[object]:
    return [pytest.param(case, id=case.id, marks=[PENDING] if case.page in pending else []) for case in cases]


def _report(found: list[object]) -> str:
    unique = list(dict.fromkeys(str(problem) for problem in found))
    return f"{len(unique)} problem(s):\n  " + "\n  ".join(unique[:40])


@pytest.mark.parametrize("case", _params(CUSTOMER_CASES + SUPPORT_CASES, MONEY_PENDING))
def test_every_money_figure_carries_its_unit(portal: DemoPortal, case: Case) -> None:
    seen = portal.show(case)
    assert len(seen.items) > 5, "the page showed almost nothing: did it draw?"
    found = problems(seen.items)
    assert not found, _report(found)


@pytest.mark.parametrize("case", _params(CUSTOMER_CASES + SUPPORT_CASES, DATES_PENDING))
def test_dates_and_times_are_written_one_way(portal: DemoPortal, case: Case) -> None:
    found = date_problems(portal.show(case).items)
    assert not found, _report(found)


def _metric(seen: Seen, pattern: str) -> str:
    matching = [value for label, value in seen.metrics.items() if re.search(pattern, label, re.IGNORECASE)]
    assert matching, f"no metric labelled /{pattern}/ among {list(seen.metrics)}"
    return matching[0]


def _customer(page: str, account: str, *params: tuple[str, str]) -> Case:
    return Case(OWNERS[account], page, (("account", account), *params))


def _accounts(pending: bool) -> list[object]:
    return [pytest.param(account, id=account, marks=[PENDING] if pending else []) for account in ACCOUNTS]


@pytest.mark.parametrize("account", _accounts(SAME_AMOUNT_PENDING))
def test_the_balance_reads_the_same_on_every_page(portal: DemoPortal, account: str) -> None:
    overview = _metric(portal.show(_customer("overview", account)), r"^balance")
    balance = _metric(portal.show(_customer("balance", account)), r"^balance")
    console = _metric(
        portal.show(Case(SUPPORT_ADMIN_EMAIL, "support_account", (("open", account),))), r"^balance"
    )
    assert overview == balance == console
    assert overview.endswith(" credits")


@pytest.mark.parametrize("account", _accounts(SAME_AMOUNT_PENDING))
def test_this_periods_spend_reads_the_same_on_every_page(portal: DemoPortal, account: str) -> None:
    overview = _metric(portal.show(_customer("overview", account)), r"this period")
    usage = _metric(portal.show(_customer("usage", account)), r"this period")
    balance = _metric(portal.show(_customer("balance", account)), r"this period")
    assert overview == usage == balance


@pytest.mark.parametrize("account", _accounts(SAME_AMOUNT_PENDING))
def test_the_last_7_days_read_the_same_on_overview_and_usage(portal: DemoPortal, account: str) -> None:
    overview = portal.show(_customer("overview", account)).metrics
    week = [value for label, value in overview.items() if re.search(r"7 days|7-day|week", label, re.I)]
    usage = portal.show(_customer("usage", account, ("range", "7d")))
    total = _metric(usage, r"^spent (?!this period|today)")  # "Spent Dec 1–7 (PST)"
    assert total.endswith(" credits")
    assert all(value == total for value in week)  # Overview shows a 7-day total only if it chooses to


@pytest.mark.parametrize("account", _accounts(SAME_AMOUNT_PENDING))
def test_a_day_reads_the_same_in_the_30_and_90_day_views(portal: DemoPortal, account: str) -> None:
    def by_day(days: str) -> dict[tuple[str, ...], str]:
        rows = portal.show(_customer("usage", account, ("range", days), ("buckets", "day"))).days
        spend = next((c for c in (rows[0] if rows else {}) if re.search("spen[dt]", c, re.I)), None)
        return {tuple(v for c, v in row.items() if c != spend): row[spend] for row in rows} if spend else {}

    month, quarter = by_day("30d"), by_day("90d")
    shared = month.keys() & quarter.keys()
    if account == "acc_quietharbor":  # dormant: no usage in either view
        assert not month
        return
    assert shared, "the 30-day and the 90-day views share no row"
    assert {key: month[key] for key in shared} == {key: quarter[key] for key in shared}
