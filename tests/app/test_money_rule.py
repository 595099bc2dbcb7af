"""One money rule, everywhere (issue 16, docs/money.md): every page, for every demo user, on the
seeded demo story.

Each page is drawn as the user sees it (AppTest, opened directly at its address), and every piece of
text it shows (markdown, captions, alerts, metric labels, values and help, widget labels and
options, table cells as drawn under their headers, chart tooltips and axes) goes through
``tests/app/money_rule.py``: every money figure carries its unit with two decimals, a balance or
spend is never in dollars, dates and times are written one way. Then one amount shown in two places
must read the same: the balance on Overview, on Balance & credits and in the support console; this
period's spend on Overview, Usage and Balance; a day's row in the 30-day and the 90-day Usage views.

Cost: the demo story is seeded once per database, with ``DEMO_DAYS`` of history (what the story
needs, not 90); each (page, user, address) is drawn once, in one script run, and every check reads
that one drawing. Users are taken once per (account, role): two members with the same role in one
account see the same pages.
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
from app.usage_view import DEFAULT_PRESET
from core.clock import system_clock
from core.db import make_engine
from core.db.migrate import upgrade
from core.demo import seed_demo
from core.demo.personas import SUPPORT_ADMIN_EMAIL, SUPPORT_EMAIL
from core.demo.seed import DORMANT, OVERDRAWN, USERS
from tests.app.harness import MAIN
from tests.app.money_rule import Shown, collect, date_problems, metric_values, problems, table_rows
from tests.conftest import _postgres_admin_url

TIMEOUT = 120
# Enough history for the story the pages tell: Quiet Harbor active for its first 30 days, then
# dormant for more than 30 (its 30-day Usage view is empty, its Overview says it sleeps); Pixel
# Forge past its credits (a negative balance); a 90-day Usage view longer than the 30-day one.
DEMO_DAYS = 80
CUSTOMER_PAGES = (
    "overview",
    "usage",
    "balance",
    "buy_credits",
    "prices",
    "alerts",
    "limits",
    "members",
    "api_keys",
)
HOME_PAGES = {"overview", "support_search"}  # at "/" for a customer and for an agent
SEARCH_STATE = "_st_keyup_support_search.query"  # what the console's search field reports
assert DEFAULT_PRESET == "30d"  # a customer's Usage case is the 30-day view by day


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
# One member per (account, role): who else has that role there sees the same.
MEMBERS = {
    (account, role): email for email, _, memberships in reversed(USERS) for account, role in memberships
}
OWNERS = {account: MEMBERS[(account, "owner")] for account in ACCOUNTS}
WEEK = (("range", "7d"),)
QUARTER = (("range", "90d"), ("buckets", "day"))
CUSTOMER_CASES = [
    Case(email, page, (("account", account),))
    for (account, _), email in sorted(MEMBERS.items())
    for page in CUSTOMER_PAGES
]
USAGE_RANGE_CASES = [
    Case(OWNERS[account], "usage", (("account", account), *params))
    for account in ACCOUNTS
    for params in (WEEK, QUARTER)
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
            self._seen[case] = self._draw(case)
        return self._seen[case]

    @staticmethod
    def _draw(case: Case) -> Seen:
        """One script run, opened at the page's address (as a link or a reload would)."""
        at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
        at.user = {"is_logged_in": True, "email": case.email}
        for name, value in case.params:
            at.query_params[name] = value
        if case.page not in HOME_PAGES:
            at.switch_page(f"../pages/{case.page}.py")  # the page's own address: its file name
        if case.page == "support_search":  # what every demo account shares: list them all
            at.session_state[SEARCH_STATE] = {"value": "example"}
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.title and at.title[0].value, "the page drew no title: did it open?"
        days = table_rows(at, having="Day") if case.page == "usage" else []
        return Seen(collect(at), metric_values(at), days)


def _seed(url: str) -> None:
    engine = make_engine(url)
    try:
        seed_demo(engine, now=system_clock(), days=DEMO_DAYS)
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


def _report(found: list[object]) -> str:
    unique = list(dict.fromkeys(str(problem) for problem in found))
    return f"{len(unique)} problem(s):\n  " + "\n  ".join(unique[:40])


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id) for c in CUSTOMER_CASES + USAGE_RANGE_CASES + SUPPORT_CASES]
)
def test_the_page_writes_money_and_times_by_the_rule(portal: DemoPortal, case: Case) -> None:
    seen = portal.show(case)
    assert len(seen.items) > 5, "the page showed almost nothing: did it draw?"
    found = [*problems(seen.items), *date_problems(seen.items)]
    assert not found, _report(found)


def _metric(seen: Seen, pattern: str) -> str:
    matching = [value for label, value in seen.metrics.items() if re.search(pattern, label, re.IGNORECASE)]
    assert matching, f"no metric labelled /{pattern}/ among {list(seen.metrics)}"
    return matching[0]


def _customer(page: str, account: str, *params: tuple[str, str]) -> Case:
    return Case(OWNERS[account], page, (("account", account), *params))


@pytest.mark.parametrize("account", ACCOUNTS)
def test_the_balance_reads_the_same_on_every_page(portal: DemoPortal, account: str) -> None:
    overview = _metric(portal.show(_customer("overview", account)), r"^balance")
    balance = _metric(portal.show(_customer("balance", account)), r"^balance")
    console = _metric(
        portal.show(Case(SUPPORT_ADMIN_EMAIL, "support_account", (("open", account),))), r"^balance"
    )
    assert overview == balance == console
    assert overview.endswith(" credits")
    if account == OVERDRAWN:  # the story's negative balance, written as every amount is
        assert overview.startswith("-"), f"Pixel Forge is not past its credits after {DEMO_DAYS} days"


@pytest.mark.parametrize("account", ACCOUNTS)
def test_this_periods_spend_reads_the_same_on_every_page(portal: DemoPortal, account: str) -> None:
    overview = _metric(portal.show(_customer("overview", account)), r"this period")
    usage = _metric(portal.show(_customer("usage", account)), r"this period")
    balance = _metric(portal.show(_customer("balance", account)), r"this period")
    assert overview == usage == balance


@pytest.mark.parametrize("account", ACCOUNTS)
def test_the_last_7_days_read_the_same_on_overview_and_usage(portal: DemoPortal, account: str) -> None:
    overview = portal.show(_customer("overview", account)).metrics
    week = [value for label, value in overview.items() if re.search(r"7 days|7-day|week", label, re.I)]
    usage = portal.show(_customer("usage", account, *WEEK))
    total = _metric(usage, r"^spent (?!this period|today)")  # "Spent Dec 1–7 (PST)"
    assert total.endswith(" credits")
    assert all(value == total for value in week)  # Overview shows a 7-day total only if it chooses to


@pytest.mark.parametrize("account", ACCOUNTS)
def test_a_day_reads_the_same_in_the_30_and_90_day_views(portal: DemoPortal, account: str) -> None:
    def by_day(case: Case) -> dict[tuple[str, ...], str]:
        rows = portal.show(case).days
        spend = next((c for c in (rows[0] if rows else {}) if re.search("spen[dt]", c, re.I)), None)
        return {tuple(v for c, v in row.items() if c != spend): row[spend] for row in rows} if spend else {}

    month = by_day(_customer("usage", account))  # the default view: the last 30 days, by day
    quarter = by_day(_customer("usage", account, *QUARTER))
    if account == DORMANT:  # no usage for more than 30 days: the 90-day view alone has some
        assert not month and quarter
        return
    shared = month.keys() & quarter.keys()
    assert shared, "the 30-day and the 90-day views share no row"
    assert len(quarter) > len(month)
    assert {key: month[key] for key in shared} == {key: quarter[key] for key in shared}
