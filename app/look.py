"""The portal's look beyond the theme in ``.streamlit/config.toml``: its own CSS (``app/portal.css``)
and the text colour of every chart.

Both are there for contrast (WCAG AA, 4.5:1 for text): Streamlit draws captions at 60 % opacity and
chart labels in a light grey (#808495, 3.7:1 on white), and the theme has no setting for either.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import streamlit as st

STYLESHEET = Path(__file__).resolve().parent / "portal.css"
SECONDARY_TEXT = "#5f6370"  # captions and chart labels: 6.0:1 on white, 5.5:1 on the sidebar
CHART_THEME = "meterline"


@alt.theme.register(CHART_THEME, enable=False)
def chart_theme() -> alt.theme.ThemeConfig:
    """Axis, legend and header text of every chart (Streamlit's own chart theme keeps the rest)."""
    text = {"labelColor": SECONDARY_TEXT, "titleColor": SECONDARY_TEXT}
    return {"config": {"axis": text, "legend": text, "header": text}}


def portal_style() -> None:
    """Add the portal's stylesheet to this page (a style-only block takes no room on the page) and
    draw this process's charts with readable text."""
    st.html(STYLESHEET)
    if alt.theme.active != CHART_THEME:
        alt.theme.enable(CHART_THEME)
