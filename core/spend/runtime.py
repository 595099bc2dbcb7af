"""Spend control beside a running API: the authorize snapshots and the post-ingestion worker.

``after_ingest`` is what an ingesting route calls once its batch has committed. It only hands
the batch to a background thread and returns: that thread finds the accounts in the batch that
have rules or caps, refreshes their authorize snapshots, evaluates the rules and caps usage can
move (in its own write transaction; the credits-expiring notices move with time alone and are
the periodic job's) and sends the resulting emails and webhooks, so ingestion never waits for
an evaluation, an SMTP server or an HTTP endpoint. The periodic job (``core.jobs``) evaluates
every rule again each minute and retries deliveries, so nothing is lost if this process stops.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import Engine

from core.clock import Clock, system_clock
from core.db import unit_of_work
from core.spend.authorize import Authorizer
from core.spend.deliveries import deliver_due
from core.spend.evaluate import Evaluation, accounts_with_rules, evaluate_accounts

log = logging.getLogger(__name__)

MAX_QUEUED_BATCHES = 256  # past this, batches are dropped here and the periodic job catches up
IDLE_EXIT_S = 30.0


def account_ids_of(raw_events: Sequence[object]) -> set[str]:
    return {
        account_id
        for raw in raw_events
        if isinstance(raw, dict) and isinstance(account_id := raw.get("account_id"), str)
    }


def evaluate_now(
    engine: Engine, account_ids: Iterable[str], *, clock: Clock = system_clock, after_usage: bool = False
) -> Evaluation:
    """Evaluate the rules and caps of those accounts that have any, then send what fired (blocking).

    ``after_usage``: only what usage can move (``evaluate_accounts``), as after an ingested batch.
    """
    ids = set(account_ids)
    with unit_of_work(engine) as session:
        worth = accounts_with_rules(session, ids, after_usage=after_usage)
    if not worth:
        return Evaluation()
    with unit_of_work(engine, write=True) as session:
        result = evaluate_accounts(session, worth, at=clock(), after_usage=after_usage)
    if result.delivery_ids:
        deliver_due(engine, clock=clock, ids=result.delivery_ids)
    return result


class SpendRuntime:
    """One per API app: the authorizer and the post-ingestion worker thread (started on demand)."""

    def __init__(self, engine_provider: Callable[[], Engine], *, clock: Clock = system_clock):
        self.engine_provider = engine_provider
        self.clock = clock
        self.authorizer = Authorizer(engine_provider, clock=clock)
        self._queue: deque[Sequence[object]] = deque()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._busy = False

    def after_ingest(self, raw_events: Sequence[object]) -> None:
        """Queue a committed batch for evaluation; returns at once."""
        with self._condition:
            if len(self._queue) >= MAX_QUEUED_BATCHES:
                log.warning("spend worker queue full: a batch waits for the periodic evaluation")
                return
            self._queue.append(raw_events)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="meterline-spend", daemon=True)
                self._thread.start()
            self._condition.notify()

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued batch was evaluated (tests); False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._queue and not self._busy, timeout=timeout_s)

    def _run(self) -> None:
        while True:
            with self._condition:
                if not self._condition.wait_for(lambda: bool(self._queue), timeout=IDLE_EXIT_S):
                    self._thread = None
                    return
                batches = list(self._queue)
                self._queue.clear()
                self._busy = True
            try:
                ids: set[str] = set()
                for batch in batches:
                    ids |= account_ids_of(batch)
                self.authorizer.refresh_known(ids)
                # Usage moves spend, balance and runway; the credits-expiring notices move with
                # time and wait for the periodic job (every minute), as retries do.
                evaluate_now(self.engine_provider(), ids, clock=self.clock, after_usage=True)
            except Exception:  # logged; the periodic job evaluates again within a minute
                log.exception("evaluating alerts after ingestion failed")
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()
