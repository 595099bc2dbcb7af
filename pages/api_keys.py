"""API keys: the account's customer API keys for the Usage & Cost API (list, create, revoke).

Owners, admins and billing members create and revoke keys (``api_keys.edit``); everyone else sees
the list. A new key's secret is shown once, right after it was made; the page keeps only its
prefix. The create form is drawn with a submission id and the secret it will store
(``core.customer_keys.new_secret``), so a repeated submit finds the same key and can still show
its secret, instead of making a second key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from app.page import READ_ONLY_HELP, PageContext, error_text, page_context, read, show_error
from app.spend_ui import write
from app.user_text import literal
from core.accounts import AccountSummary
from core.accounts.permissions import API_KEYS_EDIT
from core.clock import system_clock
from core.customer_keys import (
    DEFAULT_SCOPES,
    SCOPE_HELP,
    SCOPES,
    CustomerKeyView,
    create_customer_key,
    list_customer_keys,
    new_secret,
    revoke_customer_key,
)
from core.customer_keys.service import MAX_LIFETIME_DAYS, MAX_NAME
from core.display import format_datetime
from core.errors import BillingError
from core.support.once import new_submission_id

SECRET_KEY = "api_keys.new_secret"  # the one run that shows a new key's secret
FLASH_KEY = "api_keys.flash"
SUBMISSION_KEY = "api_keys.submission"  # (submission id, secret) of the create form as drawn
CONFIRM_KEY = "api_keys.confirm_revoke"  # the key id waiting for "Yes, revoke"
FORM_KEY = "api_keys.create_form"
STATUS_LABELS = {"active": "Active", "expired": "Expired", "revoked": "Revoked"}


@dataclass(frozen=True)
class KeysData:
    account: AccountSummary
    keys: list[CustomerKeyView]


def load(session: Session, account: AccountSummary) -> KeysData:
    return KeysData(account, list_customer_keys(session, account.account_id))


def can_edit(account: AccountSummary) -> bool:
    """Whether to draw the create and revoke controls (the core decides again on the write)."""
    return API_KEYS_EDIT.allows(account.role)


def when(moment: datetime | None, timezone: str) -> str:
    """ "Dec 7, 2026, 04:48" in the account's zone (the column's header names it), or "—"."""
    return "—" if moment is None else format_datetime(moment, timezone, zone=False)


def keys_table(data: KeysData, at: datetime) -> None:
    tz = data.account.timezone
    keys = data.keys
    st.dataframe(
        pd.DataFrame(
            {
                "Key": [k.shown for k in keys],
                "Name": [k.name for k in keys],
                "Scopes": [", ".join(k.scopes) for k in keys],
                "Created by": [k.created_by for k in keys],
                f"Created ({tz})": [when(k.created_at, tz) for k in keys],
                f"Expires ({tz})": [when(k.expires_at, tz) if k.expires_at else "Never" for k in keys],
                f"Last used ({tz})": [when(k.last_used_at, tz) if k.last_used_at else "Never" for k in keys],
                "Status": [STATUS_LABELS[k.status(at)] for k in keys],
                f"Revoked ({tz})": [
                    f"{when(k.revoked_at, tz)} by {k.revoked_by}" if k.revoked_at else "—" for k in keys
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )


def submission() -> tuple[str, str]:
    """The create form's submission id and the secret it will store, made when the form is first drawn."""
    if SUBMISSION_KEY not in st.session_state:
        st.session_state[SUBMISSION_KEY] = (new_submission_id(), new_secret())
    return st.session_state[SUBMISSION_KEY]


def new_key_shown_once() -> None:
    shown = st.session_state.pop(SECRET_KEY, None)
    if shown is None:
        return
    secret, prefix, name = shown
    st.success(
        f"Key “{literal(name)}” ({literal(prefix)}) created. Copy its secret now: it is shown only once "
        "and cannot be recovered (revoke the key and make another if it is lost)."
    )
    st.code(secret, language=None)


def create_form(ctx: PageContext) -> None:
    submission_id, secret = submission()
    today = system_clock().astimezone(UTC).date()
    with st.form(FORM_KEY):
        st.markdown("**Create a key**")
        name = st.text_input("Name", key="api_keys.name", max_chars=MAX_NAME, placeholder="Finance export")
        scopes = st.multiselect(
            "Scopes",
            list(SCOPES),
            default=list(DEFAULT_SCOPES),
            format_func=lambda scope: f"{scope}: {SCOPE_HELP[scope]}",
            key="api_keys.scopes",
        )
        expires_on = st.date_input(
            "Expires (optional: the last day it works, UTC)",
            value=None,
            min_value=today,
            max_value=today + timedelta(days=MAX_LIFETIME_DAYS),
            key="api_keys.expires",
        )
        if not st.form_submit_button("Create key", type="primary"):
            return
    try:
        made = write(
            ctx,
            lambda s, actor: create_customer_key(
                s,
                actor=actor,
                account_id=ctx.account_id,
                name=name,
                scopes=scopes,
                expires_on=expires_on,
                at=system_clock(),
                submission_id=submission_id,
                secret=secret,
            ),
        )
    except BillingError as error:
        field = f" (field: {error.field})" if error.field else ""
        st.error(f"{error_text(error)}{field}. No key was made.")
        return
    st.session_state[SECRET_KEY] = (made.secret or "", made.key.shown, made.key.name)
    st.session_state.pop(SUBMISSION_KEY, None)  # the next form is a new submission with a new secret
    st.rerun()


def revoke_section(ctx: PageContext, data: KeysData, at: datetime) -> None:
    revocable = {k.key_id: k for k in data.keys if k.revoked_at is None}
    if not revocable:
        return
    st.markdown("**Revoke a key**")
    chosen = st.selectbox(
        "Key",
        list(revocable),
        format_func=lambda key_id: f"{revocable[key_id].shown} {revocable[key_id].name}",
        key="api_keys.revoke_pick",
    )
    waiting = st.session_state.get(CONFIRM_KEY)
    if waiting not in revocable:
        if st.button("Revoke key…", key="api_keys.revoke"):
            st.session_state[CONFIRM_KEY] = chosen
            st.rerun()
        return
    key = revocable[waiting]
    st.warning(
        f"Revoke “{literal(key.name)}” ({literal(key.shown)})? Every tool using it gets 401 from the next "
        "request on. This cannot be undone."
    )
    yes, no = st.columns(2)
    if yes.button("Yes, revoke", type="primary", key="api_keys.revoke_yes"):
        try:
            write(
                ctx,
                lambda s, actor: revoke_customer_key(
                    s, actor=actor, key_id=key.key_id, account_id=ctx.account_id, at=system_clock()
                ),
            )
        except BillingError as error:
            show_error(error)
            return
        st.session_state.pop(CONFIRM_KEY, None)
        st.session_state[FLASH_KEY] = f"Key “{literal(key.name)}” ({literal(key.shown)}) revoked."
        st.rerun()
    if no.button("Cancel", key="api_keys.revoke_no"):
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()


st.title("API keys")
context = page_context()
if context is None:
    st.stop()
moment = system_clock()
try:
    keys_data = read(context, load)
except BillingError as error:
    show_error(error)
    st.stop()

st.caption(
    f"{literal(keys_data.account.name)} · customer API keys let your own tools read this account's usage, "
    "costs and balance over HTTP. They are not the `api_key` values your requests are grouped by on Usage."
)
flash_message = st.session_state.pop(FLASH_KEY, None)
if flash_message:
    st.success(flash_message)
editable = can_edit(keys_data.account) and not context.read_only
if editable:
    new_key_shown_once()
if keys_data.keys:
    keys_table(keys_data, moment)
else:
    st.info(
        "No API keys yet. "
        + (
            "Create one below."
            if editable
            else "Owners, admins and billing members of this account can create them."
        )
    )
if editable:
    create_form(context)
    revoke_section(context, keys_data, moment)
elif context.read_only:
    st.caption(READ_ONLY_HELP)
else:
    st.caption(
        f"Your role ({keys_data.account.role}) can see the keys; owners, admins and billing members "
        "can create and revoke them."
    )
st.caption(
    "Use a key as `Authorization: Bearer <secret>` on GET /api/v1/usage, /api/v1/costs (scope usage:read) "
    "and /api/v1/balance (scope balance:read); it reads this account only. The API's description is at "
    "/api/v1/openapi.json."
)
