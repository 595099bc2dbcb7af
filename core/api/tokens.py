"""The company's server token for the HTTP API."""

from __future__ import annotations

import os
import secrets

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from core.db import unit_of_work
from core.db.models import Setting

DEMO_TOKEN_KEY = "demo_api_token"


class TokenNotConfigured(RuntimeError):
    """Production needs METERLINE_API_TOKEN; it never falls back to a generated token."""


def server_token(engine: Engine) -> str:
    """``METERLINE_API_TOKEN`` if set; otherwise (not in production) a generated token kept in
    the ``settings`` table so it survives restarts."""
    configured = os.environ.get("METERLINE_API_TOKEN", "").strip()
    if configured:
        return configured
    if os.environ.get("METERLINE_ENV", "").strip().lower() == "production":
        raise TokenNotConfigured(
            "METERLINE_API_TOKEN is not set: production needs an explicit server token for the API"
        )
    with unit_of_work(engine) as session:
        stored = session.scalar(select(Setting.value).where(Setting.key == DEMO_TOKEN_KEY))
    if stored:
        return stored
    try:
        with unit_of_work(engine, write=True) as session:
            stored = session.scalar(select(Setting.value).where(Setting.key == DEMO_TOKEN_KEY))
            if stored:
                return stored
            token = "mtl_demo_" + secrets.token_urlsafe(24)
            session.add(Setting(key=DEMO_TOKEN_KEY, value=token))
        return token
    except IntegrityError:
        # Another process made it first: use theirs.
        with unit_of_work(engine) as session:
            value = session.scalar(select(Setting.value).where(Setting.key == DEMO_TOKEN_KEY))
        assert value is not None
        return value
