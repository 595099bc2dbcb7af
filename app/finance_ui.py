"""The Finance page's sections (support admins only): pick a month, then one function per section.

``pages/finance.py`` draws ``require_finance``, ``finance_month`` and then each section with the
month chosen; a new section (the margin per model) is one more function here or in its own
module, called from the page with the same month. Figures are money at cost basis, so dollars
(docs/money.md: what customers paid), two decimals on screen and every digit in the CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import select

from app.credits_table import ROUNDED_HELP, credits_values, dollars_nanos_values, money_column, styled
from app.focus_ui import month_label, recent_months
from app.resources import get_engine
from app.support_ui import current_agent
from core.clock import system_clock
from core.db.models import Account
from core.display import CREDIT_WORTH
from core.finance import (
    Rollforward,
    RollforwardLine,
    credit_rollforward,
    deferred_now_usd_nanos,
    rollforward_csv,
)
from core.finance.report import rounded_text
from core.finance.rollforward import TOTAL
from core.support import Agent
from core.usage.focus import focus_snapshot

MONTHS_OFFERED = 25  # this month and the two years before it
MONTH_KEY = "finance.month"
ACCOUNT_HEADER = "Account"
NAME_HEADER = "Name"
IDENTITY_HEADER = "Identity"
TOTAL_LABEL = "Total"
# (field of RollforwardLine, header, what the column means): short headers so the row fits.
MONEY_COLUMNS = (
    (
        "opening_deferred_usd_nanos",
        "Opening ($)",
        "Deferred revenue at the month's start: purchased credits not consumed",
    ),
    ("purchased_usd_nanos", "Purchased ($)", "Credits bought in the month, at what the customer paid"),
    (
        "recognized_usd_nanos",
        "Recognized ($)",
        "Purchased credits consumed (usage, or an overdraft a purchase paid off)",
    ),
    (
        "breakage_usd_nanos",
        "Breakage ($)",
        "Purchased credits that expired, or that support reversed without a refund",
    ),
    (
        "refunded_usd_nanos",
        "Refunded ($)",
        "Taken back by refunds and disputes (held while a dispute is open)",
    ),
    ("closing_deferred_usd_nanos", "Closing ($)", "Deferred revenue at the month's end"),
)
CREDIT_COLUMNS = (
    ("promotional_granted_nanos", "Promo granted (credits)", "Promotional and goodwill credits granted"),
    ("promotional_consumed_nanos", "Promo used (credits)", "Promotional and goodwill credits consumed"),
    (
        "promotional_expired_nanos",
        "Promo expired (credits)",
        "Promotional and goodwill credits expired or reversed",
    ),
)
MONEY_HEADERS = [header for _, header, _ in MONEY_COLUMNS]
CREDIT_HEADERS = [header for _, header, _ in CREDIT_COLUMNS]


def require_finance() -> Agent:
    """The signed-in support admin; anyone else gets a message and the page stops (the router
    lists the page for support admins only)."""
    agent = current_agent()
    if agent is None or not agent.is_admin:
        st.error("Finance is for Meterline support admins.")
        st.stop()
    return agent  # type: ignore[return-value]


def finance_month() -> str:
    """The month picker ("YYYY-MM", UTC) every section of the page reads."""
    months = recent_months(system_clock(), MONTHS_OFFERED)
    if st.session_state.get(MONTH_KEY) not in months:
        st.session_state[MONTH_KEY] = months[0]
    return str(st.selectbox("Month (UTC)", months, format_func=month_label, key=MONTH_KEY))


@dataclass(frozen=True)
class FinanceRead:
    """What the roll-forward section draws, read in one snapshot."""

    report: Rollforward
    ledger_now_usd_nanos: dict[str, int]  # purchased credits the ledger holds now, at cost
    names: dict[str, str]  # account id -> name


def read_rollforward(month: str) -> FinanceRead:
    """The month's roll-forward, the ledger's purchased credits now and the accounts' names."""
    with focus_snapshot(get_engine()) as session:
        report = credit_rollforward(session, month)
        names = {account_id: name for account_id, name in session.execute(select(Account.id, Account.name))}
        return FinanceRead(report, deferred_now_usd_nanos(session), names)


def rollforward_frame(lines: list[RollforwardLine], names: dict[str, str]) -> pd.DataFrame:
    """One row per line: exact Decimals underneath, shown by ``styled`` with two decimals."""
    frame = pd.DataFrame(
        {
            ACCOUNT_HEADER: [TOTAL_LABEL if line.account_id == TOTAL else line.account_id for line in lines],
            NAME_HEADER: [names.get(line.account_id, "") for line in lines],
        }
    )
    for name, header, _ in MONEY_COLUMNS:
        frame[header] = dollars_nanos_values(int(getattr(line, name)) for line in lines)
    frame[IDENTITY_HEADER] = ["✓ holds" if line.identity_holds else "✗ broken" for line in lines]
    for name, header, _ in CREDIT_COLUMNS:
        frame[header] = credits_values(int(getattr(line, name)) for line in lines)
    return frame


def _table(lines: list[RollforwardLine], names: dict[str, str], key: str) -> None:
    config: dict[str, Any] = {
        header: money_column(header, help=f"{meaning}. {ROUNDED_HELP}")
        for _, header, meaning in (*MONEY_COLUMNS, *CREDIT_COLUMNS)
    }
    config[ACCOUNT_HEADER] = st.column_config.TextColumn(ACCOUNT_HEADER, pinned=True)
    config[IDENTITY_HEADER] = st.column_config.TextColumn(
        IDENTITY_HEADER, help="Opening + purchased − recognized − breakage − refunded = closing, checked"
    )
    st.dataframe(
        styled(rollforward_frame(lines, names), dollars=MONEY_HEADERS, credits=CREDIT_HEADERS),
        hide_index=True,
        width="stretch",
        key=key,
        column_config=config,
    )


def _identity_note(report: Rollforward, ledger_now: dict[str, int], *, current: bool) -> None:
    """The identity, checked per account and in total; for the current month, the ledger too."""
    rule = "Opening + purchased − recognized − breakage − refunded = closing"
    if report.identity_holds:
        st.success(f"Checked: {rule} for every account and the total.", icon=":material/check_circle:")
    else:
        broken = ", ".join(line.account_id for line in report.lines if not line.identity_holds) or "the total"
        st.error(f"{rule} does not hold for {broken}. Run `meterline ledger check`.", icon=":material/error:")
    if not current:
        return
    closing = {line.account_id: line.closing_deferred_usd_nanos for line in report.lines}
    ledger = {account: amount for account, amount in ledger_now.items() if amount}
    if {a: v for a, v in closing.items() if v} == ledger:
        st.caption(
            f"Checked: closing deferred revenue equals the purchased credits the ledger holds now, at cost: "
            f"${rounded_text(sum(ledger.values()))}."
        )
    else:
        st.warning("Closing deferred revenue differs from the purchased credits the ledger holds now.")


def rollforward_section(month: str) -> Rollforward:
    """Credit roll-forward: totals, the identity checked, a row per account, and the CSV."""
    st.subheader("Credit roll-forward")
    st.caption(
        f"{month_label(month)}, UTC. Purchased credits in dollars at cost basis (what each purchase "
        f"cost; {CREDIT_WORTH} today): deferred revenue is what is not consumed yet, recognized is what "
        "usage consumed (usage beyond the balance counts once a purchase pays it off), breakage is what "
        "expired or support reversed, refunded is what refunds and disputes took back (held while a "
        "dispute is open). Promotional and goodwill credits carry no revenue: in credits, apart."
    )
    read = read_rollforward(month)
    report = read.report
    st.markdown("**Totals**")
    _table([report.totals], read.names, key="finance.rollforward.totals")
    _identity_note(report, read.ledger_now_usd_nanos, current=month == recent_months(system_clock(), 1)[0])
    st.markdown("**Per account**")
    if report.lines:
        _table(list(report.lines), read.names, key="finance.rollforward.accounts")
    else:
        st.info("No account held or moved credits in this month. Pick another month above.")
    st.download_button(
        f"Roll-forward {month} (CSV)",
        data=rollforward_csv(report),
        file_name=f"meterline-rollforward-{month}.csv",
        mime="text/csv",
        key="finance.rollforward.csv",
        icon=":material/download:",
        help="A row per account and the total, every digit (decimal strings), units in the column names.",
    )
    return report
