"""Fixtures of the spend tests: the loopback-only network, webhook endpoints and a test CA."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.core.spend.loopback_network import Endpoint, LoopbackCA, LoopbackNetwork


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> LoopbackNetwork:
    """The loopback-only network, with private targets refused (as in production)."""
    net = LoopbackNetwork()
    monkeypatch.setattr(socket, "getaddrinfo", net.getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", net.create_connection)
    monkeypatch.setenv("METERLINE_WEBHOOKS_ALLOW_PRIVATE", "0")
    return net


@pytest.fixture
def start_endpoint() -> Iterator[Callable[..., Endpoint]]:
    """Starts an ``Endpoint`` (same arguments); every one started is closed at the end."""
    started: list[Endpoint] = []

    def start(*args: Any, **kwargs: Any) -> Endpoint:
        endpoint = Endpoint(*args, **kwargs)
        started.append(endpoint)
        return endpoint

    yield start
    for endpoint in started:
        endpoint.close()


@pytest.fixture
def trusted_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoopbackCA:
    """A certificate authority the webhook sender trusts (through ``SSL_CERT_FILE``) for this test."""
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return LoopbackCA(ca, bundle)
