"""Who may frame the portal: ``Content-Security-Policy: frame-ancestors`` on every response.

The operator lists the origins of the company's own product in ``METERLINE_EMBED_ORIGINS``
(space- or comma-separated, e.g. ``https://app.example.com https://*.example.com``). Every
HTTP response of the one port (Streamlit's pages and static files, the portal-session start
link, the API) then says ``frame-ancestors <those origins>``: a browser renders the portal in a
frame of those sites only. With no origin listed the portal refuses every frame:
``frame-ancestors 'none'`` plus ``X-Frame-Options: DENY`` for browsers that predate CSP.

The sandbox's checkout and 3-D Secure pages (``/payments/``) are never framed, as Stripe's own
Checkout cannot be: the Buy credits page opens them in a new tab.

Also ``Referrer-Policy: same-origin`` unless a response sets its own: a portal page's address can
hold a portal session's browser token (``?portal=…``), which must not leave in a Referer header.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ORIGINS_VARIABLE = "METERLINE_EMBED_ORIGINS"
NEVER_FRAMED_PREFIXES = ("/payments/",)
# An origin as frame-ancestors takes it: scheme, host (a leading "*." wildcard allowed), optional port.
_ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?$")


def embed_origins(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The origins allowed to frame the portal; anything that is not an origin is left out (said
    once on stderr), so a typo cannot widen the policy or break the header."""
    raw = (environ if environ is not None else os.environ).get(ORIGINS_VARIABLE, "")
    origins: list[str] = []
    for part in re.split(r"[\s,]+", raw.strip()):
        if not part:
            continue
        origin = part.rstrip("/")
        if _ORIGIN.match(origin):
            if origin.lower() not in (o.lower() for o in origins):
                origins.append(origin)
        else:
            print(f"meterline: {ORIGINS_VARIABLE}: {part[:80]!r} is not an origin; left out", file=sys.stderr)
    return tuple(origins)


def frame_headers(path: str, origins: tuple[str, ...]) -> dict[str, str]:
    """The framing headers for a response to ``path``."""
    if not origins or path.startswith(NEVER_FRAMED_PREFIXES):
        return {"content-security-policy": "frame-ancestors 'none'", "x-frame-options": "DENY"}
    return {"content-security-policy": "frame-ancestors " + " ".join(origins)}


class FramingMiddleware:
    """Adds ``frame_headers`` to every HTTP response (outermost: redirects and errors included)."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...] | None = None) -> None:
        self.app = app
        self.origins = embed_origins() if origins is None else origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = frame_headers(scope["path"], self.origins)

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                policy = headers.get("content-security-policy")
                for name, value in extra.items():
                    if name == "content-security-policy" and policy and "frame-ancestors" not in policy:
                        headers[name] = f"{policy}; {value}"  # keep a page's own policy, add ours
                    else:
                        headers[name] = value
                if "x-frame-options" not in extra and "x-frame-options" in headers:
                    del headers["x-frame-options"]  # it cannot name origins: frame-ancestors decides
                if "referrer-policy" not in headers:
                    headers["referrer-policy"] = "same-origin"
            await send(message)

        await self.app(scope, receive, send_with_policy)
