"""Process-wide resources shared by every session and by the HTTP routes."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core.db import make_engine


@st.cache_resource(show_spinner=False)
def get_engine() -> Engine:
    """The one engine of this process (``DATABASE_URL``, else the embedded SQLite file)."""
    return make_engine()
