"""Buy credits: top up by card (secure checkout, or one click with a saved card), remove a saved card,
auto-recharge, history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from app.page import READ_ONLY_HELP, PageContext, error_text, page_context, read, show_error
from app.payments import get_payments
from app.payments_ui import (
    HISTORY_COLUMNS,
    OTHER,
    absolute,
    base_url,
    deficit_text,
    history_table,
    parse_amount,
    parse_credits,
    summarize,
    summary_text,
)
from app.user_text import literal
from core.accounts import AccountSummary
from core.accounts.permissions import CREDITS_BUY
from core.clock import system_clock
from core.display import format_credits
from core.errors import BillingError, NotFound, ValidationError
from core.ledger import balance_view
from core.money import cents_to_nanos
from core.payments import (
    Card,
    Payments,
    TopUpView,
    auto_recharge_view,
    buy_with_saved_card,
    cancel_checkout,
    describe,
    format_cents,
    refresh_top_up,
    remove_saved_card,
    save_auto_recharge,
    saved_cards,
    start_checkout,
    top_up_history,
    top_up_view,
)
from core.payments.cards import CARD_REMOVED
from core.payments.config import dollars_to_cents
from core.payments.views import AutoRechargeView, find_open_top_up

WATCH_KEY = "buy.watch"  # top-ups this session waits on (started here, or returned to)
RETURNED_KEY = "buy.returned"  # return links already checked with the provider
REMOVE_KEY = "buy.remove"  # (where, card id) whose removal waits for the second click
REMOVED_KEY = "buy.removed"  # what the last removal did, shown once after the rerun
NEW_CARD = "A new card (secure checkout)"


@dataclass(frozen=True)
class BuyData:
    account: AccountSummary
    balance_nanos: int
    deficit_nanos: int
    history: list[TopUpView]
    cards: list[Card]
    recharge: AutoRechargeView


def load(session: Session, account: AccountSummary, payments: Payments, at: datetime) -> BuyData:
    balance = balance_view(session, account.account_id, at=at)
    provider = payments.provider.name if payments.provider else ""
    return BuyData(
        account,
        balance.balance_nanos,
        balance.deficit_nanos,
        top_up_history(session, account.account_id),
        saved_cards(session, account.account_id, provider),
        auto_recharge_view(
            session, account.account_id, at=at, max_failures=payments.config.recharge_max_failures
        ),
    )


def watch(top_up_id: int) -> None:
    ids = st.session_state.setdefault(WATCH_KEY, [])
    if top_up_id not in ids:
        ids.append(top_up_id)


def page_url(base: str, account_id: str) -> str:
    return f"{base}/buy_credits?account={account_id}"


def mode_banner(payments: Payments) -> None:
    if payments.mode == "sandbox":
        st.warning(
            "**Sandbox mode** — like Stripe's test mode: you pay on a local test checkout with test cards, "
            "no money moves and no real card is charged. Set `STRIPE_API_KEY` to take real payments.",
            icon=":material/science:",
        )


def handle_return(ctx: PageContext, payments: Payments) -> None:
    """Back from the checkout (or the bank): ask the provider what happened, never take the link's word."""
    raw = str(st.query_params.get("top_up", ""))
    # ASCII digits that fit a 64-bit id: anything else in the address is not one of our top-ups.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18) or payments.provider is None:
        return
    top_up_id = int(raw)
    checked = st.session_state.setdefault(RETURNED_KEY, set())
    if top_up_id in checked:
        return
    checked.add(top_up_id)
    try:
        if st.query_params.get("canceled"):
            cancel_checkout(
                payments.engine,
                payments.provider,
                actor=ctx.actor,
                account_id=ctx.account_id,
                top_up_id=top_up_id,
                clock=payments.clock,
            )
        else:
            read(ctx, lambda session, account: top_up_view(session, top_up_id, account_id=account.account_id))
            refresh_top_up(
                payments.engine,
                payments.provider,
                top_up_id=top_up_id,
                account_id=ctx.account_id,
                clock=payments.clock,
            )
    except NotFound:
        st.warning("That payment belongs to another account: pick it in the sidebar to see it.")
        return
    except BillingError as error:
        st.warning(f"{error_text(error)}. This page checks again shortly.")
    watch(top_up_id)


def show_top_up(view: TopUpView, base: str) -> None:
    text = describe(view)
    if view.state == "credited":
        st.success(text, icon=":material/check_circle:")
    elif view.state in ("failed", "canceled"):
        st.error(text) if view.state == "failed" else st.info(text)
    elif view.needs_action:
        st.warning(text)
        st.link_button("Confirm with your bank →", absolute(view.action_url, base), type="primary")
    else:
        st.info(text, icon=":material/hourglass_top:")
        if view.checkout_url and view.kind == "checkout":
            st.link_button("Open the secure checkout →", absolute(view.checkout_url, base), type="primary")


def status_section(ctx: PageContext, base: str) -> None:
    """The top-ups this session started or came back to: live while one is open, still once settled."""
    ids = list(st.session_state.get(WATCH_KEY, []))
    if not ids:
        return
    views = read(ctx, lambda s, a: [top_up_view(s, i, account_id=a.account_id) for i in ids])
    if any(view.is_open for view in views):
        live_status(ctx, base)
        return
    st.session_state.pop("buy.open_seen", None)
    for view in views:
        show_top_up(view, base)


@st.fragment(run_every=2)
def live_status(ctx: PageContext, base: str) -> None:
    """The top-ups this session waits on, as they are now; the page refreshes when one settles."""
    ids = list(st.session_state.get(WATCH_KEY, []))
    if not ids:
        return
    views = read(ctx, lambda s, a: [top_up_view(s, i, account_id=a.account_id) for i in ids])
    open_ids = [v.top_up_id for v in views if v.is_open]
    for view in views:
        show_top_up(view, base)
    previous = st.session_state.get("buy.open_seen")
    st.session_state["buy.open_seen"] = open_ids
    if previous is not None and set(previous) - set(open_ids):
        st.rerun(scope="app")  # one settled: balance, history and cards change


def buy_section(ctx: PageContext, payments: Payments, data: BuyData, base: str) -> None:
    limits = payments.config.limits
    st.subheader("Top up")
    choice = st.radio(
        "Amount", [format_cents(c) for c in limits.presets_cents] + [OTHER], horizontal=True, key="buy.amount"
    )
    custom = st.text_input(
        f"Amount in dollars ({format_cents(limits.min_cents)} to {format_cents(limits.max_cents)})",
        key="buy.custom",
        disabled=choice != OTHER,
        placeholder="e.g. 40 or 12.50",
    )
    try:
        amount_cents = parse_amount(choice, custom, limits)
    except ValidationError as error:
        st.error(f"Amount: {literal(error.message)}.")
        return
    summary = summarize(amount_cents, data.deficit_nanos)
    st.markdown(summary_text(amount_cents, summary))
    if summary.repaid_nanos:
        st.info(deficit_text(summary, data.deficit_nanos))
    options = [card.label for card in data.cards] + [NEW_CARD]
    method = st.radio("Pay with", options, key="buy.method")
    actor = ctx.actor
    provider = payments.provider
    assert provider is not None
    try:
        if method == NEW_CARD:
            save = st.checkbox(
                "Save this card for one-click purchases and auto-recharge", value=True, key="buy.save"
            )
            if st.button(f"Continue to payment · {format_cents(amount_cents)}", type="primary", key="buy.go"):
                existing = read(
                    ctx,
                    lambda s, a: find_open_top_up(
                        s,
                        account_id=a.account_id,
                        created_by=ctx.email,
                        kind="checkout",
                        amount_cents=amount_cents,
                        save_card=save,
                    ),
                )
                view = existing or start_checkout(
                    payments.engine,
                    provider,
                    payments.config,
                    actor=actor,
                    account_id=ctx.account_id,
                    amount_cents=amount_cents,
                    save_card=save,
                    request_key=uuid.uuid4().hex,
                    page_url=page_url(base, ctx.account_id),
                    clock=payments.clock,
                )
                watch(view.top_up_id)
                st.rerun()  # the status (and the checkout link) shows at the top
        else:
            card = data.cards[options.index(method)]
            if st.button(f"Pay {format_cents(amount_cents)} with {card.label}", type="primary", key="buy.go"):
                existing = read(
                    ctx,
                    lambda s, a: find_open_top_up(
                        s,
                        account_id=a.account_id,
                        created_by=ctx.email,
                        kind="saved_card",
                        amount_cents=amount_cents,
                        card_id=card.payment_method_id,
                    ),
                )
                view = existing or buy_with_saved_card(
                    payments.engine,
                    provider,
                    payments.config,
                    actor=actor,
                    account_id=ctx.account_id,
                    amount_cents=amount_cents,
                    card_id=card.payment_method_id,
                    request_key=uuid.uuid4().hex,
                    page_url=page_url(base, ctx.account_id),
                    clock=payments.clock,
                )
                watch(view.top_up_id)
                st.rerun()
    except BillingError as error:
        show_error(error)
    if method != NEW_CARD:
        remove_card(ctx, payments, data, data.cards[options.index(method)], where="buy")


def remove_card(ctx: PageContext, payments: Payments, data: BuyData, card: Card, *, where: str) -> None:
    """A "Remove this card" button, then a second click to confirm; the outcome shows at the top."""
    if st.session_state.get(REMOVE_KEY) != (where, card.payment_method_id):
        if st.button("Remove this card", key=f"buy.remove.{where}", icon=":material/delete:"):
            st.session_state[REMOVE_KEY] = (where, card.payment_method_id)
            st.rerun()
        return
    recharge = data.recharge
    pays_recharge = recharge.enabled and recharge.card_id == card.payment_method_id
    st.warning(
        f"Remove {card.label}? It is detached from your account at the payment provider and cannot be "
        "charged from the portal again; the next top-up goes through the secure checkout."
        + (" Auto-recharge pays with this card, so it will be turned off." if pays_recharge else "")
    )
    confirm, keep = st.columns(2)
    if keep.button("Keep the card", key=f"buy.remove_keep.{where}"):
        st.session_state.pop(REMOVE_KEY, None)
        st.rerun()
    if not confirm.button("Yes, remove this card", key=f"buy.remove_confirm.{where}", type="primary"):
        return
    st.session_state.pop(REMOVE_KEY, None)
    try:
        removal = remove_saved_card(
            payments,
            actor=ctx.actor,
            account_id=ctx.account_id,
            card_id=card.payment_method_id,
        )
    except BillingError as error:
        show_error(error)
        return
    st.session_state[REMOVED_KEY] = removal.message
    st.rerun()  # the card is gone from the lists: the page offers the secure checkout


def _dollars(cents: int) -> str:
    return format_cents(cents).removeprefix("$") if cents else ""


def _credits(nanos: int) -> str:
    return format_credits(nanos).removesuffix(" credits")


def recharge_status(data: BuyData) -> None:
    view = data.recharge
    tz = data.account.timezone
    if view.enabled:
        card = next((c.label for c in data.cards if c.payment_method_id == view.card_id), "the saved card")
        st.success(
            f"**On**: when the balance falls below {format_credits(view.threshold_nanos)}, buy "
            f"{format_credits(cents_to_nanos(view.amount_cents))} ({format_cents(view.amount_cents)}) "
            f"with {card}. "
            f"This month so far: {format_cents(view.month_spent_cents)} of the "
            f"{format_cents(view.monthly_max_cents)} maximum.",
            icon=":material/autorenew:",
        )
    elif view.last_decision_code == CARD_REMOVED:
        st.warning(view.last_decision, icon=":material/credit_card_off:")
    else:
        st.info("Auto-recharge is **off**. " + ("" if view.now.code == "off" else view.now.message))
    with st.expander("Why didn't it recharge?", expanded=view.enabled and view.now.code != "above_threshold"):
        st.markdown(f"**Right now:** {view.now.message}")
        if view.last_decision and view.last_decision_at is not None:
            when = pd.Timestamp(view.last_decision_at).tz_convert(tz).strftime("%b %d, %H:%M")
            st.markdown(f"**Last decision** ({when} {tz}): {view.last_decision}")
        attempts = [v for v in data.history if v.kind == "auto_recharge"][:5]
        for attempt in attempts:
            when = pd.Timestamp(attempt.created_at).tz_convert(tz).strftime("%b %d, %H:%M")
            why = f" — {attempt.failure_message}" if attempt.failure_message else ""
            st.markdown(f"- {when}: {format_cents(attempt.amount_cents)}, {attempt.state_label.lower()}{why}")
        if not attempts:
            st.caption("No auto-recharge has run yet.")


def recharge_form(ctx: PageContext, payments: Payments, data: BuyData) -> None:
    view = data.recharge
    if not data.cards:
        st.caption("To turn auto-recharge on, first buy with a new card and tick “Save this card”.")
        return
    labels = [c.label for c in data.cards]
    current = next((i for i, c in enumerate(data.cards) if c.payment_method_id == view.card_id), 0)
    paying = next((c for c in data.cards if c.payment_method_id == view.card_id), None)
    if paying is not None:  # removed under "Pay with" above: one place to manage a card
        st.caption(f"Auto-recharge pays with {paying.label}.")
    with st.form("buy.recharge_form"):
        enabled = st.toggle("Auto-recharge on", value=view.enabled)
        left, middle, right = st.columns(3)
        threshold = left.text_input(
            "When the balance falls below (credits)",
            value=_credits(view.threshold_nanos) if view.configured else "100",
        )
        amount = middle.text_input(
            "Buy this much (dollars)", value=_dollars(view.amount_cents) if view.configured else "200.00"
        )
        monthly = right.text_input(
            "Monthly maximum (dollars)",
            value=_dollars(view.monthly_max_cents) if view.configured else "1,000.00",
        )
        card = st.selectbox("Pay with", labels, index=current)
        if not st.form_submit_button("Save auto-recharge"):
            return
    try:
        save_auto_recharge(
            payments,
            actor=ctx.actor,
            account_id=ctx.account_id,
            enabled=enabled,
            threshold_nanos=parse_credits(threshold, field="threshold"),
            amount_cents=dollars_to_cents(amount, field="amount"),
            monthly_max_cents=dollars_to_cents(monthly, field="monthly_max"),
            card_id=data.cards[labels.index(card)].payment_method_id,
        )
    except ValidationError as error:
        names = {
            "threshold": "Threshold",
            "amount": "Amount",
            "monthly_max": "Monthly maximum",
            "card": "Card",
        }
        st.error(f"{names.get(error.field or '', 'Auto-recharge')}: {literal(error.message)}.")
        return
    except BillingError as error:
        show_error(error)
        return
    st.toast("Auto-recharge saved")
    st.rerun()


st.title("Buy credits")
context = page_context()
if context is None:
    st.stop()
try:
    payments = get_payments()
except BillingError as error:  # the server's payment settings cannot be read (see the README)
    show_error(error)
    st.stop()
base = base_url(payments.config.public_url)
if not context.read_only:
    handle_return(context, payments)  # back from Stripe: the customer's own session settles it
now = system_clock()
try:
    buy_data = read(context, lambda session, account: load(session, account, payments, now))
except BillingError as error:
    show_error(error)
    st.stop()

may_buy = CREDITS_BUY.allows(buy_data.account.role)  # what to draw; the core decides on the write
mode_banner(payments)
st.caption(
    f"{literal(buy_data.account.name)} · balance {format_credits(buy_data.balance_nanos)} · "
    "1 credit = $1.00 · credits are added once the payment has gone through"
)
removed_message = st.session_state.pop(REMOVED_KEY, None)
if removed_message and not context.read_only:
    st.success(removed_message, icon=":material/check_circle:")
status_section(context, base)
if payments.provider is None:
    st.warning(
        "Buying credits is not set up on this server: an operator sets `STRIPE_API_KEY` and "
        "`STRIPE_WEBHOOK_SECRET` (see the README)."
    )
elif context.read_only:
    st.info(READ_ONLY_HELP)
elif may_buy:
    buy_section(context, payments, buy_data, base)
else:
    st.info(
        "Only owners, admins and billing members can buy credits. You can see the purchase history below."
    )

st.subheader("Auto-recharge")
recharge_status(buy_data)
if may_buy and payments.provider is not None and not context.read_only:
    recharge_form(context, payments, buy_data)

st.subheader("Purchase history")
if not buy_data.history:
    st.info("No purchases yet." + (" Pick an amount above to buy your first credits." if may_buy else ""))
else:
    st.dataframe(
        history_table(buy_data.history, timezone=buy_data.account.timezone, base=base),
        hide_index=True,
        width="stretch",
        column_config=HISTORY_COLUMNS,
    )
    st.caption(
        "Each credited top-up adds a purchased grant; “Ledger” is the Balance page's entry that added it. "
        f"Times in {buy_data.account.timezone}."
    )
