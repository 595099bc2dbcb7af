"""Usage page render time in a real browser, against the 10M-event database.

Starts the real portal (``streamlit run app/server.py``) on the bench database in demo
mode, and drives headless Chromium (Debian's ``/usr/bin/chromium``). Each load is a
fresh browser context, so a fresh Streamlit session:

1. ``goto`` the portal → the demo sign-in screen is shown;
2. click "Sign in as this demo user" → the Usage page (the default page: last 30 days,
   by day, stacked by meter) is drawn: chart canvas laid out and every metric filled;
3. click "Balance & credits" in the sidebar, wait for it, then click "Usage" → drawn again
   (navigation to the Usage page in a signed-in session: the target's measure).

The first load warms the server (imports, connection pool) and is reported separately.
Target: the Usage page drawn within 1.5 s of navigating to it (median).

    python -m bench render [--loads 7] [--rebuild] [--events N]
"""

from __future__ import annotations

import argparse
import time

from playwright.sync_api import sync_playwright

from bench._data import DEFAULT_DB_NAME, ensure_dataset, log
from bench._portal import (
    SIGN_IN_BUTTON,
    launch_browser,
    open_sign_in,
    run_portal,
    wait_idle,
    wait_usage_drawn,
)
from bench._report import Row, median, print_table

TARGET_MS = 1500.0
VIEWPORT = {"width": 1400, "height": 1000}


def _one_load(browser, base_url: str, shared_context=None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """One load in a new session: a new context (cold HTTP cache), or a new tab of ``shared_context``
    (a returning visitor whose browser has the portal's scripts cached)."""
    context = shared_context or browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        began = time.perf_counter()
        open_sign_in(page, base_url)
        sign_in_screen_ms = (time.perf_counter() - began) * 1000
        clicked = time.perf_counter()
        page.get_by_role("button", name=SIGN_IN_BUTTON).click()
        wait_usage_drawn(page)
        after_sign_in_ms = (time.perf_counter() - clicked) * 1000
        total_ms = (time.perf_counter() - began) * 1000

        page.get_by_role("link", name="Balance & credits").click()
        wait_idle(page, title="Balance & credits")
        navigated = time.perf_counter()
        page.get_by_role("link", name="Usage").click()
        wait_usage_drawn(page)
        navigation_ms = (time.perf_counter() - navigated) * 1000
        return {
            "sign_in_screen": sign_in_screen_ms,
            "after_sign_in": after_sign_in_ms,
            "first_visit_total": total_ms,
            "navigation": navigation_ms,
        }
    finally:
        page.close()
        if shared_context is None:
            context.close()


def _describe(sample: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:.0f} ms" for key, value in sample.items())


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m bench render", description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=7, help="timed loads after one warm-up (default 7)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the 10M-event database")
    parser.add_argument("--events", type=int, default=10_000_000, help="raw events on the big account")
    parser.add_argument("--db", default=DEFAULT_DB_NAME, help=f"PostgreSQL database ({DEFAULT_DB_NAME})")
    args = parser.parse_args(argv)

    dataset = ensure_dataset(big_events=args.events, db_name=args.db, rebuild=args.rebuild)
    samples: list[dict[str, float]] = []
    warm_samples: list[dict[str, float]] = []
    with run_portal(dataset.url) as portal, sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            cold = _one_load(browser, portal.base_url)
            log(f"warm-up load: {cold}")
            for index in range(args.loads):
                sample = _one_load(browser, portal.base_url)
                log(f"cold-cache load {index + 1}: {_describe(sample)}")
                samples.append(sample)
            shared = browser.new_context(viewport=VIEWPORT)
            _one_load(browser, portal.base_url, shared)  # fills this context's HTTP cache
            for index in range(args.loads):
                # A new session with a warm HTTP cache: the session cookie would sign it in at once.
                shared.clear_cookies()
                sample = _one_load(browser, portal.base_url, shared)
                log(f"warm-cache load {index + 1}: {_describe(sample)}")
                warm_samples.append(sample)
            shared.close()
        finally:
            browser.close()

    def med(key: str, runs: list[dict[str, float]] = samples) -> float:
        return median([s[key] for s in runs])

    def worst(key: str, runs: list[dict[str, float]] = samples) -> float:
        return max(s[key] for s in runs)

    rows = [
        Row(
            f"navigate to Usage → chart + metrics drawn, median of {args.loads}",
            f"{med('navigation'):.0f} ms (max {worst('navigation'):.0f})",
            f"<= {TARGET_MS:.0f} ms",
            med("navigation") <= TARGET_MS,
        ),
        Row(
            "new session, cold cache: sign-in click → Usage drawn",
            f"{med('after_sign_in'):.0f} ms (max {worst('after_sign_in'):.0f})",
            f"<= {TARGET_MS:.0f} ms",
            med("after_sign_in") <= TARGET_MS,
        ),
        Row(
            "new session, warm cache: sign-in click → Usage drawn",
            f"{med('after_sign_in', warm_samples):.0f} ms (max {worst('after_sign_in', warm_samples):.0f})",
            f"<= {TARGET_MS:.0f} ms",
            med("after_sign_in", warm_samples) <= TARGET_MS,
        ),
        Row("cold cache: goto → sign-in screen shown", f"{med('sign_in_screen'):.0f} ms"),
        Row("warm cache: goto → sign-in screen shown", f"{med('sign_in_screen', warm_samples):.0f} ms"),
        Row("cold cache: goto → sign in → Usage drawn", f"{med('first_visit_total'):.0f} ms"),
        Row("warm cache: goto → sign in → Usage drawn", f"{med('first_visit_total', warm_samples):.0f} ms"),
        Row("first load after server start (cold), sign-in click → drawn", f"{cold['after_sign_in']:.0f} ms"),
        Row("raw events in database (big account)", f"{dataset.total_events:,} ({dataset.big_events:,})"),
    ]
    print_table("usage page render (headless Chromium, real portal)", rows)
    return rows


if __name__ == "__main__":
    main()
