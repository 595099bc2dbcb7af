"""Support console: find any account by what the customer can tell you, and open it."""

from __future__ import annotations

import streamlit as st
from st_keyup import st_keyup

from app.support_ui import open_account, require_console, support_read
from app.user_text import code, literal
from core.display import format_credits
from core.support import pending_approvals, search_accounts

QUERY_KEY = "support_search.query"
SEARCH_DEBOUNCE_MS = 250
MAX_QUERY_CHARS = 200
STATUS_BADGES = {"active": ":green[active]", "suspended": ":red[suspended]", "closed": ":gray[closed]"}

agent = require_console()
st.title("Support console")
st.caption(f"Signed in as {literal(agent.email)} · level: {agent.level.replace('_', ' ')}")

# Results follow the typing: the field reports its value 250 ms after the last keystroke (or on Enter).
query = st_keyup(
    "Find an account",
    key=QUERY_KEY,
    debounce=SEARCH_DEBOUNCE_MS,
    max_chars=MAX_QUERY_CHARS,
    placeholder="Account name or id, member email, cus_…, pi_…, top-up #42, API key prefix",
)
if query and len(query.strip()) >= 2:
    hits = support_read(lambda session: search_accounts(session, query))
    if not hits:
        st.info(
            f"No account matches “{literal(query.strip())}”. Try an email, an account id or a payment id."
        )
    for hit in hits:
        with st.container(border=True):
            left, middle, right = st.columns([5, 3, 1], vertical_alignment="center")
            # The name and what matched (an email, an API key or another usage dimension) are the
            # customer's own text: shown as text, never as Markdown an agent's browser would follow.
            matched = f"matched {hit.matched}: {code(hit.detail)}"
            left.markdown(f"**{literal(hit.name)}** · {code(hit.account_id)}  \n{matched}")
            status = STATUS_BADGES.get(hit.status, literal(hit.status))
            middle.markdown(f"{status} · balance **{format_credits(hit.balance_nanos)}**")
            if right.button("Open", key=f"support_search.open.{hit.account_id}"):
                open_account(hit.account_id)
else:
    st.caption("Type at least two characters.")

waiting = support_read(lambda session: pending_approvals(session))
if waiting:
    st.subheader(f"Grants awaiting a second agent ({len(waiting)})")
    for approval in waiting:
        with st.container(border=True):
            left, right = st.columns([6, 1], vertical_alignment="center")
            left.markdown(
                f"**{format_credits(approval.amount_nanos)}** {approval.source} "
                f"for {code(approval.account_id)}, asked by {literal(approval.requested_by)}: "
                f"{literal(approval.reason)}"
            )
            if right.button("Review", key=f"support_search.review.{approval.approval_id}"):
                open_account(approval.account_id)
