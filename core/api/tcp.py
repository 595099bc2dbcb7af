"""TCP_NODELAY on sockets handed to uvicorn, so a kept-alive API call is not stalled ~40 ms.

Streamlit's one-port server binds its listening socket itself, and so does uvicorn when it
runs several workers (``meterline api serve --workers 2``): both with
``socket.socket(family=...)``, protocol number 0. asyncio sets TCP_NODELAY on an accepted
connection only when the socket's protocol is ``IPPROTO_TCP``, so every connection kept
Nagle's algorithm on, and a response written in two segments (headers, then body) waited
for the client's delayed ACK: about 40 ms on every request of a kept-alive connection.

Linux copies TCP_NODELAY from a listening socket to the connections it accepts, so
setting it on the listener fixes them all. The listener is bound before our code is
imported (uvicorn loads ``app.server:app`` or calls ``core.api.server:build_app`` in each
worker) but handed to ``uvicorn.Server.startup`` after: that is where the hook sits.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

_MARK = "_meterline_nodelay"


def set_nodelay(sock: socket.socket) -> None:
    """Turn Nagle's algorithm off on a TCP socket (a listener passes it on to its connections)."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def enable_tcp_nodelay() -> bool:
    """Make uvicorn set TCP_NODELAY on sockets handed to it; True when in place (idempotent)."""
    try:
        from uvicorn.server import Server
    except ImportError:
        return False
    original = Server.startup
    if getattr(original, _MARK, False):
        return True

    async def startup(self: Server, sockets: list[socket.socket] | None = None, **kwargs: Any) -> None:
        for sock in sockets or ():
            set_nodelay(sock)
        await original(self, sockets=sockets, **kwargs)

    setattr(startup, _MARK, True)
    Server.startup = startup  # type: ignore[method-assign]
    return True
