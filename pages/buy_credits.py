"""Buy credits: top up by card (secure checkout, or one click with a saved card), remove a saved card,
auto-recharge, history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import streamlit as st
from sqlalchemy.orm import Session

from app.credits_table import styled
from app.live import as_of
from app.page import READ_ONLY_HELP, PageContext, error_text, page_context, read, show_error
from app.payments import get_payments
from app.payments_ui import (
    CREDITS_HELP,
    CUSTOM_HELP,
    OTHER,
    RECEIPT_STATES,
    RECHARGE_FIXED,
    RECHARGE_MODE_LABELS,
    RECHARGE_TARGET,
    ReceiptLine,
    absolute,
    amount_choices,
    base_url,
    deficit_text,
    history_columns,
    history_rows,
    history_table,
    parse_credits,
    parse_custom,
    per_charge_cents,
    receipt_lines,
    recharge_cards,
    summarize,
    summary_text,
    target_explanation,
)
from app.statements_ui import receipt_download
from app.user_text import code, literal
from core.accounts import AccountSummary
from core.accounts.permissions import AUTO_RECHARGE_EDIT, CARDS_REMOVE, CREDITS_BUY
from core.clock import system_clock
from core.display import CREDIT_WORTH, credits_number, format_credits, format_datetime, zone_note
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
from core.payments.config import TopUpLimits, dollars_to_cents
from core.payments.views import AutoRechargeView, OtherPurchase, find_open_top_up, other_purchases

WATCH_KEY = "buy.watch"  # top-ups this session waits on (started here, or returned to)
RETURNED_KEY = "buy.returned"  # return links already checked with the provider
REMOVE_KEY = "buy.remove"  # (where, card id) whose removal waits for the second click
REMOVED_KEY = "buy.removed"  # what the last removal did, shown once after the rerun
OPEN_SEEN_KEY = "buy.open_seen"  # top-ups the live status saw open at its last run
NEW_CARD = "A new card (secure checkout)"
RECEIPT_PARAM = "receipt"
HISTORY_KEY = "buy.history"
LINK_PARAMS = ("account", "view_as")  # kept in a receipt's link: the same account, the same view


@dataclass(frozen=True)
class BuyData:
    account: AccountSummary
    balance_nanos: int
    deficit_nanos: int
    history: list[TopUpView]
    cards: list[Card]
    recharge: AutoRechargeView
    others: list[OtherPurchase]  # purchased credits the portal did not sell (contracts, invoices)


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
            session,
            account.account_id,
            at=at,
            max_failures=payments.config.recharge_max_failures,
            limits=payments.config.limits,
        ),
        other_purchases(session, account.account_id),
    )


def watch(top_up_id: int) -> None:
    ids = st.session_state.setdefault(WATCH_KEY, [])
    if top_up_id not in ids:
        ids.append(top_up_id)


def to_show(views: list[TopUpView]) -> list[TopUpView]:
    """The top-ups still open, and the latest settled one: older outcomes are not repeated (and are
    forgotten, so banners never pile up); the history keeps them all."""
    settled = [view for view in views if not view.is_open]
    latest = max(settled, key=lambda view: view.top_up_id, default=None)
    shown = [view for view in views if view.is_open or view is latest]
    st.session_state[WATCH_KEY] = [view.top_up_id for view in shown]
    return shown


def dismiss(top_up_id: int) -> None:
    ids = st.session_state.get(WATCH_KEY, [])
    st.session_state[WATCH_KEY] = [i for i in ids if i != top_up_id]


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
    if not view.is_open:
        text_col, close_col = st.columns([5, 1], vertical_alignment="center")
        with text_col:
            settled_banner(view, text)
        close_col.button(
            "Dismiss",
            key=f"buy.dismiss.{view.top_up_id}",
            on_click=dismiss,
            args=(view.top_up_id,),
            help="Hide this message; the purchase history keeps it",
        )
        return
    if view.needs_action:
        st.warning(text)
        st.link_button("Confirm with your bank →", absolute(view.action_url, base), type="primary")
    else:
        st.info(text, icon=":material/hourglass_top:")
        if view.checkout_url and view.kind == "checkout":
            st.link_button("Open the secure checkout →", absolute(view.checkout_url, base), type="primary")


def settled_banner(view: TopUpView, text: str) -> None:
    if view.state == "credited":
        st.success(text, icon=":material/check_circle:")
    elif view.state == "failed":
        st.error(text, icon=":material/error:")
    else:
        st.info(text)


def status_section(ctx: PageContext, base: str) -> None:
    """The top-ups this session started or came back to: live while one is open, still once settled."""
    ids = list(st.session_state.get(WATCH_KEY, []))
    if not ids:
        return
    views = to_show(read(ctx, lambda s, a: [top_up_view(s, i, account_id=a.account_id) for i in ids]))
    if any(view.is_open for view in views):
        live_status(ctx, base)
        return
    st.session_state.pop(OPEN_SEEN_KEY, None)
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
    for view in to_show(views):
        show_top_up(view, base)
    previous = st.session_state.get(OPEN_SEEN_KEY)
    st.session_state[OPEN_SEEN_KEY] = open_ids
    if previous is not None and set(previous) - set(open_ids):
        st.rerun(scope="app")  # one settled: balance, history and cards change


def choose_amount(payments: Payments, data: BuyData) -> int | None:
    """The amount to pay in cents, or None while none is chosen (nothing typed yet, or a typed amount
    that is not one: then an error names the field). With a negative balance the one-click amounts
    pay it off and add a useful amount; the smallest of them is the default."""
    limits = payments.config.limits
    choices = amount_choices(limits, data.deficit_nanos)
    labels = [choice.label for choice in choices]
    captions = [choice.caption for choice in choices]
    choice = st.radio(
        "Amount",
        [*labels, OTHER],
        captions=[*captions, "type it below"] if any(captions) else None,
        horizontal=True,
        key="buy.amount",
    )
    custom = st.text_input(
        f"Amount in dollars ({format_cents(limits.min_cents)} to {format_cents(limits.max_cents)})",
        key="buy.custom",
        disabled=choice != OTHER,
        placeholder="e.g. 40 or 12.50",
        help=CUSTOM_HELP,
    )
    if choice != OTHER:
        return choices[labels.index(str(choice))].cents
    try:
        amount_cents = parse_custom(custom, limits)
    except ValidationError as error:
        st.error(f"Amount in dollars: {literal(error.message)}.", icon=":material/error:")
        return None
    if amount_cents is None:
        st.caption("Type the amount above, then choose how to pay.")
    return amount_cents


def buy_section(ctx: PageContext, payments: Payments, data: BuyData, base: str) -> None:
    st.subheader("Top up" if data.deficit_nanos >= 0 else "Pay off and top up")
    amount_cents = choose_amount(payments, data)
    if amount_cents is not None:
        summary = summarize(amount_cents, data.deficit_nanos)
        st.markdown(summary_text(amount_cents, summary))
        if summary.owed_nanos:
            st.info(deficit_text(summary), icon=":material/receipt_long:")
    options = [card.label for card in data.cards] + [NEW_CARD]
    method = st.radio("Pay with", options, key="buy.method")
    actor = ctx.actor
    provider = payments.provider
    assert provider is not None
    price = f" {format_cents(amount_cents)}" if amount_cents is not None else ""
    try:
        if method == NEW_CARD:
            save = st.checkbox(
                "Save this card for one-click purchases and auto-recharge", value=True, key="buy.save"
            )
            clicked = st.button(
                f"Continue to payment ·{price}" if price else "Continue to payment",
                type="primary",
                key="buy.go",
                disabled=amount_cents is None,
            )
            if clicked and amount_cents is not None:
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
            clicked = st.button(
                f"Pay{price} with {card.label}",
                type="primary",
                key="buy.go",
                disabled=amount_cents is None,
            )
            if clicked and amount_cents is not None:
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
    if method != NEW_CARD and ctx.may(data.account, CARDS_REMOVE):
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


def _short_time(moment: datetime, timezone: str) -> str:
    return format_datetime(moment, timezone)


def target_words(view: AutoRechargeView, limits: TopUpLimits) -> str:
    """The saved "bring the balance back to" order in words, with what one charge may be."""
    assert view.target_nanos is not None
    low, high = per_charge_cents(limits.min_cents, limits.max_cents, view.monthly_max_cents)
    return target_explanation(
        threshold_nanos=view.threshold_nanos, target_nanos=view.target_nanos, low_cents=low, high_cents=high
    )


def recharge_status(data: BuyData, limits: TopUpLimits) -> None:
    """Whether auto-recharge is on, and with which card: the card it pays with is always named."""
    view = data.recharge
    tz = data.account.timezone
    if view.enabled:
        card = view.card.label if view.card is not None else "a card that is no longer saved"
        if view.mode == RECHARGE_TARGET and view.target_nanos is not None:
            order = f"{target_words(view, limits)}, with {card}. "
        else:
            order = (
                f"when the balance falls below {format_credits(view.threshold_nanos)}, buy "
                f"{format_credits(cents_to_nanos(view.amount_cents))} ({format_cents(view.amount_cents)}) "
                f"with {card}. "
            )
        st.success(
            f"**On**: {order}"
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
            st.markdown(f"**Last decision** ({_short_time(view.last_decision_at, tz)}): {view.last_decision}")
        attempts = [v for v in data.history if v.kind == "auto_recharge"][:5]
        for attempt in attempts:
            why = f" — {attempt.failure_message}" if attempt.failure_message else ""
            st.markdown(
                f"- {_short_time(attempt.created_at, tz)}: {format_cents(attempt.amount_cents)}, "
                f"{attempt.state_label.lower()}{why}"
            )
        if not attempts:
            st.caption("No auto-recharge has run yet.")


RECHARGE_FIELDS = {
    "threshold": "When the balance falls below (credits)",
    "mode": "Each time, buy",
    "amount": "Buy this much (dollars)",
    "target": "Bring the balance back to (credits)",
    "monthly_max": "Monthly maximum (dollars)",
    "card": "Pay with",
}


def target_hint(view: AutoRechargeView, limits: TopUpLimits) -> str:
    """Under the choice: what "back to a target" does, with the saved numbers once there are some."""
    if view.mode == RECHARGE_TARGET and view.target_nanos is not None:
        return target_words(view, limits) + "."
    low, high = per_charge_cents(
        limits.min_cents, limits.max_cents, view.monthly_max_cents or limits.max_cents
    )
    return (
        "“What brings the balance back to a target”: each time the balance falls below the threshold, buy "
        f"the credits that bring it back to the target, in one charge of {format_cents(low)} to "
        f"{format_cents(high)}, never past the monthly maximum."
    )


def _typed_target(text: str) -> int:
    if not text.strip():
        raise ValidationError("give the balance to bring it back to", code="required", field="target")
    return parse_credits(text, field="target")


def _kept_amount(text: str, view: AutoRechargeView) -> int:
    """The fixed amount to keep while "back to a target" is chosen: the typed one if it reads as dollars."""
    try:
        return dollars_to_cents(text, field="amount")
    except ValidationError:
        return view.amount_cents


def recharge_form(ctx: PageContext, payments: Payments, data: BuyData) -> None:
    view = data.recharge
    limits = payments.config.limits
    if not data.cards:
        st.caption("To turn auto-recharge on, first buy with a new card and tick “Save this card”.")
        return
    # Its own card first in mind: a card added since (or the same card saved again) never takes its place.
    cards = recharge_cards(data.cards, view.card)
    labels = [c.label for c in cards]
    current = next((i for i, c in enumerate(cards) if c.payment_method_id == view.card_id), 0)
    if view.card is not None:  # removed under "Pay with" above: one place to manage a card
        st.caption(f"Auto-recharge pays with {view.card.label}.")
    with st.form("buy.recharge_form"):
        enabled = st.toggle("Auto-recharge on", value=view.enabled)
        left, middle, right = st.columns(3)
        threshold = left.text_input(
            RECHARGE_FIELDS["threshold"],
            value=credits_number(view.threshold_nanos) if view.configured else "100",
            help=CREDITS_HELP,
        )
        amount = middle.text_input(
            RECHARGE_FIELDS["amount"],
            value=_dollars(view.amount_cents) if view.configured else "200.00",
            help=CUSTOM_HELP,
        )
        monthly = right.text_input(
            RECHARGE_FIELDS["monthly_max"],
            value=_dollars(view.monthly_max_cents) if view.configured else "1,000.00",
            help=CUSTOM_HELP,
        )
        modes = [RECHARGE_FIXED, RECHARGE_TARGET]
        mode = st.radio(
            RECHARGE_FIELDS["mode"],
            modes,
            index=modes.index(view.mode) if view.mode in modes else 0,
            format_func=RECHARGE_MODE_LABELS.__getitem__,
            horizontal=True,
            key="buy.recharge_mode",
        )
        target = st.text_input(
            RECHARGE_FIELDS["target"],
            value=credits_number(view.target_nanos) if view.target_nanos is not None else "",
            placeholder="500",
            help=CREDITS_HELP,
            key="buy.recharge_target",
        )
        st.caption(target_hint(view, limits))
        card = st.selectbox(RECHARGE_FIELDS["card"], labels, index=current)
        if not st.form_submit_button("Save auto-recharge"):
            return
    try:
        by_target = mode == RECHARGE_TARGET
        save_auto_recharge(
            payments,
            actor=ctx.actor,
            account_id=ctx.account_id,
            enabled=enabled,
            threshold_nanos=parse_credits(threshold, field="threshold"),
            # "Back to a target" leaves the fixed amount as it was (what was typed there is not used).
            amount_cents=_kept_amount(amount, view)
            if by_target
            else dollars_to_cents(amount, field="amount"),
            monthly_max_cents=dollars_to_cents(monthly, field="monthly_max"),
            card_id=cards[labels.index(card)].payment_method_id,
            mode=mode,
            target_nanos=_typed_target(target) if by_target else None,
        )
    except ValidationError as error:
        st.error(f"{RECHARGE_FIELDS.get(error.field or '', 'Auto-recharge')}: {literal(error.message)}.")
        return
    except BillingError as error:
        show_error(error)
        return
    st.toast("Auto-recharge saved")
    st.rerun()


def link_params() -> dict[str, str]:
    """The address's account (and customer view), kept in links to this page's receipts."""
    return {name: str(st.query_params[name]) for name in LINK_PARAMS if st.query_params.get(name)}


def receipt_id() -> int | None:
    raw = str(st.query_params.get(RECEIPT_PARAM, ""))
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def close_receipt() -> None:
    st.query_params.pop(RECEIPT_PARAM, None)


def receipt_cell(line: ReceiptLine) -> str:
    """A receipt's value as Markdown text: the payment's id as code (it is copied), the rest as typed."""
    return code(line.value) if line.label == "Payment id" else literal(line.value)


def receipt_section(ctx: PageContext, top_up_id: int, base: str) -> None:
    """A top-up's receipt as a page of its own (``?receipt=<id>``: to keep, print or send)."""
    try:
        account, view = read(ctx, lambda s, a: (a, top_up_view(s, top_up_id, account_id=a.account_id)))
    except NotFound:
        st.warning("There is no such purchase on this account: pick its account in the sidebar to see it.")
        st.button("Back to Buy credits", key="buy.receipt_back", on_click=close_receipt)
        return
    except BillingError as error:
        show_error(error)
        return
    draw_receipt(ctx, view, account, base)
    st.button(
        "Back to Buy credits", key="buy.receipt_back", on_click=close_receipt, icon=":material/arrow_back:"
    )


def draw_receipt(
    ctx: PageContext, view: TopUpView, account: AccountSummary, base: str, *, own_page_link: str = ""
) -> None:
    """One top-up's receipt, from the portal's own records: date, account, credits, amount, card and
    the payment's id; its PDF, and the provider's receipt when it has one."""
    st.subheader(f"Receipt · top-up #{view.top_up_id}")
    if view.state not in RECEIPT_STATES:
        st.info(f"Top-up #{view.top_up_id} has no receipt. {describe(view)}")
        return
    when = view.credited_at or view.created_at
    lines = receipt_lines(view, account_name=account.name, when=format_datetime(when, account.timezone))
    with st.container(border=True):
        st.markdown("  \n".join(f"**{line.label}:** {receipt_cell(line)}" for line in lines))
    links = st.container(horizontal=True)
    receipt_download(ctx, view.top_up_id, base, container=links)
    if own_page_link:
        links.link_button("Open as a page (to print or keep)", own_page_link, icon=":material/open_in_new:")
    if view.receipt_url:
        links.link_button("The payment provider's receipt", absolute(view.receipt_url, base))


def history_section(ctx: PageContext, data: BuyData, base: str, *, may_buy: bool) -> None:
    st.subheader("Purchase history")
    if not data.history and not data.others:
        st.info("No purchases yet." + (" Pick an amount above to buy your first credits." if may_buy else ""))
        return
    tz = data.account.timezone
    rows = history_rows(data.history, data.others, base=base, params=link_params())
    st.caption(
        f"Every purchase of the account, whoever made it. {zone_note(tz, system_clock())}. "
        "Select a row (the box at its left) to see its receipt below, with its PDF. Each credited purchase "
        "added a purchased grant; “Ledger” is the Balance page's entry that added it."
    )
    chosen = st.dataframe(
        styled(history_table(rows), dollars=("Amount ($)",), credits=("Credits",)),
        hide_index=True,
        width="stretch",
        column_config=history_columns(tz),
        placeholder="—",
        key=HISTORY_KEY,
        on_select="rerun",
        selection_mode="single-row",
    )
    picked = chosen.selection.rows if chosen else []
    if not picked or picked[0] >= len(rows):
        return
    row = rows[picked[0]]
    top_up_id = row.top_up_id
    if top_up_id is None:
        st.info(
            f"{row.purchase} was bought outside the portal ({row.how.lower()}): its invoice has the details."
        )
        return
    try:
        view = read(ctx, lambda s, a: top_up_view(s, top_up_id, account_id=a.account_id))
    except BillingError as error:
        show_error(error)
        return
    draw_receipt(ctx, view, data.account, base, own_page_link=row.receipt or "")


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
showing_receipt = receipt_id()
if showing_receipt is not None:
    receipt_section(context, showing_receipt, base)
    st.stop()
if not context.read_only:
    handle_return(context, payments)  # back from Stripe: the customer's own session settles it
now = system_clock()
try:
    buy_data = read(context, lambda session, account: load(session, account, payments, now))
except BillingError as error:
    show_error(error)
    st.stop()

may_buy = context.may(buy_data.account, CREDITS_BUY)  # what to draw; the core decides on the write
mode_banner(payments)
owed = max(0, -buy_data.deficit_nanos)
st.caption(
    f"{literal(buy_data.account.name)} · "
    + (f"you owe {format_credits(owed)}" if owed else f"balance {format_credits(buy_data.balance_nanos)}")
    + f" {as_of(now, buy_data.account.timezone)}"
    + f" · {CREDIT_WORTH} · credits are added once the payment has gone through"
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
recharge_status(buy_data, payments.config.limits)
if context.may(buy_data.account, AUTO_RECHARGE_EDIT) and payments.provider is not None:
    recharge_form(context, payments, buy_data)

history_section(context, buy_data, base, may_buy=may_buy)
