"""Statements and receipts in the portal: the Balance page's monthly statements (PDF and CSV) and
Buy credits' receipt PDF.

Files are made when a button is clicked (Streamlit runs ``data`` then, in its own thread), in one
snapshot of the database, after the reader's access is checked again in that snapshot. Reading is
all they do: whoever may see the page (any member, a support agent, also viewing as the customer)
may download them.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

import streamlit as st
from sqlalchemy import Engine
from streamlit.delta_generator import DeltaGenerator

from app.page import PageContext, read, show_error
from app.resources import get_engine
from core.accounts import require_access
from core.clock import system_clock
from core.errors import BillingError
from core.statements import (
    Statement,
    company,
    receipt,
    receipt_pdf,
    statement,
    statement_csv,
    statement_file_name,
    statement_pdf,
)
from core.statements.build import account_statement_months
from core.statements.months import StatementMonth
from core.statements.receipts import receipt_number
from core.usage.focus import focus_snapshot

MONTH_KEY = "balance.statement.month"


def _statement_of(engine: Engine, ctx: PageContext, month_key: str, at: datetime) -> Statement:
    with focus_snapshot(engine) as session:
        require_access(session, email=ctx.email, account_id=ctx.account_id, is_support=ctx.is_support)
        return statement(session, ctx.account_id, month_key, at=at)


def statement_pdf_for(engine: Engine, ctx: PageContext, month_key: str, at: datetime | None = None) -> bytes:
    """The statement PDF of the context's account for ``month_key``, if this reader may still read it."""
    return statement_pdf(_statement_of(engine, ctx, month_key, at or system_clock()), company())


def statement_csv_for(engine: Engine, ctx: PageContext, month_key: str, at: datetime | None = None) -> bytes:
    """The statement CSV of the context's account for ``month_key``, if this reader may still read it."""
    return statement_csv(_statement_of(engine, ctx, month_key, at or system_clock()))


def receipt_pdf_for(engine: Engine, ctx: PageContext, top_up_id: int, base_url: str = "") -> bytes:
    """The receipt PDF of one of the context's account's paid top-ups, if this reader may still read it."""
    with focus_snapshot(engine) as session:
        require_access(session, email=ctx.email, account_id=ctx.account_id, is_support=ctx.is_support)
        made = receipt(session, ctx.account_id, top_up_id)
    return receipt_pdf(made, company(), base_url=base_url)


def month_label(month: StatementMonth, at: datetime) -> str:
    return month.label if month.is_closed(at) else f"{month.label} (month to date)"


def statements_section(ctx: PageContext) -> None:
    """A month picker (every month of the account, this one to date) and its statement as PDF and CSV."""
    st.subheader("Monthly statements")
    now = system_clock()
    try:
        months = read(
            ctx, lambda session, account: account_statement_months(session, account.account_id, at=now)
        )
    except BillingError as error:
        show_error(error)
        return
    by_key = {month.key: month for month in months}
    keys = list(by_key)
    st.caption(
        "For your records and your accountant: the opening balance, each purchase, promotional and "
        "goodwill credits, usage by meter and model, expired credits, refunds and disputes, adjustments "
        f"and the closing balance of a calendar month in {months[0].timezone}. The PDF rounds to 2 "
        "decimals; the CSV has every digit. This month's statement runs to date and is final once the "
        "month ends."
    )
    if st.session_state.get(MONTH_KEY) not in by_key:
        st.session_state[MONTH_KEY] = keys[1] if len(keys) > 1 else keys[0]  # the last closed month
    pick, pdf, csv = st.columns([2, 2, 2], vertical_alignment="bottom")
    key = pick.selectbox(
        f"Month ({months[0].timezone})",
        keys,
        format_func=lambda k: month_label(by_key[k], now),
        key=MONTH_KEY,
    )
    engine = get_engine()
    pdf.download_button(
        "Statement (PDF)",
        data=partial(statement_pdf_for, engine, ctx, key),
        file_name=statement_file_name(ctx.account_id, key, "pdf"),
        mime="application/pdf",
        key="balance.statement.pdf",
        on_click="ignore",
        icon=":material/picture_as_pdf:",
        help="The month's statement to print or file, amounts to 2 decimals.",
    )
    csv.download_button(
        "Statement (CSV)",
        data=partial(statement_csv_for, engine, ctx, key),
        file_name=statement_file_name(ctx.account_id, key, "csv"),
        mime="text/csv",
        key="balance.statement.csv",
        on_click="ignore",
        icon=":material/download:",
        help="The same statement, one row per line, every digit (exact decimal strings).",
    )


def receipt_download(ctx: PageContext, top_up_id: int, base_url: str, *, container: DeltaGenerator) -> None:
    """The "Receipt (PDF)" download of one paid top-up (one click: the file is made then)."""
    container.download_button(
        "Receipt (PDF)",
        data=partial(receipt_pdf_for, get_engine(), ctx, top_up_id, base_url),
        file_name=f"receipt_{receipt_number(top_up_id)}.pdf",
        mime="application/pdf",
        key=f"buy.receipt_pdf.{top_up_id}",
        on_click="ignore",
        icon=":material/picture_as_pdf:",
        help="The receipt to keep or send to your accountant: number, date, amount, credits, card and "
        "payment id.",
    )
