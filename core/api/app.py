"""A bare Starlette app with only the API routes (tests, the benchmark, ``uvicorn``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Engine
from starlette.applications import Starlette

from core.api.rate_limit import TokenBucketLimiter
from core.api.routes import api_routes
from core.clock import Clock, system_clock
from core.spend.runtime import SpendRuntime


def create_api_app(
    engine: Engine,
    token: str,
    clock: Clock = system_clock,
    *,
    key_limiter: TokenBucketLimiter | None = None,
) -> Starlette:
    """The API on ``engine`` with a fixed server ``token``; ``app.state.spend`` is its spend runtime.

    Its lifespan writes the authorize refusals still tallied when it shuts down. ``key_limiter``
    rate-limits customer API keys (default: from the environment)."""
    spend = SpendRuntime(lambda: engine, clock=clock)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        spend.authorizer.flush()

    app = Starlette(
        routes=api_routes(
            lambda: engine, token_provider=lambda: token, clock=clock, spend=spend, key_limiter=key_limiter
        ),
        lifespan=lifespan,
    )
    app.state.spend = spend
    return app
