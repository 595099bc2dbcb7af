"""Where a visitor lands when a link points nowhere, and the support agents' page.

Streamlit answers an unknown page name by running the default page and flashing "Page not
found"; the portal instead shows a page that says so and offers the way home, under the
address that was asked for. ``/a/b/c`` (several segments) is sent here by
``app.session_routes`` as ``/not-found?path=/a/b/c``.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from streamlit.errors import StreamlitAPIException
from streamlit.runtime.scriptrunner import get_script_run_ctx

MAX_SHOWN_PATH = 200


def requested_page_name() -> str | None:
    """The page name in the address this run was asked for, when it came from the address bar
    (a first load or a reload), not from a click inside the app. Streamlit keeps it on the run's
    page manager; it has no public accessor."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return None
    manager = ctx.pages_manager
    if manager.intended_page_script_hash:
        return None  # a rerun or a click on a registered page: Streamlit knows where it goes
    name = manager.intended_page_name
    return name.strip("/") if name else None


def _not_found(home: st.Page) -> Callable[[], None]:
    def render_not_found() -> None:
        asked = st.query_params.get("path") or f"/{requested_page_name() or ''}"
        st.title("Page not found")
        st.write("There is no page at this address:")
        st.text(asked[:MAX_SHOWN_PATH])  # plain text: whatever the address holds, nothing runs or renders
        st.write("The link may be old or mistyped. Everything in the portal is one click from the home page.")
        st.page_link(home, label=f"Go to {home.title}", icon=":material/home:")

    return render_not_found


def with_not_found(pages: list[st.Page], *, home: st.Page) -> list[st.Page]:
    """``pages`` plus, when the address names no page of them, a hidden page under that very
    name that says so and links home."""
    name = requested_page_name()
    if name and name == home._url_path:
        # The home page is served at "/", yet its own name stays reserved (no other page may take
        # it) and Streamlit answers it with "Page not found": a support agent's console home,
        # /support, is one. Ask for the home page itself instead.
        get_script_run_ctx().pages_manager.set_script_intent(home._script_hash, "")  # type: ignore[union-attr]
        return pages
    known = {page.url_path for page in pages}
    if not name or name in known:
        return pages
    try:
        missing = st.Page(_not_found(home), title="Page not found", url_path=name, visibility="hidden")
    except StreamlitAPIException:
        return pages  # a name Streamlit cannot register: its own "not found" flash then
    return [*pages, missing]
