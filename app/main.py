"""Entrypoint and router: page config, sign-in gate, the pages for this viewer, run."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.auth import Viewer, forget_sign_in, load_viewer, sign_out, unverified_sign_in
from app.browser import keep_browser_session, narrow_screen_sidebar
from app.invitations_ui import ACCEPT_URL_PATH
from app.look import readable_charts
from app.resources import get_engine
from app.signin import render_email_unverified, render_sign_in, render_sign_in_to_accept
from app.spend_ui import notification_badge
from app.state import (
    ACCOUNT_KEY,
    ACCOUNT_PARAM,
    account_from_link,
    clear_viewer,
    open_customer_home,
    select_account,
    selected_account_id,
    set_current_page,
    set_viewer,
    view_as_from_link,
)
from app.user_text import literal
from app.wayfinding import with_not_found
from core.accounts import AccountSummary

PAGES = Path(__file__).resolve().parent.parent / "pages"
ACCOUNT_PICK_KEY = "nav.account_pick"
PHONE_BADGE_KEY = "phone-notifications"  # its container's class: st-key-phone-notifications


def customer_pages() -> list[st.Page]:
    return [
        st.Page(PAGES / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(PAGES / "usage.py", title="Usage", icon=":material/bar_chart:"),
        st.Page(PAGES / "balance.py", title="Balance & credits", icon=":material/account_balance_wallet:"),
        st.Page(PAGES / "buy_credits.py", title="Buy credits", icon=":material/add_card:"),
        st.Page(PAGES / "prices.py", title="Prices", icon=":material/sell:"),
        st.Page(PAGES / "alerts.py", title="Alerts", icon=":material/notifications:"),
        st.Page(PAGES / "limits.py", title="Limits", icon=":material/speed:"),
        st.Page(PAGES / "members.py", title="Members", icon=":material/group:"),
        st.Page(PAGES / "api_keys.py", title="API keys", icon=":material/key:"),
    ]


def accept_invitation_page() -> st.Page:
    """The page an invitation's link opens; not in the menu (it needs the link's token)."""
    return st.Page(
        PAGES / "accept_invitation.py",
        title="Accept invitation",
        icon=":material/mail:",
        url_path=ACCEPT_URL_PATH,
        visibility="hidden",
    )


def support_pages(*, default: bool = False) -> list[st.Page]:
    """What a support agent gets besides the accounts they are a member of (the console is the
    home page of an agent who is a member of none)."""
    return [
        st.Page(
            PAGES / "support_search.py",
            title="Support: find account",
            icon=":material/support_agent:",
            url_path="support",
            default=default,
        ),
        st.Page(PAGES / "support_account.py", title="Support: account", icon=":material/account_box:"),
        st.Page(PAGES / "support_audit.py", title="Support: audit log", icon=":material/history:"),
    ]


def finance_pages() -> list[st.Page]:
    """The Finance page (margin): support admins only."""
    return [st.Page(PAGES / "finance.py", title="Finance", icon=":material/monitoring:", url_path="finance")]


def console_pages(viewer: Viewer, *, default: bool = False) -> list[st.Page]:
    """The console for this agent: every agent's pages, and Finance for a support admin."""
    admin = viewer.support_level == "support_admin"
    return support_pages(default=default) + (finance_pages() if admin else [])


def signed_out_pages() -> list[st.Page]:
    """The sign-in screen, under the URL of every customer page, so a deep link keeps its
    address (and its query string) through sign-in and lands where it pointed."""
    pages = [st.Page(render_sign_in, title="Sign in", url_path="sign-in", default=True)]
    pages += [
        st.Page(render_sign_in, title="Sign in", url_path=page.url_path)
        for page in customer_pages() + support_pages() + finance_pages()
        if page.url_path  # the default page's address is "/", the sign-in page's own
    ]
    # An invitation's link: the sign-in screen says what it offers and whom to sign in as.
    pages.append(st.Page(render_sign_in_to_accept, title="Sign in", url_path=ACCEPT_URL_PATH))
    return pages


def no_account() -> None:
    st.title("No account yet")
    st.info(
        "You are signed in, but you are not a member of any account. "
        "Ask an owner or admin of your organisation's account to invite this email address, "
        "then open the link in the invitation."
    )


def sidebar(viewer: Viewer, *, viewed: str | None = None) -> AccountSummary | None:
    """The sidebar; returns the account whose pages it leads to (None in a customer view)."""
    with st.sidebar:
        account_id = selected_account_id(viewer)
        if viewed is not None:
            # The account's name is in the page's banner, once the account is known to exist;
            # the address's raw value is not echoed here.
            st.caption(":orange[**Customer view**: read-only, each page audited]")
        elif len(viewer.accounts) > 1:
            names = {a.account_id: a.name for a in viewer.accounts}
            ids = list(names)
            st.selectbox(
                "Account",
                ids,
                index=ids.index(account_id) if account_id in ids else 0,
                format_func=names.__getitem__,
                key=ACCOUNT_PICK_KEY,
                on_change=lambda: select_account(st.session_state[ACCOUNT_PICK_KEY], in_link=True),
            )
        account = viewer.account(st.session_state[ACCOUNT_KEY]) if account_id and viewed is None else None
        if account is not None:
            st.caption(
                f"**{literal(account.name)}** · your role: {account.role} · times in {account.timezone}"
            )
            notification_badge(viewer.email, account.account_id)  # unread alert notifications
        st.caption(f"Signed in as {literal(viewer.name)} ({literal(viewer.email)})")
        if viewer.mode == "demo":
            st.caption(":orange[Demo mode: no sign-in provider configured]")
        if viewer.is_support:
            st.caption(f"Support role: {(viewer.support_level or 'support').replace('_', ' ')}")
        if st.button("Sign out"):
            sign_out(viewer, get_engine())
            st.rerun()
        narrow_screen_sidebar()
    return account


def phone_notifications(viewer: Viewer, account: AccountSummary) -> None:
    """The unread-notifications badge again, at the top of the page: on a phone the sidebar is
    folded away, and ``app/portal.css`` shows this copy there only."""
    with st.container(key=PHONE_BADGE_KEY):
        notification_badge(viewer.email, account.account_id)


def viewer_pages(viewer: Viewer, *, viewing_as_customer: bool = False) -> list[st.Page]:
    """The viewer's pages, and always the invitation link's (a first-time user has nothing else)."""
    if viewing_as_customer:  # an agent sees the customer's pages (read-only) beside the console
        pages = customer_pages() + console_pages(viewer)
    elif viewer.accounts:
        pages = customer_pages() + (console_pages(viewer) if viewer.is_support else [])
    elif viewer.is_support:
        pages = console_pages(viewer, default=True)
    else:
        pages = [st.Page(no_account, title="No account", url_path="no-account")]
    return [*pages, accept_invitation_page()]


st.set_page_config(page_title="Meterline", page_icon=":material/speed:", layout="wide")
readable_charts()

if unverified_sign_in():
    # The provider signed them in but does not vouch for the address: no user, no account.
    forget_sign_in()
    clear_viewer()
    page = st.navigation(
        [st.Page(render_email_unverified, title="Email not verified", url_path="email-not-verified")],
        position="hidden",
    )
elif (viewer := load_viewer(get_engine())) is None:
    clear_viewer()
    pages = signed_out_pages()
    page = st.navigation(with_not_found(pages, home=pages[0]), position="hidden")
else:
    set_viewer(viewer)
    viewed = view_as_from_link(viewer)  # ?view_as=… : a support agent's read-only customer view
    if viewed is None:
        account_from_link(viewer)  # ?account=… picks that account if the viewer is a member of it
    elif st.query_params.get(ACCOUNT_PARAM) != viewed:
        st.query_params[ACCOUNT_PARAM] = viewed
    pages = viewer_pages(viewer, viewing_as_customer=viewed is not None)
    home = next((p for p in pages if p.url_path == ""), pages[0])
    page = st.navigation(with_not_found(pages, home=home))
    if viewed is not None and open_customer_home():
        st.switch_page(home)  # "View as customer" was just clicked in the console
    set_current_page(page.url_path or "overview")
    account = sidebar(viewer, viewed=viewed)  # after st.navigation: links in it may point at the pages
    if account is not None:
        phone_notifications(viewer, account)
keep_browser_session()
page.run()
