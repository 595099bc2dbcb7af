"""This process's payments (provider, webhook secret) and auto-recharge trigger, for pages and routes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import streamlit as st
from sqlalchemy import Engine

from app.resources import get_engine
from core.payments import Payments, RechargeTrigger, payment_config, payments_from_env

RECHARGE_WORKERS = 2


@st.cache_resource(show_spinner=False)
def _payments_for(key: str, _engine: Engine) -> Payments:
    """One per engine and settings (``key``; the engine itself is not hashed)."""
    return payments_from_env(_engine)


def get_payments() -> Payments:
    """This process's payments, for its engine and its settings (see ``core.payments.config``)."""
    engine = get_engine()
    return _payments_for(f"{id(engine)}|{engine.url!r}|{payment_config()!r}", engine)


@st.cache_resource(show_spinner=False)
def _recharge_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=RECHARGE_WORKERS, thread_name_prefix="meterline-recharge")


@st.cache_resource(show_spinner=False)
def recharge_trigger() -> RechargeTrigger:
    """Runs after each ingestion batch commits: starts the auto-recharges it made due, off the request."""
    return RechargeTrigger(get_payments, executor=_recharge_pool())
