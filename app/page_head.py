"""What the portal adds to the head of every page Streamlit serves (its ``index.html``, under every
page's address): the history script (``app.history``) and the portal's stylesheet (``app.look``).

In the head they hold before Streamlit's own code runs: the history rule covers a page's first
run too, and the stylesheet the first paint (drawn by the page instead, it arrived after the
first elements: faded captions, and the phone's copy of the notifications badge, showed a moment).
Streamlit has no setting for a page's head; its gzip middleware sits inside this one, so a page
load is asked for uncompressed (a few kB).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.history import ONE_ENTRY_PER_STEP
from app.look import stylesheet
from app.session_routes import SERVER_PREFIXES

HEAD = b"<head>"


def head_extras() -> bytes:
    return ONE_ENTRY_PER_STEP + stylesheet()


def _is_page_load(scope: Scope) -> bool:
    """A browser asking for one of the portal's pages (Streamlit answers each with its index.html)."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    path: str = scope["path"]
    return not path.startswith(SERVER_PREFIXES) and "text/html" in Headers(scope=scope).get("accept", "")


class PageHeadMiddleware:
    """Puts ``head_extras()`` at the top of the head of every page Streamlit serves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.extras = head_extras()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_page_load(scope):
            await self.app(scope, receive, send)
            return
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]}
        start: Message | None = None
        body: list[bytes] = []

        async def send_with_extras(message: Message) -> None:
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
            page = b"".join(body).replace(HEAD, HEAD + self.extras, 1)
            headers = MutableHeaders(raw=list(start["headers"]))
            headers["content-length"] = str(len(page))
            for validator in ("etag", "last-modified"):  # they name Streamlit's file, not this page
                if validator in headers:
                    del headers[validator]
            await send({**start, "headers": headers.raw})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, send_with_extras)
