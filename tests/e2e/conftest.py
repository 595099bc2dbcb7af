"""Browser tests: the real portal (``streamlit run app/server.py``) signed into through a real
OIDC provider (``oidc-provider-mock``), driven by Playwright in Debian's headless Chromium.

One provider and one portal per module (start-up costs seconds); each test gets a fresh
browser context, so it signs in from scratch. The portal runs in a temporary working
directory because Streamlit reads ``.streamlit/secrets.toml`` from there; it serves a
SQLite database seeded through the demo seeder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_TOKEN = "test-token"
USER = {"sub": "maya@startup.example", "email": "maya@startup.example", "name": "Maya Chen"}
START_TIMEOUT_S = 90


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item so the ``page`` fixture knows when a test failed."""
    report = yield
    setattr(item, f"e2e_report_{report.when}", report)
    return report


def _bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{what} did not answer {url} within {START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running oidc-provider-mock with Maya as a predefined user."""
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "oidc.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [_bin("oidc-provider-mock"), "--port", str(port), "--user-claims", json.dumps(USER)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/.well-known/openid-configuration", process, log, "oidc-provider-mock")
        yield base
    finally:
        _stop(process)


@dataclass(frozen=True)
class Portal:
    base_url: str
    database_url: str
    log: Path


SIGN_IN_TIMEOUT_MS = 60_000


def sign_in(page: Any, portal: Portal) -> None:
    """Click the portal's sign-in button, pick ``USER`` on the provider's authorize form, land on
    Overview (``page``: a ``playwright.sync_api.Page``)."""
    page.goto(portal.base_url)
    page.get_by_role("button", name="Sign in", exact=True).click(timeout=SIGN_IN_TIMEOUT_MS)
    page.wait_for_url(re.compile(r".*/oauth2/authorize.*"), timeout=SIGN_IN_TIMEOUT_MS)
    page.get_by_role("button", name=USER["sub"]).click()
    page.wait_for_url(re.compile(re.escape(portal.base_url) + r".*"), timeout=SIGN_IN_TIMEOUT_MS)
    page.get_by_role("heading", name="Overview").wait_for(timeout=SIGN_IN_TIMEOUT_MS)


def _seed(database_url: str) -> None:
    from core.clock import system_clock
    from core.db import make_engine
    from core.db.migrate import upgrade
    from core.demo import seed_demo

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        seed_demo(engine, now=system_clock(), days=14)
    finally:
        engine.dispose()


@contextmanager
def run_portal(
    work: Path, database_url: str, *, port: int, env: dict[str, str] | None = None, what: str = "the portal"
) -> Iterator[Portal]:
    """``streamlit run app/server.py`` on ``port``, working in ``work`` (the project's Streamlit
    config copied into ``work/.streamlit``), with ``env`` on top of ours; stopped on exit."""
    streamlit_dir = work / ".streamlit"
    streamlit_dir.mkdir(exist_ok=True)
    if (REPO / ".streamlit" / "config.toml").exists():
        shutil.copyfile(REPO / ".streamlit" / "config.toml", streamlit_dir / "config.toml")
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "METERLINE_API_TOKEN": API_TOKEN,
        "METERLINE_SUPPORT_EMAILS": "support@meterline.example",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    full_env.pop("METERLINE_ENV", None)
    log = work / "streamlit.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                _bin("streamlit"),
                "run",
                str(REPO / "app" / "server.py"),
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=work,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://localhost:{port}"
    try:
        _wait_for(f"{base}/_stcore/health", process, log, what)
        yield Portal(base, database_url, log)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def portal(oidc_provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The portal on a free port, with OIDC sign-in against the mock and a seeded SQLite database."""
    if not (REPO / "app" / "server.py").exists():
        pytest.skip("app/server.py is not there yet")
    work = tmp_path_factory.mktemp("portal")
    database_url = f"sqlite:///{work / 'meterline.db'}"
    _seed(database_url)
    port = free_port()
    (work / ".streamlit").mkdir()
    (work / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        'cookie_secret = "e2e-cookie-secret-that-is-long-enough-0123456789"\n'
        'client_id = "meterline-e2e"\n'
        'client_secret = "meterline-e2e-secret"\n'
        f'server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"\n'
        'client_kwargs = { scope = "openid email profile" }\n'
    )
    with run_portal(work, database_url, port=port) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object, portal: Portal, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A fresh browser context (no cookies: every test signs in); on failure, a screenshot and the log."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "e2e_report_call", None)
    if report is not None and report.failed:
        shot = tmp_path / "failure.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"e2e: screenshot of the failure: {shot}")
        except Exception as error:  # the page may be gone; the log still helps
            print(f"e2e: no screenshot ({error})")
        print(f"e2e: portal log (last lines):\n{portal.log.read_text()[-3000:]}")
    context.close()
