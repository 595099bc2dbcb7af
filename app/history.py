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

The script is put into the page Streamlit serves by ``HistoryScriptMiddleware`` (Streamlit has
no setting for a page's head); ``arrived_by_history`` tells a page that Back or Forward brought
this run, so that an address without a view means the default view, not the last one shown.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app.session_routes import SERVER_PREFIXES

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
HEAD = b"<head>"


def _is_page_load(scope: Scope) -> bool:
    """A browser asking for one of the portal's pages (Streamlit answers each with its index.html)."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    path: str = scope["path"]
    return not path.startswith(SERVER_PREFIXES) and "text/html" in Headers(scope=scope).get("accept", "")


class HistoryScriptMiddleware:
    """Puts ``ONE_ENTRY_PER_STEP`` at the top of the head of every page Streamlit serves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_page_load(scope):
            await self.app(scope, receive, send)
            return
        # The page uncompressed (it is a few kB), so the script can go in.
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]}
        start: Message | None = None
        body: list[bytes] = []

        async def send_with_script(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                html = Headers(raw=message["headers"]).get("content-type", "").startswith("text/html")
                if message["status"] == 200 and html:
                    start = message  # held until the whole body is in
                    return
            if start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            page = b"".join(body).replace(HEAD, HEAD + ONE_ENTRY_PER_STEP, 1)
            headers = MutableHeaders(raw=list(start["headers"]))
            headers["content-length"] = str(len(page))
            for validator in ("etag", "last-modified"):  # they name Streamlit's file, not this page
                if validator in headers:
                    del headers[validator]
            await send({**start, "headers": headers.raw})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, send_with_script)


def arrived_by_history() -> bool:
    """True when Back or Forward brought this run: the address then says which view to show.

    Streamlit marks such runs on the run's context; it has no public accessor (1.67).
    """
    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "is_history_navigation", False))
