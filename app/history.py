"""The browser's Back and Forward, as on any web site: one history entry per step a person takes.

Streamlit (1.67) pushes a history entry for every change of the address: each ``st.query_params``
write (the router adding ``?account=`` to a page just opened, a page writing its view) and each
page switch. So a page opened by its address took two entries (``/usage``, then
``/usage?account=…``: Back stayed on the page), and a sidebar click leaving a page with a view in
its address took two as well (the old page with the new query, then the new page): leaving
needed two Backs. Streamlit's own history rules: a widget bound to a query parameter
(``bind="query-params"``) writes with ``replaceState`` (Back would not undo it); Back and Forward
rerun the page with the entry's address and, during that run, query writes replace.

The rule added here, in a script at the top of every page (before Streamlit's own code, so it
also covers a page's first run): a push becomes a replace unless the person pressed a key or a
pointer since the last push. A view change or a page switch is then one entry, and Back undoes
it; rewrites nobody asked for (the router's) add none.

``app.page_head`` puts the script into the page Streamlit serves (Streamlit has no setting for a
page's head); ``arrived_by_history`` tells a page that Back or Forward brought this run, so that
an address without a view means the default view, not the last one shown.
"""

from __future__ import annotations

from streamlit.runtime.scriptrunner import get_script_run_ctx

ONE_ENTRY_PER_STEP = b"""<script>
(() => {
  let acted = false;  // a key or a pointer pressed since the last history entry
  const act = () => { acted = true; };
  window.addEventListener("pointerdown", act, true);
  window.addEventListener("keydown", act, true);
  window.addEventListener("popstate", () => { acted = false; });
  const push = window.history.pushState.bind(window.history);
  window.history.pushState = (state, title, url) => {
    if (!acted) return window.history.replaceState(state, title, url);
    acted = false;
    return push(state, title, url);
  };
})();
</script>"""


def arrived_by_history() -> bool:
    """True when Back or Forward brought this run: the address then says which view to show.

    Streamlit marks such runs on the run's context; it has no public accessor (1.67).
    """
    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "is_history_navigation", False))
