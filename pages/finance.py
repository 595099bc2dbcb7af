"""Finance (support admins only): a month's credit roll-forward, and the sections that join it.

Each section is a function of ``app.finance_ui`` (or its own ``app`` module) that takes the
month picked at the top. The router lists this page for support admins only.
"""

from __future__ import annotations

import streamlit as st

from app.finance_ui import finance_month, require_finance, rollforward_section
from app.margin_ui import margin_section

agent = require_finance()
st.title("Finance")
month = finance_month()

rollforward_section(month)
margin_section(agent, month)
