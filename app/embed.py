"""The portal inside the company's own product: the router of a portal session (embed mode).

A portal session's browser token (``core.portal_sessions``) arrives in the page's address
(``?portal=…``, put there by ``/portal/start``) or, on a reload that lost the address, in the
``meterline_portal`` cookie. Every run checks it against the stored session: while it is open,
this session shows only the session's account and pages, without the sidebar or Streamlit's
header, in the company's colours and font; once it is ended or expired, the run shows the
"ended" page, whatever page was asked for.

The token stays in the address on every page (``st.query_params`` and the links between pages
carry it), so a browser that refuses cookies in a third-party frame keeps the session across
reloads. It only resumes this session: it cannot start another one (only a start link can, once).

Configuration: ``METERLINE_EMBED_PRIMARY_COLOR`` (``#1a73e8``), ``METERLINE_EMBED_FONT`` (a font
family list, e.g. ``Inter, sans-serif``), ``METERLINE_EMBED_COMPANY_NAME`` (the "Return to …" link).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import streamlit as st
from sqlalchemy import Engine

from app.auth import Viewer
from app.portal_routes import company_name
from app.portal_state import PortalState, clear_portal, current_portal, set_portal
from app.state import ACCOUNT_KEY, clear_viewer, set_current_page, set_viewer
from core.accounts import AccountSummary
from core.accounts.service import find_account
from core.clock import system_clock
from core.db import unit_of_work
from core.portal_sessions import (
    PORTAL_COOKIE,
    PORTAL_PARAM,
    PortalView,
    effective_role,
    find_portal_session,
    read_browser_token,
)
from core.sessions import session_secret

PAGES = Path(__file__).resolve().parent.parent / "pages"
COLOR_VARIABLE = "METERLINE_EMBED_PRIMARY_COLOR"
FONT_VARIABLE = "METERLINE_EMBED_FONT"
ENDED_KEY = "portal.ended"  # the session this browser session ran in has ended: stay on the ended page
# The pages a portal session may open: its name in the API -> (script, title, icon).
EMBED_PAGES: dict[str, tuple[str, str, str]] = {
    "overview": ("overview.py", "Overview", ":material/dashboard:"),
    "usage": ("usage.py", "Usage", ":material/bar_chart:"),
    "balance": ("balance.py", "Balance & credits", ":material/account_balance_wallet:"),
    "buy_credits": ("buy_credits.py", "Buy credits", ":material/add_card:"),
    "alerts": ("alerts.py", "Alerts", ":material/notifications:"),
    "limits": ("limits.py", "Limits", ":material/speed:"),
}
_COLOR = re.compile(r"^#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$")
_FONT = re.compile(r"^[A-Za-z0-9 ,'-]{1,120}$")

# Drop what is the portal's own frame (sidebar, Streamlit's header and toolbar) and its top
# padding: the company's page is the frame. Colours and font come after, from configuration.
_EMBED_CSS = """
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"],
[data-testid="stToolbar"], [data-testid="stDecoration"], [data-testid="stSidebarNav"] {
  display: none !important;
}
[data-testid="stMainBlockContainer"], .block-container {
  padding-top: 1rem !important; padding-bottom: 1rem !important;
}
"""


def embed_color(environ: dict[str, str] | None = None) -> str | None:
    value = (environ if environ is not None else os.environ).get(COLOR_VARIABLE, "").strip()
    return value if _COLOR.match(value) else None


def embed_font(environ: dict[str, str] | None = None) -> str | None:
    value = (environ if environ is not None else os.environ).get(FONT_VARIABLE, "").strip()
    return value if _FONT.match(value) else None


def embed_css(environ: dict[str, str] | None = None) -> str:
    """The embed stylesheet: only checked values (a colour, a font list) reach it."""
    css = _EMBED_CSS
    color = embed_color(environ)
    if color:
        css += (
            f'button[kind="primary"], [data-testid="stBaseButton-primary"] '
            f"{{ background-color: {color} !important; border-color: {color} !important; }}\n"
            f"a, [data-testid='stPageLink'] a span {{ color: {color}; }}\n"
        )
    font = embed_font(environ)
    if font:
        css += f"html, body, .stApp, .stMarkdown, button, input {{ font-family: {font} !important; }}\n"
    return css


def _browser_cookie() -> str | None:
    try:
        value = st.context.cookies.get(PORTAL_COOKIE)
    except Exception:  # no browser (AppTest)
        return None
    return value if isinstance(value, str) and value else None


def _pages(view: PortalView) -> tuple[list[st.Page], list[st.Page]]:
    """The session's pages (the first is its home), and the others hidden: a page's own link to
    one of those still resolves, and ``app.page.page_context`` refuses it when it is opened."""
    shown, hidden = [], []
    for name, (script, title, icon) in EMBED_PAGES.items():
        if name in view.pages:
            shown.append(st.Page(PAGES / script, title=title, icon=icon, default=name == view.pages[0]))
        else:
            hidden.append(st.Page(PAGES / script, title=title, icon=icon, url_path=name, visibility="hidden"))
    return shown, hidden


def _page_links(pages: list[st.Page], token: str) -> None:
    """The embedded pages' own navigation: links inside the frame, carrying the session's token."""
    if len(pages) < 2:
        return
    with st.container(horizontal=True, key="embed-nav"):
        for page in pages:
            st.page_link(page, label=page.title, icon=page.icon, query_params={PORTAL_PARAM: token})


def render_ended(view: PortalView | None) -> None:
    """The page of an ended, expired or unknown session: says so, offers the way back."""
    return_url = view.return_url if view is not None else None
    company = company_name(return_url)
    st.title("This session has ended")
    st.write(f"This session has ended. Return to {company}.")
    if return_url:
        st.link_button(f"Return to {company}", return_url, type="primary")  # opens a new tab
    st.html(  # the company's page may listen for it (and mint a new session)
        "<script>if (window.parent !== window) "
        "window.parent.postMessage({type: 'meterline:session-ended'}, '*');</script>",
        unsafe_allow_javascript=True,
        width="content",
    )


def _ended_navigation(view: PortalView | None) -> st.Page:
    clear_portal()
    clear_viewer()
    st.session_state[ENDED_KEY] = view.id if view is not None else "unknown"
    st.html(f"<style>{embed_css()}</style>", width="content")
    # Under every embedded page's address too, so a reload of any of them lands here.
    pages = [st.Page(lambda: render_ended(view), title="Session ended", url_path="ended", default=True)]
    pages += [
        st.Page(lambda: render_ended(view), title="Session ended", url_path=name)
        for name in EMBED_PAGES
        if name != "overview"
    ]
    return st.navigation(pages, position="hidden")


def portal_navigation(engine: Engine) -> st.Page | None:
    """The page this run shows when it runs in a portal session, else None (the ordinary portal).

    Call it before the sign-in gate: a portal session never reaches the sign-in screen.
    """
    linked = st.query_params.get(PORTAL_PARAM)
    held = current_portal()
    token = linked or (held.token if held else None) or _browser_cookie()
    if not token:
        return _ended_navigation(None) if st.session_state.get(ENDED_KEY) else None
    secret = session_secret(engine)
    session_id = read_browser_token(secret, token)
    now = system_clock()
    view: PortalView | None = None
    summary: AccountSummary | None = None
    if session_id is not None:
        with unit_of_work(engine) as session:
            view = find_portal_session(session, session_id)
            if view is not None and view.status(now) == "active":
                account = find_account(session, view.account_id)
                if account is not None:
                    role = effective_role(session, view)
                    summary = AccountSummary(account.id, account.name, account.status, account.timezone, role)
    if view is None or summary is None or view.status(now) != "active":
        if not linked and held is None and not st.session_state.get(ENDED_KEY):
            return None  # only a stale cookie: this is an ordinary visit to the portal
        return _ended_navigation(view)
    st.session_state.pop(ENDED_KEY, None)
    if linked != token:
        st.query_params[PORTAL_PARAM] = token  # the address keeps the session (no third-party cookies)
    set_portal(
        PortalState(
            session_id=view.id,
            token=token,
            account_id=view.account_id,
            email=view.email,
            author=view.author,
            role=summary.role,
            pages=view.pages,
            expires_at=view.expires_at,
            return_url=view.return_url,
        )
    )
    set_viewer(
        Viewer(
            email=view.author,
            name=view.email or "portal session",
            is_support=False,
            accounts=(summary,),
            mode="portal",
        )
    )
    st.session_state[ACCOUNT_KEY] = view.account_id
    st.html(f"<style>{embed_css()}</style>", width="content")
    shown, hidden = _pages(view)
    page = st.navigation([*shown, *hidden], position="hidden")
    _page_links(shown, token)
    set_current_page(page.url_path or view.pages[0])
    return page
