"""DNS rebinding: a webhook's host name answers a public address to the check and a loopback one a
moment later. The delivery connects only to the address that was checked, with the host name kept
for the Host header and TLS, and every attempt (retries too) looks the name up once and checks it.

The DNS answers differently on each lookup; the "public" address is routed to a loopback server
and anything else outside 127.0.0.0/8 is refused (``loopback_network``)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from core.clock import fixed_clock
from core.db import unit_of_work
from core.spend.alerts import delivery_log
from core.spend.channels import DeliveryFailed, post_webhook
from core.spend.deliveries import backoff, deliver_due
from core.spend.runtime import evaluate_now
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.loopback_network import Endpoint, LoopbackCA, LoopbackNetwork
from tests.core.spend.spend_setup import low_balance_webhook, spend

PUBLIC = "93.184.215.14"  # what the name answers the check; routed to a loopback server here
REBIND = "hooks.rebind.test"


def _rebinding_pair(
    network: LoopbackNetwork,
    start_endpoint: Callable[..., Endpoint],
    *,
    tls: Callable[[], ssl.SSLContext] | None = None,
    **endpoint: Any,
) -> tuple[Endpoint, Endpoint]:
    """The server the checked public address leads to, and a private one the name rebinds to.

    The URL's port is the private server's, so a second lookup (127.0.0.1) reaches it."""
    public = start_endpoint(tls=tls() if tls else None, **endpoint)
    private = start_endpoint(tls=tls() if tls else None, **endpoint)
    network.name(REBIND, [PUBLIC], ["127.0.0.1"])
    network.route(PUBLIC, private.port, public.address)
    return public, private


def test_a_rebinding_name_is_posted_to_the_address_that_was_checked(
    network: LoopbackNetwork, start_endpoint: Callable[..., Endpoint]
) -> None:
    public, private = _rebinding_pair(network, start_endpoint)
    post_webhook(f"http://{REBIND}:{private.port}/hook", "whsec_x", {"a": 1}, delivery_id=7, now=0)
    assert private.seen == []
    assert [seen.path for seen in public.seen] == ["/hook"]
    assert public.seen[0].headers["Host"] == f"{REBIND}:{private.port}"
    assert network.lookups == [REBIND]  # one lookup: the one that was checked
    assert network.connections == [(PUBLIC, private.port)]


def test_over_https_the_host_name_is_the_tls_server_name_and_the_certificate_is_checked_against_it(
    network: LoopbackNetwork, start_endpoint: Callable[..., Endpoint], trusted_ca: LoopbackCA
) -> None:
    public, private = _rebinding_pair(network, start_endpoint, tls=lambda: trusted_ca.server_context(REBIND))
    post_webhook(f"https://{REBIND}:{private.port}/hook", "whsec_x", {"a": 1}, delivery_id=7, now=0)
    assert private.seen == [] and private.server_names == []
    assert public.server_names == [REBIND]  # SNI, and the certificate (for the name only) verified
    assert public.seen[0].headers["Host"] == f"{REBIND}:{private.port}"
    assert network.lookups == [REBIND]


def test_a_certificate_for_another_name_fails_in_the_customers_terms(
    network: LoopbackNetwork, start_endpoint: Callable[..., Endpoint], trusted_ca: LoopbackCA
) -> None:
    public, private = _rebinding_pair(
        network, start_endpoint, tls=lambda: trusted_ca.server_context("other.example.test")
    )
    with pytest.raises(DeliveryFailed) as failed:
        post_webhook(f"https://{REBIND}:{private.port}/hook", "whsec_x", {"a": 1}, delivery_id=7, now=0)
    assert str(failed.value) == "the endpoint's TLS certificate is not valid for its host name"
    assert public.seen == [] and private.seen == []


def test_every_attempt_looks_the_name_up_once_and_a_retry_to_a_rebound_address_is_refused(
    engine: Engine, now: datetime, network: LoopbackNetwork, start_endpoint: Callable[..., Endpoint]
) -> None:
    seed_catalog(engine, now - timedelta(days=40))
    public, private = _rebinding_pair(network, start_endpoint, statuses=[500])
    low_balance_webhook(engine, now, f"http://{REBIND}:{private.port}/hook")
    spend(engine, "e1", 20, now - timedelta(hours=1))
    evaluate_now(engine, ["acc_a"], clock=fixed_clock(now))  # attempt 1: checked, pinned, answered 500
    assert network.lookups == [REBIND] and len(public.seen) == 1
    # Attempt 2: the name now answers 127.0.0.1.
    run = deliver_due(engine, clock=fixed_clock(now + backoff(1)))
    assert (run.delivered, run.retrying, run.failed) == (0, 0, 1)
    assert network.lookups == [REBIND, REBIND]
    assert private.seen == [] and len(public.seen) == 1
    assert network.connections == [(PUBLIC, private.port)]
    with unit_of_work(engine) as session:
        (delivery,) = delivery_log(session, "acc_a")
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert "private or reserved network" in delivery.last_error
    assert "127.0.0.1" not in delivery.last_error and PUBLIC not in delivery.last_error
