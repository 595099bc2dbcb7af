"""The HTTP API for the company's backend: metering ingestion and read endpoints."""

from core.api.app import create_api_app
from core.api.body import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from core.api.routes import api_routes
from core.api.tokens import TokenNotConfigured, server_token

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_EVENTS_PER_REQUEST",
    "TokenNotConfigured",
    "api_routes",
    "create_api_app",
    "server_token",
]
