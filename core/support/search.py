"""Find any account by what a customer on the phone can tell you.

One function, ``search_accounts``, for the console's search box and the benchmark. A
query matches, case-insensitively where the key allows it:

- an account id (exact or prefix) or name (any part of it);
- a member's email (prefix: "maya@" or the whole address);
- a Stripe customer id (``cus_…``), a payment id (``pi_…``) or checkout id (``cs_…``), exact;
- a top-up id ("42" or "#42"), exact;
- an API key prefix, from the ``api_key`` dimension of usage (the daily rollup, indexed).

Each lookup is bounded by ``limit`` and reads an index or a small table, so a query stays
fast over many accounts (``bench/support_search.py`` measures it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.db.models import Account, Membership, PaymentCustomer, TopUp, UsageRollupDaily, User
from core.text import is_clean_text

MAX_QUERY = 200
MAX_LIMIT = 100
API_KEY_ROWS_PER_HIT = 50  # rollup rows read per wanted hit (one key has a row per day and meter)
MATCH_ORDER = ("account id", "top-up", "payment", "customer", "email", "name", "API key")


@dataclass(frozen=True)
class AccountHit:
    """An account the query found, with what matched and its balance and status."""

    account_id: str
    name: str
    status: str
    balance_nanos: int
    matched: str  # which key matched: "email", "API key", …
    detail: str  # the matching value: the email, the key, the top-up


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix_upper(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (code point order); None
    when there is none (the prefix is all U+10FFFF, the last code point)."""
    stem = prefix.rstrip(chr(sys.maxunicode))
    return stem[:-1] + chr(ord(stem[-1]) + 1) if stem else None


def _top_up_id(query: str) -> int | None:
    text = query.removeprefix("#")
    if text.isdigit() and len(text) <= 18:
        return int(text)
    return None


def search_accounts(session: Session, query: str, limit: int = 20) -> list[AccountHit]:
    """Accounts matching ``query`` by any key above, best matches first, at most ``limit``."""
    text = (query or "").strip()[:MAX_QUERY]
    if len(text) < 2 or not is_clean_text(text):  # no stored value holds a NUL or a lone surrogate
        return []
    limit = max(1, min(limit, MAX_LIMIT))
    lower = text.lower()
    found: dict[str, tuple[str, str]] = {}  # account id -> (matched, detail), first key wins

    def add(rows: object, matched: str) -> None:
        for account_id, detail in rows:  # type: ignore[attr-defined]
            found.setdefault(account_id, (matched, str(detail)))

    add(session.execute(select(Account.id, Account.id).where(Account.id == text)), "account id")
    top_up_id = _top_up_id(text)
    if top_up_id is not None:
        add(session.execute(select(TopUp.account_id, TopUp.id).where(TopUp.id == top_up_id)), "top-up")
    if text.startswith(("pi_", "cs_", "ch_")):
        add(
            session.execute(
                select(TopUp.account_id, TopUp.id)
                .where(or_(TopUp.payment_intent_id == text, TopUp.checkout_session_id == text))
                .limit(limit)
            ),
            "payment",
        )
    if text.startswith("cus_"):
        add(
            session.execute(
                select(PaymentCustomer.account_id, PaymentCustomer.customer_id)
                .where(PaymentCustomer.customer_id == text)
                .limit(limit)
            ),
            "customer",
        )
    pattern = _like_escape(lower)
    add(
        session.execute(
            select(Account.id, Account.id)
            .where(func.lower(Account.id).like(pattern + "%", escape="\\"))
            .order_by(Account.id)
            .limit(limit)
        ),
        "account id",
    )
    add(
        session.execute(
            select(Membership.account_id, User.email)
            .join(User, User.id == Membership.user_id)
            .where(User.email.like(pattern + "%", escape="\\"))
            .order_by(User.email)
            .limit(limit)
        ),
        "email",
    )
    add(
        session.execute(
            select(Account.id, Account.name)
            .where(func.lower(Account.name).like("%" + pattern + "%", escape="\\"))
            .order_by(Account.name)
            .limit(limit)
        ),
        "name",
    )
    # API keys are case-sensitive; a range on the indexed column finds every key with this prefix.
    # Rows come in key order from the index; a bounded read, deduplicated here.
    upper = _prefix_upper(text)
    in_range = UsageRollupDaily.api_key >= text
    if upper is not None:
        in_range = in_range & (UsageRollupDaily.api_key < upper)
    add(
        session.execute(
            select(UsageRollupDaily.account_id, UsageRollupDaily.api_key)
            .where(in_range)
            .order_by(UsageRollupDaily.api_key, UsageRollupDaily.account_id)
            .limit(limit * API_KEY_ROWS_PER_HIT)
        ),
        "API key",
    )
    if not found:
        return []
    ids = list(found)[: limit * 2]
    accounts = {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(ids)))}
    hits = [
        AccountHit(
            account_id=account.id,
            name=account.name,
            status=account.status,
            balance_nanos=account.balance_nanos,
            matched=found[account.id][0],
            detail=found[account.id][1],
        )
        for account in accounts.values()
    ]
    hits.sort(key=lambda h: (MATCH_ORDER.index(h.matched), h.name.lower(), h.account_id))
    return hits[:limit]
