"""Kept-alive API calls are not stalled by Nagle's algorithm (a regression test, not a benchmark).

Before ``core.api.tcp``, every request on a kept-alive connection to the one-port portal
(and to ``meterline api serve`` with several workers) took about 44 ms: the response went
out in two segments and the second waited for the client's delayed ACK. A fresh connection
per request took 3-4 ms. Real clients (gateways, SDKs) keep connections alive, so the test
does too: the median of many requests on one connection must stay far below 40 ms.
"""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.db.migrate import upgrade

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "keepalive-token"
REQUESTS = 60
STALL_MS = 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(command: list[str], port: int, work: Path, database_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "METERLINE_API_TOKEN": TOKEN,
        "METERLINE_JOBS": "off",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("METERLINE_ENV", None)
    log = (work / f"server-{port}.log").open("wb")
    process = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((work / f"server-{port}.log").read_text()[-3000:])
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/v1/openapi.json")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"no answer on port {port}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    work = tmp_path_factory.mktemp("keepalive")
    database_url = f"sqlite:///{work / 'meterline.db'}"
    upgrade(database_url)
    portal_port, api_port = free_port(), free_port()
    processes = [
        _serve(
            [
                str(BIN / "streamlit"),
                "run",
                str(REPO / "app" / "server.py"),
                "--server.port",
                str(portal_port),
                "--server.headless",
                "true",
            ],
            portal_port,
            work,
            database_url,
        ),
        _serve(
            [str(BIN / "meterline"), "api", "serve", "--workers", "2", "--port", str(api_port)],
            api_port,
            work,
            database_url,
        ),
    ]
    try:
        yield {"one-port portal": portal_port, "api serve --workers 2": api_port}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


@pytest.mark.parametrize("server", ["one-port portal", "api serve --workers 2"])
def test_kept_alive_requests_are_not_stalled(servers: dict[str, int], server: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", servers[server], timeout=10)
    timings_ms = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        connection.request("GET", "/api/v1/meters", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        timings_ms.append((time.perf_counter() - started) * 1000)
    connection.close()
    assert statistics.median(timings_ms) < STALL_MS / 4, sorted(timings_ms)
