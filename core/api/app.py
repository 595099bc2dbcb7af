"""A bare Starlette app with only the API routes (tests, the benchmark, ``uvicorn``)."""

from __future__ import annotations

from sqlalchemy import Engine
from starlette.applications import Starlette

from core.api.routes import api_routes
from core.clock import Clock, system_clock


def create_api_app(engine: Engine, token: str, clock: Clock = system_clock) -> Starlette:
    """The API on ``engine`` with a fixed server ``token``."""
    return Starlette(routes=api_routes(lambda: engine, token_provider=lambda: token, clock=clock))
