"""Finance (support admins): margin per meter and model for a month.

The lead merges this page with the roll-forward's (``app/finance_ui.py``): both sections are
drawn by their own module; this script only gates the page and calls them.
"""

from __future__ import annotations

import streamlit as st

from app.margin_ui import margin_section
from app.support_ui import require_console
from core.clock import system_clock

agent = require_console()
st.title("Finance")
if not agent.is_admin:
    st.error("Finance is for support admins.")
    st.stop()
margin_section(agent, now=system_clock())
