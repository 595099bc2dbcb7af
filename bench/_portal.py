"""Run the real portal for a benchmark and drive it with headless Chromium.

The server is started exactly as ``make run`` serves it (``streamlit run app/server.py
--server.headless true``), against the bench database (``DATABASE_URL``), in demo mode:
its working directory is a scratch folder holding a copy of the project's
``.streamlit/config.toml`` but no ``secrets.toml``, so a secrets file with ``[auth]`` in
the checkout cannot switch the bench to OIDC sign-in.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench._data import BENCH_USER, log

ROOT = Path(__file__).resolve().parent.parent
STREAMLIT = ROOT / ".venv" / "bin" / "streamlit"
CHROMIUM = "/usr/bin/chromium"
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
SIGN_IN_BUTTON = "Sign in as this demo user"
STARTUP_TIMEOUT_S = 60


def entrypoint() -> Path:
    """``app/server.py`` (the ``st.App`` that also serves the HTTP API), else the bare router."""
    server = ROOT / "app" / "server.py"
    return server if server.exists() else ROOT / "app" / "main.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Portal:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def run_portal(
    database_url: str, *, port: int | None = None, env: Mapping[str, str] | None = None
) -> Iterator[Portal]:
    """Start the portal on ``port`` (a free one by default); stop it (and only it) on exit.

    ``env`` adds to the server's environment (``METERLINE_API_TOKEN``, ``METERLINE_JOBS``…).
    """
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="meterline-bench-"))
    config = ROOT / ".streamlit" / "config.toml"
    if config.exists():
        (workdir / ".streamlit").mkdir()
        shutil.copy(config, workdir / ".streamlit" / "config.toml")
    server_env = dict(os.environ)
    server_env.update({"DATABASE_URL": database_url, "METERLINE_ENV": "bench", "PYTHONUNBUFFERED": "1"})
    server_env.update(env or {})
    log_path = workdir / "server.log"
    command = [
        str(STREAMLIT),
        "run",
        str(entrypoint()),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log_path, "wb") as server_log:
        process = subprocess.Popen(
            command, cwd=workdir, env=server_env, stdout=server_log, stderr=subprocess.STDOUT
        )
    portal = Portal(process, f"http://127.0.0.1:{port}", log_path)
    try:
        began = time.perf_counter()
        _wait_healthy(portal)
        log(f"portal up on {portal.base_url} (pid {portal.pid}) in {time.perf_counter() - began:.1f} s")
        yield portal
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


# The checkout's own venv; a git worktree without one uses the running interpreter's (a shared venv).
METERLINE = ROOT / ".venv" / "bin" / "meterline"
if not METERLINE.exists():
    METERLINE = Path(sys.executable).parent / "meterline"


@contextmanager
def run_api_server(
    database_url: str, *, workers: int, env: Mapping[str, str] | None = None
) -> Iterator[Portal]:
    """``meterline api serve --workers N`` on a free port, every worker ready; stopped (only it) on exit.

    The first answer only says that one worker listens: until the others have imported
    everything, they would let it take every kept-alive connection. So this also waits
    until each worker process is idle (its CPU time stops growing).
    """
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="meterline-bench-api-"))
    server_env = dict(os.environ)
    server_env.update({"DATABASE_URL": database_url, "METERLINE_ENV": "bench", "PYTHONUNBUFFERED": "1"})
    server_env.update(env or {})
    log_path = workdir / "server.log"
    command = [str(METERLINE), "api", "serve", "--workers", str(workers), "--port", str(port)]
    command += ["--host", "127.0.0.1"]
    with open(log_path, "wb") as server_log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=server_env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its workers are stopped with it
        )
    server = Portal(process, f"http://127.0.0.1:{port}", log_path)
    try:
        began = time.perf_counter()
        _wait_answering(server, "/api/v1/openapi.json")
        _wait_workers_idle(server, workers)
        log(
            f"API up on {server.base_url} ({workers} worker(s), pid {server.pid}) "
            f"in {time.perf_counter() - began:.1f} s"
        )
        yield server
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def worker_pids(pid: int) -> list[int]:
    """The worker processes of ``meterline api serve`` (spawned children), or ``[pid]`` with one worker."""
    workers = []
    for child in sorted(_children(pid)):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"spawn_main" in command:  # not multiprocessing's resource tracker, also a child
            workers.append(child)
    return workers or [pid]


def _children(pid: int) -> set[int]:
    return set(_children_by_parent().get(pid, []))


def connections_per_worker(server: Portal) -> list[int]:
    """How many established client connections each worker of ``server`` holds, worker by worker.

    Workers share one listening socket and each connection stays with the worker that
    accepted it: with kept-alive clients, this is how the load is split.
    """
    port = int(server.base_url.rsplit(":", 1)[1])
    inodes = _established_socket_inodes(port)
    counts = []
    for pid in worker_pids(server.pid):
        held = 0
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                    held += 1
        except (FileNotFoundError, PermissionError):
            pass
        counts.append(held)
    return counts


def _established_socket_inodes(local_port: int) -> set[int]:
    """Inodes of the established TCP sockets whose local port is ``local_port`` (the server's side)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == local_port and fields[3] == "01":  # ESTABLISHED
                inodes.add(int(fields[9]))
    return inodes


def command_cpu_seconds(name: str) -> float:
    """User plus system CPU time of every process whose command is ``name`` (``postgres``: the server)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if head.split("(", 1)[1] == name:
            fields = tail.split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the group this bench started for it, nothing else
        process.wait()


def _wait_answering(server: Portal, path: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited at start:\n{server.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.base_url}{path}", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {STARTUP_TIMEOUT_S} s")


def _wait_workers_idle(server: Portal, workers: int, *, quiet_s: float = 0.3) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    before: dict[int, float] = {}
    while time.monotonic() < deadline:
        pids = worker_pids(server.pid) if workers > 1 else [server.pid]
        now = {pid: process_tree_cpu_seconds(pid) for pid in pids}
        if len(pids) >= workers and now == before:
            return
        before = now
        time.sleep(quiet_s)
    raise RuntimeError(f"the API workers did not settle within {STARTUP_TIMEOUT_S} s")


def _wait_healthy(portal: Portal) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if portal.process.poll() is not None:
            raise RuntimeError(f"the portal exited at start:\n{portal.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{portal.base_url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the portal did not answer within {STARTUP_TIMEOUT_S} s")


def process_tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, from /proc (VmRSS)."""
    total = 0
    for member in _descendants(pid) | {pid}:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def process_tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by ``pid`` and its descendants."""
    ticks = 0
    for member in _descendants(pid) | {pid}:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _descendants(pid: int) -> set[int]:
    children = _children_by_parent()
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


# The app is idle when no rerun is running and no element is stale (left from the last run).
IDLE_JS = """
() => {
  if (document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')) return false;
  const main = document.querySelector('[data-testid="stMain"]');
  return !!main && !main.querySelector('[data-stale="true"]');
}
"""
# The Usage page is drawn when the app is idle, its title is "Usage", a Vega chart has its
# canvas or svg (the renderer Streamlit picks) laid out at chart size, and every metric shows its value.
USAGE_DRAWN_JS = """
() => {
  if (document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')) return false;
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || main.querySelector('[data-stale="true"]')) return false;
  const title = main.querySelector('h1');
  if (!title || !title.textContent.trim().startsWith('Usage')) return false;
  const charts = main.querySelectorAll(
    '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg, .vega-embed canvas');
  if (!Array.from(charts).some((chart) => chart.getBoundingClientRect().height >= 100)) return false;
  const metrics = main.querySelectorAll('[data-testid="stMetricValue"]');
  if (metrics.length === 0) return false;
  return Array.from(metrics).every((m) => m.textContent.trim().length > 0);
}
"""


def launch_browser(playwright):  # type: ignore[no-untyped-def]
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_sign_in(page, base_url: str, *, timeout_ms: int = 60_000) -> None:  # type: ignore[no-untyped-def]
    """Open the portal's demo sign-in screen with the bench user picked.

    At the Usage page's address: the portal lands on Overview, and a deep link survives sign-in.
    """
    page.goto(f"{base_url}/usage", wait_until="domcontentloaded")
    page.get_by_role("button", name=SIGN_IN_BUTTON).wait_for(state="visible", timeout=timeout_ms)
    # The picker is a list of radio options, one line per user (the demo story's first).
    page.locator('[data-testid="stRadio"] label', has_text=BENCH_USER).first.click()


def sign_in(page, base_url: str, *, timeout_ms: int = 60_000) -> None:  # type: ignore[no-untyped-def]
    """Sign in as the bench user in demo mode (does not wait for the page behind it)."""
    open_sign_in(page, base_url, timeout_ms=timeout_ms)
    page.get_by_role("button", name=SIGN_IN_BUTTON).click()


def wait_usage_drawn(page, *, timeout_ms: int = 60_000) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(USAGE_DRAWN_JS, timeout=timeout_ms, polling=25)


def wait_idle(page, *, title: str, timeout_ms: int = 60_000) -> None:  # type: ignore[no-untyped-def]
    """Wait until the page titled ``title`` finished its run."""
    page.locator("h1", has_text=title).first.wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_function(IDLE_JS, timeout=timeout_ms, polling=25)
