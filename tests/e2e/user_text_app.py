"""A page that shows each hostile text of ``tests.e2e.test_user_text_browser`` through
``app.user_text.literal`` in every kind of element that reads Markdown (``?raw=1``: as given)."""

from __future__ import annotations

import streamlit as st

from app.user_text import code, literal
from tests.e2e.test_user_text_browser import HOSTILE, KINDS

shown = (lambda text: text) if st.query_params.get("raw") else literal

for index, text in enumerate(HOSTILE):
    safe = shown(text)
    for kind in KINDS:
        with st.container(key=f"case{index}_{kind}"):
            if kind == "markdown":
                st.markdown(safe)
            elif kind == "caption":
                st.caption(safe)
            elif kind == "info":
                st.info(safe)
            elif kind == "title":
                st.title(safe, anchor=False)
            elif kind == "label":
                st.text_input(safe, key=f"input{index}", help=safe)
            elif kind == "radio":
                st.radio(safe, [safe], captions=[safe], key=f"radio{index}")
            elif kind == "metric":
                st.metric(safe, safe)
            elif kind == "expander":
                st.expander(safe)
            elif kind == "button":
                st.button(safe, key=f"button{index}")
            elif kind == "code":
                st.markdown(f"before {code(text)} after" if shown is literal else text)
