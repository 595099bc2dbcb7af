"""Small pieces of browser-side behaviour the portal needs and Streamlit does not offer.

Each is a few lines of our own JavaScript through ``st.html(..., unsafe_allow_javascript=True)``
with no input from visitors in it (the only value passed, a session token, is JSON-encoded).
"""

from __future__ import annotations

import json

import streamlit as st

from app.auth import COOKIE_CLEAR_KEY, COOKIE_PENDING_KEY

_STORE_SESSION = """<script>
fetch("/session/demo", {method: "POST", body: %s, credentials: "same-origin",
                        headers: {"Content-Type": "text/plain"}});
</script>"""
_CLEAR_SESSION = """<script>
fetch("/session/end", {method: "POST", credentials: "same-origin"});
</script>"""
# Below Streamlit's mobile breakpoint the sidebar covers the page: close it once a page is picked.
_CLOSE_SIDEBAR_ON_PICK = """<script>
(() => {
  const doc = document;
  if (doc.body.dataset.meterlineNav) return;
  doc.body.dataset.meterlineNav = "1";
  doc.addEventListener("click", (event) => {
    if (!event.target.closest('[data-testid="stSidebarNav"] a')) return;
    if (window.innerWidth >= 768) return;
    const close = doc.querySelector('[data-testid="stSidebarCollapseButton"] button')
      || doc.querySelector('[data-testid="stSidebarHeader"] button');
    if (close) setTimeout(() => close.click(), 0);
  });
})();
</script>"""


# Streamlit's date field takes typed dates only once focus leaves it; Escape also applies them.
# Make Enter do what Escape does there, so a typed range applies on Enter.
_TYPED_DATES_ON_ENTER = """<script>
(() => {
  if (document.body.dataset.meterlineDates) return;
  document.body.dataset.meterlineDates = "1";
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !event.target.closest) return;
    if (!event.target.closest('[data-testid="stDateInputField"]')) return;
    event.preventDefault();
    event.target.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape", code: "Escape", bubbles: true}));
  }, true);
})();
</script>"""


def typed_dates_apply_on_enter() -> None:
    """Date fields of this page apply typed dates when Enter is pressed."""
    st.html(_TYPED_DATES_ON_ENTER, unsafe_allow_javascript=True, width="content")


def keep_browser_session() -> None:
    """Store a demo session token just minted in the browser's cookie, or remove it after sign-out.

    Signed in, the script goes at the end of the sidebar, where it moves nothing on the page.
    """
    token = st.session_state.pop(COOKIE_PENDING_KEY, None)
    if token:
        with st.sidebar:
            st.html(_STORE_SESSION % json.dumps(token), unsafe_allow_javascript=True, width="content")
    elif st.session_state.pop(COOKIE_CLEAR_KEY, None):
        st.html(_CLEAR_SESSION, unsafe_allow_javascript=True, width="content")


def narrow_screen_sidebar() -> None:
    """On a phone, close the sidebar after a page is picked in it."""
    st.html(_CLOSE_SIDEBAR_ON_PICK, unsafe_allow_javascript=True, width="content")
