"""What the Buy credits page draws, as small functions: amounts, summary, history table, receipt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode, urlsplit

import pandas as pd
import streamlit as st

from app.credits_table import credits_values, dollars_values, money_column
from core.amount_input import typed_amount
from core.display import DATETIME_COLUMN_FORMAT_NO_ZONE, format_credits
from core.money import NANOS_PER_CREDIT, cents_to_nanos
from core.payments import Card, TopUpView, format_cents
from core.payments.config import TopUpLimits, dollars_to_cents
from core.payments.views import OtherPurchase

OTHER = "Other amount"
DEFAULT_BASE_URL = "http://localhost:8501"
NANOS_PER_CENT = NANOS_PER_CREDIT // 100
CUSTOM_HELP = "Dollars and cents with the digits 0-9, like $40 or $1,250.50 (at most 2 decimals)."
CREDITS_HELP = "A number of credits with the digits 0-9, like 100 or 1,250.50 credits (at most 2 decimals)."
RECEIPT_STATES = ("paid", "credited", "refunded")  # a payment went through: there is something to receipt


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


@dataclass(frozen=True)
class AmountChoice:
    """One amount offered with one click: its price, and (with a debt) what it does."""

    cents: int
    caption: str = ""

    @property
    def label(self) -> str:
        return format_cents(self.cents)


def owed_cents(deficit_nanos: int) -> int:
    """The whole cents that pay off a negative balance (rounded up: nothing stays owed)."""
    owed = max(0, -deficit_nanos)
    return -(-owed // NANOS_PER_CENT)


def amount_choices(limits: TopUpLimits, deficit_nanos: int) -> list[AmountChoice]:
    """The presets; with a negative balance, "pay off and add X" instead: the debt rounded up to the
    cent plus each preset, within the limits, the smallest (the default) first."""
    debt = owed_cents(deficit_nanos)
    if debt == 0:
        return [AmountChoice(cents) for cents in limits.presets_cents]
    choices = [
        AmountChoice(
            debt + extra,
            f"pays off {format_credits(-deficit_nanos)}, then "
            f"{format_credits(cents_to_nanos(debt + extra) + deficit_nanos)} to use",
        )
        for extra in limits.presets_cents
        if limits.min_cents <= debt + extra <= limits.max_cents
    ]
    return choices or [AmountChoice(cents) for cents in limits.presets_cents]


def parse_custom(text: str, limits: TopUpLimits) -> int | None:
    """Cents of a typed amount within the limits; None while nothing is typed; else ValidationError."""
    if not text.strip(" "):
        return None
    return limits.check(dollars_to_cents(text, field="amount"))


def parse_credits(text: str, *, field: str) -> int:
    """Nano-credits of a typed number of credits ("100", "1,250.50"), by the same rule as amounts."""
    cleaned = text.strip(" ").removesuffix("credits").strip(" ")
    return int(typed_amount(cleaned, field=field, what="a number of credits") * NANOS_PER_CREDIT)


@dataclass(frozen=True)
class Summary:
    credits_nanos: int
    repaid_nanos: int  # of the negative balance, paid off first
    owed_nanos: int  # the negative balance before the purchase (positive, 0 without one)

    @property
    def left_nanos(self) -> int:
        return self.credits_nanos - self.repaid_nanos

    @property
    def still_owed_nanos(self) -> int:
        return self.owed_nanos - self.repaid_nanos


def summarize(amount_cents: int, deficit_nanos: int) -> Summary:
    credits = cents_to_nanos(amount_cents)
    owed = max(0, -deficit_nanos)
    return Summary(credits, min(credits, owed), owed)


def summary_text(amount_cents: int, summary: Summary) -> str:
    return (
        f"**{format_credits(summary.credits_nanos)}** for **{format_cents(amount_cents)}** "
        "· $1.00 per credit (1 credit = 100 cents, exactly)"
    )


def deficit_text(summary: Summary) -> str:
    """What a purchase does to a negative balance, in plain words."""
    owed = f"You owe {format_credits(summary.owed_nanos)} of usage your credits did not cover."
    if summary.still_owed_nanos > 0:
        return (
            f"{owed} This purchase pays off {format_credits(summary.repaid_nanos)} of it; you will still "
            f"owe **{format_credits(summary.still_owed_nanos)}**, and new usage adds to that."
        )
    return (
        f"{owed} This purchase pays that off first, then leaves **{format_credits(summary.left_nanos)}** "
        "to use."
    )


def receipt_link(base: str, top_up_id: int, params: dict[str, str]) -> str:
    """The portal's receipt of a top-up: this page with ``receipt=<id>`` (and the account in view)."""
    return f"{base}/buy_credits?{urlencode({**params, 'receipt': str(top_up_id)})}"


def _notes(view: TopUpView) -> str:
    if view.note and view.state != "credited":
        return view.note
    if view.failure_message:
        return view.failure_message
    return view.note if (view.refunded_cents or view.dispute_status) else ""


def _ledger(entry_id: int | None, grant_id: int | None) -> str:
    if entry_id is None:
        return ""
    return f"Entry #{entry_id} (grant #{grant_id})"


HISTORY_MONEY = ("Amount ($)", "Credits")


@dataclass(frozen=True)
class HistoryRow:
    when: datetime
    state: str
    amount_cents: int | None
    credits_nanos: int
    receipt: str | None
    how: str
    card: str
    purchase: str
    ledger: str
    notes: str
    top_up_id: int | None = None  # a card top-up's id (its receipt); None for a purchase outside the portal


def _top_up_row(view: TopUpView, link: str | None) -> HistoryRow:
    return HistoryRow(
        when=view.created_at,
        state=view.state_label + (f" · dispute {view.dispute_status}" if view.dispute_status else ""),
        amount_cents=view.amount_cents,
        credits_nanos=view.credits_nanos,
        receipt=link if view.state in RECEIPT_STATES else None,
        how=view.kind_label,
        card=view.card_label,
        purchase=f"Top-up #{view.top_up_id}",
        ledger=_ledger(view.ledger_entry_id, view.grant_id),
        notes=_notes(view),
        top_up_id=view.top_up_id,
    )


def _other_row(other: OtherPurchase) -> HistoryRow:
    return HistoryRow(
        when=other.effective_at,
        state="Credited",
        amount_cents=other.cost_basis_cents,
        credits_nanos=other.credits_nanos,
        receipt=None,
        how="Contract or invoice",
        card="",
        purchase=f"Grant #{other.grant_id}",
        ledger=_ledger(other.ledger_entry_id, other.grant_id),
        notes=other.description,
    )


def history_rows(
    views: Sequence[TopUpView], others: Sequence[OtherPurchase], *, base: str, params: dict[str, str]
) -> list[HistoryRow]:
    """Every purchase of the account, whoever made it, newest first: card top-ups (with their
    receipts) and purchased credits added outside the portal."""
    rows = [_top_up_row(v, receipt_link(base, v.top_up_id, params)) for v in views]
    rows += [_other_row(o) for o in others]
    rows.sort(key=lambda row: row.when, reverse=True)
    return rows


def history_table(rows: Sequence[HistoryRow]) -> pd.DataFrame:
    """The history for people. The state right after the time: on a phone the first columns are the
    ones on screen."""
    return pd.DataFrame(
        {
            "When": pd.to_datetime(pd.Series([r.when for r in rows], dtype="object"), utc=True),
            "State": [r.state for r in rows],
            "Amount ($)": dollars_values(r.amount_cents for r in rows),
            "Credits": credits_values(r.credits_nanos for r in rows),
            "Receipt": pd.Series([r.receipt for r in rows], dtype="object"),
            "How": [r.how for r in rows],
            "Card": [r.card for r in rows],
            "Purchase": [r.purchase for r in rows],
            "Ledger": [r.ledger for r in rows],
            "Notes": [r.notes for r in rows],
        }
    )


def history_columns(timezone: str) -> dict[str, object]:
    return {
        "When": st.column_config.DatetimeColumn(
            "When", format=DATETIME_COLUMN_FORMAT_NO_ZONE, timezone=timezone
        ),
        "Amount ($)": money_column("Amount ($)", help="What the card was charged, in US dollars"),
        "Credits": money_column("Credits", help="Credits the purchase added, rounded to 2 decimals"),
        "Receipt": st.column_config.LinkColumn(
            "Receipt", display_text="Receipt", help="Opens the receipt: date, account, credits, amount, card"
        ),
    }


@dataclass(frozen=True)
class ReceiptLine:
    label: str
    value: str


def receipt_lines(view: TopUpView, *, account_name: str, when: str) -> list[ReceiptLine]:
    """What a receipt says, in order: date, account, credits, amount, card, payment id."""
    lines = [
        ReceiptLine("Date", when),
        ReceiptLine("Account", f"{account_name} ({view.account_id})"),
        ReceiptLine("Credits", format_credits(view.credits_nanos)),
        ReceiptLine("Amount", format_cents(view.amount_cents)),
        ReceiptLine("Card", view.card_label or "—"),
        ReceiptLine("Payment id", view.payment_id or "—"),
        ReceiptLine("Top-up", f"#{view.top_up_id} · {view.state_label}"),
    ]
    if view.refunded_cents:
        lines.append(ReceiptLine("Refunded", format_cents(view.refunded_cents)))
    return lines


def recharge_cards(cards: Sequence[Card], paying: Card | None) -> list[Card]:
    """The saved cards as auto-recharge's "Pay with" offers them, with the card it pays with under its
    own id: a card saved twice is listed once, and that once must not quietly become another card."""
    if paying is None:
        return list(cards)

    def same(card: Card) -> bool:
        return (card.brand, card.last4, card.exp_month, card.exp_year) == (
            paying.brand,
            paying.last4,
            paying.exp_month,
            paying.exp_year,
        )

    listed = [paying if same(card) else card for card in cards]
    return listed if paying in listed else [*listed, paying]


RECHARGE_FIXED = "fixed"
RECHARGE_TARGET = "target"
RECHARGE_MODE_LABELS = {
    RECHARGE_FIXED: "A fixed amount",
    RECHARGE_TARGET: "What brings the balance back to a target",
}


def per_charge_cents(min_cents: int, max_cents: int, monthly_max_cents: int) -> tuple[int, int]:
    """The smallest and largest one "back to the target" charge may be: the top-up limits, and never
    more than the monthly maximum."""
    return min_cents, max(min_cents, min(max_cents, monthly_max_cents))


def target_explanation(*, threshold_nanos: int, target_nanos: int, low_cents: int, high_cents: int) -> str:
    """ "When your balance falls below 20.00 credits, buy what brings it back to 100.00 credits, $5.00 to
    $1,000.00 per charge"."""
    return (
        f"When your balance falls below {format_credits(threshold_nanos)}, buy what brings it back to "
        f"{format_credits(target_nanos)}, {format_cents(low_cents)} to {format_cents(high_cents)} per charge"
    )
