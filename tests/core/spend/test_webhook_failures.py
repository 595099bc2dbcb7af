"""What a customer reads of a failed webhook delivery (the Alerts page's delivery history): what went
wrong in their terms — DNS, refused, timeout, TLS, the HTTP status class, a redirect not followed —
never an address, an internal error string or anything else that maps the server's network."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from core.clock import fixed_clock
from core.db import unit_of_work
from core.spend import channels
from core.spend.alerts import delivery_log
from core.spend.channels import DeliveryFailed, post_webhook
from core.spend.runtime import evaluate_now
from tests.core.metering.catalog_setup import seed_catalog
from tests.core.spend.loopback_network import Endpoint, LoopbackNetwork
from tests.core.spend.spend_setup import low_balance_webhook, spend

PUBLIC = "93.184.215.14"
HOST = "hooks.customer.test"
URL = f"http://{HOST}:8443/hook"


def _assert_reveals_nothing(text: str) -> None:
    assert not re.search(r"\d+\.\d+\.\d+\.\d+|\[?[0-9a-f]*::", text), text  # no address
    assert "Errno" not in text and "Error" not in text and "errno" not in text, text  # no internal message
    assert HOST not in text and "8443" not in text and "127.0.0.1" not in text, text


@pytest.fixture
def silent() -> Iterator[socket.socket]:
    """A loopback socket that accepts connections (the kernel does) and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener
    listener.close()


def _fail(network: LoopbackNetwork) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as failed:
        post_webhook(URL, "whsec_x", {"a": 1}, delivery_id=3, now=0)
    _assert_reveals_nothing(str(failed.value))
    return failed.value


def test_a_refused_connection(network: LoopbackNetwork) -> None:
    network.name(HOST, [PUBLIC])  # no route: the connection is refused
    assert str(_fail(network)) == "the endpoint refused the connection"


def test_a_name_that_does_not_resolve(network: LoopbackNetwork) -> None:
    assert str(_fail(network)) == "the URL's host name does not resolve (DNS)"


def test_an_endpoint_that_never_answers(
    network: LoopbackNetwork, silent: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channels, "SEND_TIMEOUT_S", 1.0)
    network.name(HOST, [PUBLIC])
    network.route(PUBLIC, 8443, silent.getsockname())
    assert str(_fail(network)) == "the endpoint did not answer within 1 s"


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (503, "the endpoint answered HTTP 503 (5xx: an error on the endpoint's side)"),
        (404, "the endpoint answered HTTP 404 (4xx: the endpoint refused the request: check the URL"),
    ],
)
def test_an_http_error_is_named_by_its_class(
    status: int, says: str, network: LoopbackNetwork, start_endpoint: Callable[..., Endpoint]
) -> None:
    endpoint = start_endpoint(statuses=[status])
    network.name(HOST, [PUBLIC])
    network.route(PUBLIC, 8443, endpoint.address)
    failure = _fail(network)
    assert str(failure).startswith(says) and failure.retry


def test_a_redirect_is_not_followed_and_says_so(
    network: LoopbackNetwork, start_endpoint: Callable[..., Endpoint]
) -> None:
    internal = start_endpoint()
    endpoint = start_endpoint(statuses=[302], location=f"http://127.0.0.1:{internal.port}/latest/meta-data")
    network.name(HOST, [PUBLIC])
    network.route(PUBLIC, 8443, endpoint.address)
    says = str(_fail(network))
    assert says.startswith("the endpoint answered HTTP 302 (3xx: a redirect, which is not followed")
    assert len(endpoint.seen) == 1 and internal.seen == []


@pytest.fixture
def hooked(engine: Engine, now: datetime) -> Engine:
    """acc_a with a rule posting to ``URL`` that has just crossed (its delivery is due)."""
    seed_catalog(engine, now - timedelta(days=40))
    low_balance_webhook(engine, now, URL)
    spend(engine, "e1", 20, now - timedelta(hours=1))
    return engine


def test_the_delivery_history_shows_the_customers_terms(
    hooked: Engine, now: datetime, network: LoopbackNetwork
) -> None:
    network.name(HOST, [PUBLIC])  # refused: nothing listens there
    evaluate_now(hooked, ["acc_a"], clock=fixed_clock(now))
    with unit_of_work(hooked) as session:
        (delivery,) = delivery_log(session, "acc_a")
    assert (delivery.status, delivery.last_error) == ("pending", "the endpoint refused the connection")


def test_an_unexpected_error_is_recorded_without_its_details(
    hooked: Engine, now: datetime, network: LoopbackNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("pool exhausted talking to 10.20.30.40:5432")

    monkeypatch.setattr(channels, "post_webhook", broken)
    evaluate_now(hooked, ["acc_a"], clock=fixed_clock(now))
    with unit_of_work(hooked) as session:
        (delivery,) = delivery_log(session, "acc_a")
    assert (delivery.status, delivery.last_error) == (
        "pending",
        "an unexpected error on our side stopped this attempt",
    )
    _assert_reveals_nothing(delivery.last_error)
