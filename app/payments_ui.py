"""What the Buy credits page draws, as small functions: amounts, the summary, the history table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from core.display import format_credits
from core.errors import ValidationError
from core.money import cents_to_nanos, credits_to_nanos
from core.payments import TopUpView, format_cents
from core.payments.config import TopUpLimits, dollars_to_cents

OTHER = "Other amount"
DEFAULT_BASE_URL = "http://localhost:8501"


def base_url(public_url: str) -> str:
    """The portal's address as this browser reaches it (``METERLINE_PUBLIC_URL`` wins)."""
    if public_url:
        return public_url
    try:
        parts = urlsplit(str(st.context.url or ""))
    except Exception:  # outside a browser session (tests): the default port
        return DEFAULT_BASE_URL
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return DEFAULT_BASE_URL


def absolute(url: str, base: str) -> str:
    """Our own pages are stored as paths; links need the host too."""
    return f"{base}{url}" if url.startswith("/") else url


def parse_amount(choice: str, custom: str, limits: TopUpLimits) -> int:
    """Cents of the chosen preset or the typed amount, within the limits (else ValidationError)."""
    if choice != OTHER:
        return dollars_to_cents(choice, field="amount")
    if not custom.strip():
        raise ValidationError(
            f"type an amount between {format_cents(limits.min_cents)} and {format_cents(limits.max_cents)}",
            field="amount",
        )
    return limits.check(dollars_to_cents(custom, field="amount"))


def parse_credits(text: str, *, field: str) -> int:
    try:
        nanos = credits_to_nanos(text.strip().replace(" credits", ""), field=field)
    except ValueError as error:
        raise ValidationError(str(error).split(": ", 1)[-1], field=field) from None
    if nanos < 0:
        raise ValidationError("give a number of credits, zero or more", field=field)
    return nanos


@dataclass(frozen=True)
class Summary:
    credits_nanos: int
    repaid_nanos: int  # of the negative balance, paid off first

    @property
    def left_nanos(self) -> int:
        return self.credits_nanos - self.repaid_nanos


def summarize(amount_cents: int, deficit_nanos: int) -> Summary:
    credits = cents_to_nanos(amount_cents)
    return Summary(credits, min(credits, -deficit_nanos) if deficit_nanos < 0 else 0)


def summary_text(amount_cents: int, summary: Summary) -> str:
    return (
        f"**{format_credits(summary.credits_nanos)}** for **{format_cents(amount_cents)}** "
        "· $1.00 per credit (1 credit = 100 cents, exactly)"
    )


def deficit_text(summary: Summary, deficit_nanos: int) -> str:
    return (
        f"Your balance is {format_credits(deficit_nanos)} below zero: this top-up pays "
        f"{format_credits(summary.repaid_nanos)} of that off first, so {format_credits(summary.left_nanos)} "
        "are left to use."
    )


def _local(moment: datetime | None, timezone: str) -> str:
    if moment is None:
        return ""
    return pd.Timestamp(moment).tz_convert(timezone).strftime("%b %d, %Y %H:%M")


def _notes(view: TopUpView) -> str:
    if view.note and view.state != "credited":
        return view.note
    if view.failure_message:
        return view.failure_message
    return view.note if (view.refunded_cents or view.dispute_status) else ""


def _ledger(view: TopUpView) -> str:
    if view.ledger_entry_id is None:
        return ""
    return f"Entry #{view.ledger_entry_id} (grant #{view.grant_id})"


def history_table(views: list[TopUpView], *, timezone: str, base: str) -> pd.DataFrame:
    """Every top-up: when, amount, credits, state, card, receipt, the ledger entry it made (exact text)."""
    return pd.DataFrame(
        {
            "When": [_local(v.created_at, timezone) for v in views],
            "Top-up": [f"#{v.top_up_id}" for v in views],
            "How": [v.kind_label for v in views],
            "Amount": [format_cents(v.amount_cents) for v in views],
            "Credits": [format_credits(v.credits_nanos) for v in views],
            "State": [
                v.state_label + (f" · dispute {v.dispute_status}" if v.dispute_status else "") for v in views
            ],
            "Card": [v.card_label for v in views],
            "Receipt": [absolute(v.receipt_url, base) if v.receipt_url else None for v in views],
            "Ledger": [_ledger(v) for v in views],
            "Notes": [_notes(v) for v in views],
        }
    )


HISTORY_COLUMNS = {
    "Receipt": st.column_config.LinkColumn("Receipt", display_text="Receipt"),
}
