"""The Finance page's sections (support admins only): pick a month, then one function per section.

``pages/finance.py`` draws ``require_finance``, ``finance_month`` and then each section with the
month chosen; a new section (the margin per model) is one more function here or in its own
module, called from the page with the same month. Figures are money at cost basis, so dollars
(docs/money.md: what customers paid), two decimals on screen and every digit in the CSV.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.credits_table import credits_values, dollars_nanos_values, money_column, styled
from app.focus_ui import month_label, recent_months
from app.resources import get_engine
from app.support_ui import current_agent
from core.clock import system_clock
from core.display import CREDIT_WORTH
from core.finance import (
    Rollforward,
    RollforwardLine,
    credit_rollforward,
    deferred_now_usd_nanos,
    rollforward_csv,
)
from core.finance.report import COLUMNS, rounded_text
from core.support import Agent
from core.usage.focus import focus_snapshot

MONTHS_OFFERED = 25  # this month and the two years before it
MONTH_KEY = "finance.month"
ACCOUNT_HEADER = "Account"
IDENTITY_HEADER = "Identity"
MONEY_HEADERS = [header for _, _, header in COLUMNS[:6]]
CREDIT_HEADERS = [header for _, _, header in COLUMNS[6:]]


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


def read_rollforward(month: str) -> tuple[Rollforward, dict[str, int]]:
    """The month's roll-forward and the ledger's purchased credits now, in one snapshot."""
    with focus_snapshot(get_engine()) as session:
        return credit_rollforward(session, month), deferred_now_usd_nanos(session)


def rollforward_frame(lines: list[RollforwardLine]) -> pd.DataFrame:
    """One row per line: exact Decimals underneath, shown by ``styled`` with two decimals."""
    frame = pd.DataFrame({ACCOUNT_HEADER: [line.account_id for line in lines]})
    for _, name, header in COLUMNS:
        amounts = [int(getattr(line, name)) for line in lines]
        is_money = header in MONEY_HEADERS
        frame[header] = dollars_nanos_values(amounts) if is_money else credits_values(amounts)
    frame[IDENTITY_HEADER] = ["✓ holds" if line.identity_holds else "✗ broken" for line in lines]
    return frame


def _table(lines: list[RollforwardLine], key: str) -> None:
    st.dataframe(
        styled(rollforward_frame(lines), dollars=MONEY_HEADERS, credits=CREDIT_HEADERS),
        hide_index=True,
        width="stretch",
        key=key,
        column_config={header: money_column(header) for header in MONEY_HEADERS + CREDIT_HEADERS}
        | {ACCOUNT_HEADER: st.column_config.TextColumn(ACCOUNT_HEADER, pinned=True)},
    )


def _identity_note(report: Rollforward, ledger_now: dict[str, int], current: bool) -> None:
    """The identity, checked per account and in total; for the current month, the ledger too."""
    rule = "Opening + purchased − recognized − breakage − refunded = closing"
    if report.identity_holds:
        st.success(f"✓ {rule}: checked for every account and the total.", icon=":material/check_circle:")
    else:
        broken = ", ".join(line.account_id for line in report.lines if not line.identity_holds) or "the total"
        st.error(f"✗ {rule} does not hold for {broken}. Run `meterline ledger check`.")
    if not current:
        return
    closing = {line.account_id: line.closing_deferred_usd_nanos for line in report.lines}
    ledger = {account: amount for account, amount in ledger_now.items() if amount}
    if {a: v for a, v in closing.items() if v} == ledger:
        st.caption(
            f"✓ Closing deferred revenue equals the purchased credits the ledger holds now, at cost: "
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
    report, ledger_now = read_rollforward(month)
    st.markdown("**Totals**")
    _table([report.totals], key="finance.rollforward.totals")
    _identity_note(report, ledger_now, current=month == recent_months(system_clock(), 1)[0])
    st.markdown("**Per account**")
    if report.lines:
        _table(list(report.lines), key="finance.rollforward.accounts")
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
