"""Peak server memory with 20 signed-in sessions live on the Usage page.

Starts the real portal on the 10M-event bench database, opens N signed-in sessions
(one browser context each, in one headless Chromium) on the Usage page (which reruns
its live fragment every few seconds), keeps them open, and samples the resident memory
(VmRSS from /proc) of the server process and all its children every 250 ms.
Target: peak at most 400 MB.

    python -m bench memory [--sessions 20] [--hold 30] [--rebuild] [--events N]

At the end it prints Streamlit's own ``/_stcore/metrics`` cache and session figures, the
first place to look when the peak is over target.
"""

from __future__ import annotations

import argparse
import re
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from bench._data import DEFAULT_DB_NAME, ensure_dataset, log
from bench._portal import (
    launch_browser,
    process_tree_cpu_seconds,
    process_tree_rss_bytes,
    run_portal,
    sign_in,
    wait_usage_drawn,
)
from bench._report import Row, median, print_table

TARGET_MB = 400.0
MB = 1024 * 1024
AS_OF_JS = """() => document.querySelector('[data-testid="stMain"]')?.innerText || ''"""
# A session is live when its page still shows the Usage title and a drawn chart.
LIVE_JS = """() => !!document.querySelector('h1') && Array.from(
  document.querySelectorAll('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg')
).some((chart) => chart.getBoundingClientRect().height >= 100)"""


class Sampler:
    """Samples the RSS of a process tree in a background thread; remembers the peak."""

    def __init__(self, pid: int, interval_s: float = 0.25) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), process_tree_rss_bytes(self.pid)))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def now(self) -> int:
        return process_tree_rss_bytes(self.pid)

    def peak(self, since: float = 0.0) -> int:
        return max((rss for at, rss in self.samples if at >= since), default=0)


def _streamlit_metrics(base_url: str) -> list[str]:
    """The interesting lines of ``/_stcore/metrics`` (caches and sessions), or why not."""
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/metrics", timeout=10) as answer:
            body = answer.read().decode()
    except OSError as error:
        return [f"/_stcore/metrics unavailable: {error}"]
    keep = ("cache_memory_bytes", "session")
    return [line for line in body.splitlines() if line and not line.startswith("#") and line.startswith(keep)]


def _refresh_lag_s(page) -> float | None:  # type: ignore[no-untyped-def]
    """Seconds since the page's live fragment last refreshed (its "as of HH:MM:SS UTC" caption)."""
    text = page.evaluate(AS_OF_JS)
    match = re.search(r"as of (\d\d):(\d\d):(\d\d) UTC", text or "")
    if not match:
        return None
    now = datetime.now(UTC)
    hour, minute, second = (int(g) for g in match.groups())
    shown = now.replace(hour=hour, minute=minute, second=second, microsecond=0)
    if shown > now:
        shown -= timedelta(days=1)
    return (now - shown).total_seconds()


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m bench memory", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="signed-in sessions (default 20)")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to keep them live (default 30)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the 10M-event database")
    parser.add_argument("--events", type=int, default=10_000_000, help="raw events on the big account")
    parser.add_argument("--db", default=DEFAULT_DB_NAME, help=f"PostgreSQL database ({DEFAULT_DB_NAME})")
    args = parser.parse_args(argv)

    dataset = ensure_dataset(big_events=args.events, db_name=args.db, rebuild=args.rebuild)
    with run_portal(dataset.url) as portal, Sampler(portal.pid) as sampler, sync_playwright() as playwright:
        time.sleep(1.0)
        idle_rss = sampler.now()
        browser = launch_browser(playwright)
        contexts = []
        failed = 0
        try:
            opened = time.perf_counter()
            for index in range(args.sessions):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                contexts.append((context, page))
                began = time.perf_counter()
                try:
                    sign_in(page, portal.base_url)
                    wait_usage_drawn(page, timeout_ms=90_000)
                except PlaywrightError as error:
                    # Keep the session open (it still holds server memory) and say what it showed.
                    failed += 1
                    shown = page.evaluate(AS_OF_JS)[:300].replace("\n", " | ")
                    log(f"session {index + 1} not drawn: {str(error).splitlines()[0]}; page shows: {shown}")
                if index == 0:
                    one_session_rss = sampler.now()
                log(
                    f"session {index + 1}/{args.sessions} live after {time.perf_counter() - began:.1f} s, "
                    f"server RSS {sampler.now() / MB:.0f} MB"
                )
            open_s = time.perf_counter() - opened
            held_from = time.monotonic()
            cpu_before = process_tree_cpu_seconds(portal.pid)
            log(f"holding {args.sessions} sessions for {args.hold:.0f} s")
            time.sleep(args.hold)
            server_cpu = (process_tree_cpu_seconds(portal.pid) - cpu_before) / (time.monotonic() - held_from)
            lags = [_refresh_lag_s(page) for _, page in contexts]
            still_live = sum(1 for _, page in contexts if page.evaluate(LIVE_JS))
            end_rss = sampler.now()
            metrics = _streamlit_metrics(portal.base_url)
        finally:
            for context, _ in contexts:
                context.close()
            browser.close()
        peak_rss = sampler.peak()
        hold_peak = sampler.peak(since=held_from)

    print(f"server process tree: pid {portal.pid}; {len(sampler.samples)} samples every 250 ms")
    print("Streamlit /_stcore/metrics (caches, sessions):")
    for line in metrics[:40]:
        print(f"  {line}")
    known_lags = [lag for lag in lags if lag is not None]
    per_session = (end_rss - one_session_rss) / max(1, args.sessions - 1)
    rows = [
        Row(
            f"peak server RSS, {args.sessions} sessions on Usage",
            f"{peak_rss / MB:.0f} MB",
            f"<= {TARGET_MB:.0f} MB",
            peak_rss / MB <= TARGET_MB,
        ),
        Row(f"peak RSS while holding {args.hold:.0f} s", f"{hold_peak / MB:.0f} MB"),
        Row("RSS after start, no session", f"{idle_rss / MB:.0f} MB"),
        Row("RSS with 1 session on Usage", f"{one_session_rss / MB:.0f} MB"),
        Row("RSS at the end of the hold", f"{end_rss / MB:.0f} MB"),
        Row("added per further session", f"{per_session / MB:.1f} MB"),
        Row("sessions that failed to draw when opened", f"{failed}/{args.sessions}"),
        Row("sessions still live at the end", f"{still_live}/{args.sessions}"),
        Row(
            "server CPU while holding (fragments rerun every few s)",
            f"{server_cpu * 100:.0f} % of one core",
        ),
        Row(
            "live fragment age at the end, median / max",
            f"{median(known_lags):.0f} s / {max(known_lags):.0f} s" if known_lags else "no 'as of' caption",
        ),
        Row("time to open and draw all sessions", f"{open_s:.1f} s"),
    ]
    print_table("server memory (real portal, headless Chromium)", rows)
    return rows


if __name__ == "__main__":
    main()
