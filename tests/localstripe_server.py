"""localstripe for the tests that drive the Stripe provider: one instance at a time on this machine.

localstripe always writes /tmp/localstripe.pickle, so two instances at once clash: whoever
runs one holds an exclusive file lock for as long as it runs (another xdist worker, or
another test run, waits for it). Use it from a module-scoped fixture (``yield from
run_localstripe(...)``) and run with ``--dist loadscope`` so a module stays on one worker.
Flush its data between tests with ``flush(base)``.
"""

from __future__ import annotations

import fcntl
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
import stripe

from core.clock import system_clock
from core.db import unit_of_work
from core.db.models import PaymentCard
from core.payments import Payments
from core.payments.top_ups import ensure_customer

LAUNCHER = Path(__file__).with_name("localstripe_endive.py")
LOCK_FILE = Path("/tmp/meterline-localstripe.lock")
LOCK_WAIT_S = 600
START_WAIT_S = 30
API_KEY = "sk_test_meterline"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _lock() -> IO[str]:
    handle = LOCK_FILE.open("w")
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                pytest.fail("another localstripe kept the lock for 10 minutes")
            time.sleep(0.5)


def run_localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start localstripe (holding the lock), yield its base URL, stop it.

    It runs through ``tests/localstripe_endive.py``, which teaches it the API change our requests
    meet (``allowed_payment_method_types`` in, ``payment_method_types`` refused) and says what
    localstripe still cannot show.
    """
    if importlib.util.find_spec("localstripe") is None:
        pytest.skip("localstripe is not installed in this environment (pip install -e '.[dev]')")
    handle = _lock()
    port = free_port()
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--port", str(port), "--from-scratch"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_WAIT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"localstripe exited:\n{log.read_text()[-2000:]}")
            try:
                httpx.get(f"{base}/v1/customers", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def flush(base: str) -> None:
    """Forget every object (``DELETE /_config/data``)."""
    assert httpx.delete(f"{base}/_config/data").status_code == 200


def sdk(base: str) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": base})


def saved_card(payments: Payments, base: str, account_id: str, number: str) -> str:
    """What Checkout with "save card" leaves behind: a card attached to the account's customer."""
    customer = ensure_customer(payments.engine, payments.provider, account_id=account_id, clock=system_clock)  # type: ignore[arg-type]
    client = sdk(base)
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
    )
    client.v1.payment_methods.attach(method.id, params={"customer": customer})
    with unit_of_work(payments.engine, write=True) as session:
        session.add(
            PaymentCard(
                id=method.id,
                account_id=account_id,
                provider="stripe",
                customer_id=customer,
                brand="visa",
                last4=number[-4:],
                exp_month=12,
                exp_year=2030,
                created_at=system_clock(),
            )
        )
    return str(method.id)
