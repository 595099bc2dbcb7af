"""The portal's look beyond the theme in ``.streamlit/config.toml``: its own CSS (``app/portal.css``,
put into the head of every page by ``app.page_head``, so it holds from the first paint) and the text
colour of every chart.

Both are there for contrast (WCAG AA, 4.5:1 for text): Streamlit draws captions at 60 % opacity and
chart labels in a light grey (#808495, 3.7:1 on white), and the theme has no setting for either.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt

STYLESHEET = Path(__file__).resolve().parent / "portal.css"
SECONDARY_TEXT = "#5f6370"  # captions and chart labels: 6.0:1 on white, 5.5:1 on the sidebar
CHART_THEME = "meterline"


@alt.theme.register(CHART_THEME, enable=False)
def chart_theme() -> alt.theme.ThemeConfig:
    """Axis, legend and header text of every chart (Streamlit's own chart theme keeps the rest)."""
    text = {"labelColor": SECONDARY_TEXT, "titleColor": SECONDARY_TEXT}
    return {"config": {"axis": text, "legend": text, "header": text}}


def stylesheet() -> bytes:
    """The portal's stylesheet as a ``<style>`` element for a page's head."""
    return b"<style>\n" + STYLESHEET.read_bytes() + b"</style>"


def readable_charts() -> None:
    """Draw this process's charts with ``chart_theme`` (Altair's theme is per process)."""
    if alt.theme.active != CHART_THEME:
        alt.theme.enable(CHART_THEME)
