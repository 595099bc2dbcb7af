"""A pretend internet on loopback for the webhook tests: a DNS that answers what the test says (a
different answer on each lookup, for rebinding), routes from "public" addresses to loopback
servers, and a connection layer that refuses everything else, so no test sends a packet beyond
127.0.0.0/8 (not even on code that would connect where it should not).

Installed by patching ``socket.getaddrinfo`` and ``socket.create_connection``: the resolver and
the connection path of the code under test, whatever it does in between.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_real_getaddrinfo = socket.getaddrinfo
_real_create_connection = socket.create_connection


@dataclass
class LoopbackNetwork:
    """Names, their planned answers and routes; what was looked up and where connections went."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    routes: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)  # the address asked for

    def name(self, host: str, *answers: list[str]) -> None:
        """``host`` answers ``answers[0]`` to the first lookup, ``answers[1]`` to the next, …

        and the last one for ever after."""
        self.answers[host.lower()] = [list(a) for a in answers]

    def route(self, public: str, port: int, to: tuple[str, int]) -> None:
        """A connection to ``public``:``port`` reaches the loopback server at ``to``."""
        self.routes[(str(ipaddress.ip_address(public)), port)] = to

    def getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        planned = self.answers.get(name.lower())
        if planned is None:
            try:  # literal addresses only: a real lookup would leave the machine
                return _real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
            except socket.gaierror:
                if name != "localhost":
                    raise
                return _real_getaddrinfo("127.0.0.1", port, family, type, proto, flags)
        self.lookups.append(name)
        answer = planned.pop(0) if len(planned) > 1 else planned[0]
        port_number = int(port or 0)
        infos: list[tuple[Any, ...]] = []
        for text in answer:
            address = ipaddress.ip_address(text)
            if address.version == 4:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (text, port_number)))
            else:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (text, port_number, 0, 0)))
        return infos

    def create_connection(
        self, address: tuple[Any, ...], timeout: Any = None, source_address: Any = None, **_: Any
    ) -> socket.socket:
        host, port = str(address[0]), int(address[1])
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)  # through this DNS, like the real one
        first = str(ipaddress.ip_address(infos[0][4][0]))
        self.connections.append((first, port))
        target_host, target_port = self.routes.get((first, port), (first, port))
        if ipaddress.ip_address(target_host) not in LOOPBACK:
            raise ConnectionRefusedError(111, "the test network reaches loopback only")
        return _real_create_connection((target_host, target_port), timeout, source_address)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


class Endpoint:
    """A webhook receiver on 127.0.0.1 (HTTPS with ``tls``): answers the planned statuses, records
    every request and the TLS server name each connection asked for."""

    def __init__(
        self, statuses: list[int] | None = None, *, tls: ssl.SSLContext | None = None, location: str = ""
    ) -> None:
        self.statuses = list(statuses or [])
        self.location = location
        self.seen: list[Seen] = []
        self.server_names: list[str | None] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                endpoint.seen.append(Seen(self.path, dict(self.headers.items()), body))
                status = endpoint.statuses.pop(0) if endpoint.statuses else 200
                self.send_response(status)
                if endpoint.location:
                    self.send_header("Location", endpoint.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self.do_POST()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class LoopbackCA:
    ca: trustme.CA
    bundle: Path

    def server_context(self, *names: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert(*names).configure_cert(context)
        return context
