"""One process, one port: the Streamlit portal plus the HTTP API routes.

Run with ``streamlit run app/server.py --server.port 8501`` (Streamlit picks up the
module-level ``app``) or ``uvicorn app.server:app``. The pages and the API share one
engine per process (``app.resources.get_engine``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from app.framing import FramingMiddleware
from app.page_head import PageHeadMiddleware
from app.payments import get_payments, recharge_trigger
from app.portal_routes import portal_start_routes
from app.resources import get_engine
from app.session_routes import PortalPathsMiddleware, session_routes
from core.api import TokenNotConfigured, api_routes, server_token
from core.api.payments import payment_routes
from core.api.tcp import enable_tcp_nodelay
from core.clock import system_clock
from core.jobs import start_background_jobs
from core.spend.runtime import SpendRuntime

ENTRYPOINT = Path(__file__).resolve().parent / "main.py"


@st.cache_resource(show_spinner=False)
def api_token() -> str:
    """The server token the API expects (``METERLINE_API_TOKEN``, else the stored demo token)."""
    return server_token(get_engine())


def announce_token() -> str | None:
    """The token a newcomer calls the API with (for the start banner); None when it is set by
    ``METERLINE_API_TOKEN`` or the database is not migrated yet. Production without the
    variable refuses to start rather than serve a broken API."""
    if os.environ.get("METERLINE_API_TOKEN", "").strip():
        return None
    try:
        return api_token()
    except TokenNotConfigured:
        raise
    except Exception as error:  # an unmigrated database: the API answers once it is migrated
        print(f"meterline: no API token yet ({error}); run `meterline db upgrade` first", file=sys.stderr)
        return None


def start_banner(demo_token: str | None) -> str:
    """One banner at start: where the portal is, how to call the API, who can sign in, how to stop."""
    from streamlit import config

    from app.auth import sign_in_mode, support_emails

    url = f"http://localhost:{config.get_option('server.port')}"
    if demo_token:
        token = f"{demo_token}  (demo token; set METERLINE_API_TOKEN to choose your own)"
    else:
        token = "the value of METERLINE_API_TOKEN"
    sign_in = {
        "oidc": "your identity provider (.streamlit/secrets.toml [auth])",
        "demo": "demo mode: pick a demo user on the sign-in screen",
        "refused": "not possible: production without an [auth] section in .streamlit/secrets.toml",
    }[sign_in_mode()]
    agents = ", ".join(sorted(support_emails())) or "none (set METERLINE_SUPPORT_EMAILS)"
    lines = [
        f"Meterline is running at {url}",
        f"  HTTP API:        {url}/api/v1/  (Authorization: Bearer <token>; see README)",
        f"  API token:       {token}",
        f"  Sign-in:         {sign_in}",
        f"  Support agents:  {agents}",
        "  Stop:            Ctrl+C",
    ]
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([rule, *lines, rule])


def warm_up_charts() -> None:
    """Load Altair's schema once at start (about 250 ms), not in the first customer's page."""
    try:
        import altair as alt
        import pandas as pd

        alt.Chart(pd.DataFrame({"day": ["2026-01-01"], "spend": [1]})).mark_bar().encode(
            x="day:T", y="spend:Q"
        ).to_dict()
    except Exception as error:  # a warm-up must never stop the server
        print(f"meterline: chart warm-up skipped ({error})", file=sys.stderr)


@asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[None]:
    """Warm the chart library, and run the periodic jobs beside the server unless they run elsewhere;
    at shutdown, write the authorize refusals tallied since the last flush.

    ``METERLINE_JOBS=off`` leaves the jobs to a separate ``meterline jobs run`` process.
    """
    print(start_banner(DEMO_TOKEN), flush=True)
    threading.Thread(target=warm_up_charts, name="meterline-warm-up", daemon=True).start()
    jobs_off = os.environ.get("METERLINE_JOBS", "on").strip().lower() in {"off", "0", "false", "no"}
    stop = None if jobs_off else start_background_jobs(get_engine())
    try:
        yield
    finally:
        if stop is not None:
            stop.set()
        SPEND.authorizer.flush()


enable_tcp_nodelay()  # before uvicorn serves on Streamlit's socket: kept-alive calls ~1 ms, not ~44
DEMO_TOKEN = announce_token()
SPEND = SpendRuntime(get_engine, clock=system_clock)  # authorize snapshots and refusals, spend alerts
app = st.App(
    ENTRYPOINT,
    lifespan=lifespan,
    routes=[
        *payment_routes(get_payments),  # POST /api/webhooks/stripe (before the API's /api/ fallback), sandbox
        *api_routes(
            get_engine,
            token_provider=api_token,
            clock=system_clock,
            after_ingest=recharge_trigger(),
            spend=SPEND,
        ),  # after_ingest: starts the auto-recharges a batch made due, off the request thread
        *session_routes(get_engine),  # demo-mode session cookie, sign-out everywhere
        *portal_start_routes(get_engine, clock=system_clock),  # a portal session's single-use start link
    ],
    middleware=[
        Middleware(FramingMiddleware),  # frame-ancestors: only METERLINE_EMBED_ORIGINS may frame the portal
        Middleware(PortalPathsMiddleware),  # deep links through OIDC sign-in, /a/b/c
        Middleware(PageHeadMiddleware),  # the history script and the stylesheet (app/page_head.py)
    ],
)
