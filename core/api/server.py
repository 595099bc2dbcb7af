"""The HTTP API as its own ASGI application, for ``uvicorn`` with several worker processes.

    meterline api serve --workers 2 --port 8600

Each worker builds the app with ``build_app()`` (``uvicorn --factory``): its own engine on
``DATABASE_URL`` and the server token (``METERLINE_API_TOKEN``, else the stored demo token),
as the one-port portal reads them. Workers share nothing but the database: ingestion locks
the accounts it writes, so any number of workers may take any batches (see
docs/architecture.md). Periodic jobs stay with the portal or ``meterline jobs run``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from core.api.routes import api_routes
from core.api.tcp import enable_tcp_nodelay
from core.api.tokens import server_token
from core.clock import system_clock
from core.db import make_engine
from core.spend.runtime import SpendRuntime

APP_FACTORY = "core.api.server:build_app"


def build_app() -> Starlette:
    """The API routes on an engine of this process's own (called once per worker)."""
    enable_tcp_nodelay()  # before this worker's uvicorn starts serving on the shared socket
    engine = make_engine()
    token = server_token(engine)
    spend = SpendRuntime(lambda: engine, clock=system_clock)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        spend.authorizer.flush()  # the authorize refusals tallied since the last half-second flush
        engine.dispose()

    return Starlette(
        routes=api_routes(lambda: engine, token_provider=lambda: token, clock=system_clock, spend=spend),
        lifespan=lifespan,
    )


def serve(*, host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Run the API under uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )
