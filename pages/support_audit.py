"""Support console: the audit log, filtered by agent, account, action and date, exportable to CSV.

Entries are read-only here and everywhere in the app (core.support.audit refuses edits).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from app.support_ui import require_console, support_read
from core.display import format_datetime
from core.support import audit_actions, audit_actors, audit_csv, audit_entries, readable_change

ANYONE = "Anyone"
ANY_ACTION = "Any action"

require_console()
st.title("Audit log")
st.caption(
    "Every support action and payment alert, newest first (times in UTC). Entries cannot be changed; "
    "the CSV keeps every detail exactly."
)

actors, actions = support_read(lambda session: (audit_actors(session), audit_actions(session)))
agent_col, account_col, action_col, dates_col = st.columns(4)
agent = agent_col.selectbox("Agent", [ANYONE, *actors], key="support_audit.agent")
account = account_col.text_input("Account id", key="support_audit.account")
action = action_col.selectbox("Action", [ANY_ACTION, *actions], key="support_audit.action")
days = dates_col.date_input("Dates (UTC)", value=(), key="support_audit.dates")

since = until = None
if isinstance(days, (tuple, list)) and len(days) == 2:  # a half-picked range filters nothing yet
    since = datetime.combine(days[0], time(0), tzinfo=UTC)
    until = datetime.combine(days[1], time(0), tzinfo=UTC) + timedelta(days=1)
elif isinstance(days, date):
    since = datetime.combine(days, time(0), tzinfo=UTC)
    until = since + timedelta(days=1)

entries = support_read(
    lambda session: audit_entries(
        session,
        agent=None if agent == ANYONE else agent,
        account_id=account or None,
        action=None if action == ANY_ACTION else action,
        since=since,
        until=until,
    )
)
if not entries:
    st.info("No audit entries match these filters.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When (UTC)": format_datetime(e.at, "UTC", zone=False),
                    "Agent": e.actor,
                    "Action": e.action,
                    "Account": e.account_id or "",
                    "Target": e.target,
                    "Reason": e.reason,
                    "Before": readable_change(e.before),
                    "After": readable_change(e.after),
                }
                for e in entries
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.download_button(
        f"Download {len(entries):,} entries (CSV)",
        audit_csv(entries),
        file_name="meterline-audit-log.csv",
        mime="text/csv",
        key="support_audit.csv",
    )
