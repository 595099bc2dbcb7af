"""Alert webhooks never reach the server's own network in production (server-side request forgery),
in any of the forms an address can take: literal, behind a name, or translated and tunnelled IPv6
(NAT64, 6to4, Teredo, IPv4-compatible, IPv4-mapped) carrying a private IPv4 address."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest

from core.spend.channels import DeliveryFailed, post_webhook, private_targets_allowed
from tests.core.spend.loopback_network import Endpoint, LoopbackNetwork

REFUSED = [
    "127.0.0.1",
    "10.0.0.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (CGNAT)
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "192.0.2.1",  # documentation
    "::1",
    "fe80::1",
    "fc00::1",
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::808:808",  # local-use NAT64: refused whole
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo: refused whole
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:a9fe:a9fe",
]


def _url(address: str, port: int = 8080) -> str:
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return f"http://{host}:{port}/hook"


@pytest.mark.parametrize("address", REFUSED)
def test_a_literal_private_address_in_any_form_is_refused_without_connecting(
    address: str, network: LoopbackNetwork
) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        post_webhook(_url(address), "whsec_x", {"x": 1}, delivery_id=1, now=0)
    assert "private or reserved network" in str(failed.value)
    assert address not in str(failed.value) and str(ipaddress.ip_address(address)) not in str(failed.value)
    assert failed.value.retry is False  # another attempt would be refused again
    assert network.connections == []


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:a9fe:a9fe::1", "::ffff:10.0.0.1"])
def test_a_name_that_answers_a_translated_private_address_is_refused(
    address: str, network: LoopbackNetwork
) -> None:
    network.name("hooks.nat64.test", [address])
    with pytest.raises(DeliveryFailed, match="private or reserved network") as failed:
        post_webhook("https://hooks.nat64.test/hook", "whsec_x", {"x": 1}, delivery_id=1, now=0)
    assert failed.value.retry is False
    assert network.connections == []


def test_a_name_with_one_private_answer_among_public_ones_is_refused(network: LoopbackNetwork) -> None:
    network.name("hooks.mixed.test", ["93.184.215.14", "64:ff9b::a00:1"])
    with pytest.raises(DeliveryFailed, match="private or reserved network"):
        post_webhook("https://hooks.mixed.test/hook", "whsec_x", {"x": 1}, delivery_id=1, now=0)
    assert network.connections == []


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "::ffff:8.8.8.8", "2002:808:808::1"])
def test_translated_forms_of_a_public_address_are_delivered(
    address: str, network: LoopbackNetwork, start_endpoint: Callable[..., Endpoint]
) -> None:
    """An IPv6-only server with DNS64 sees every IPv4-only host as a NAT64 address: those still work."""
    endpoint = start_endpoint()
    network.route(address, 8080, endpoint.address)
    post_webhook(_url(address), "whsec_x", {"x": 1}, delivery_id=1, now=0)
    assert len(endpoint.seen) == 1
    assert network.connections == [(str(ipaddress.ip_address(address)), 8080)]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://10.0.0.1/hook"]
)
def test_production_refuses_private_targets(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERLINE_ENV", "production")
    monkeypatch.delenv("METERLINE_WEBHOOKS_ALLOW_PRIVATE", raising=False)
    assert not private_targets_allowed()
    with pytest.raises(DeliveryFailed, match="private or reserved"):
        post_webhook(url, "secret", {"x": 1}, delivery_id=1, now=0)


def test_outside_production_local_receivers_work_unless_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERLINE_ENV", raising=False)
    monkeypatch.delenv("METERLINE_WEBHOOKS_ALLOW_PRIVATE", raising=False)
    assert private_targets_allowed()
    monkeypatch.setenv("METERLINE_WEBHOOKS_ALLOW_PRIVATE", "0")
    assert not private_targets_allowed()
