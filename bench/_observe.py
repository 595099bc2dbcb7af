"""What the processes were doing while a bench's clock ran: CPU time, PostgreSQL sessions' states."""

from __future__ import annotations

import threading
import time
from collections import Counter

import psycopg
from sqlalchemy.engine import make_url

from bench._portal import Portal, command_cpu_seconds, process_tree_cpu_seconds, worker_pids


class CpuMeter:
    """CPU time of the server (worker by worker), PostgreSQL and this process while the clock runs."""

    def __init__(self, server: Portal, postgres: bool) -> None:
        self.server = server
        self.postgres = postgres  # PostgreSQL's processes may also serve others on a shared machine
        self.workers = worker_pids(server.pid)
        self._start = self._sample()
        self._wall = time.perf_counter()

    def _sample(self) -> tuple[float, list[float], float, float]:
        return (
            process_tree_cpu_seconds(self.server.pid),
            [process_tree_cpu_seconds(pid) for pid in self.workers],
            command_cpu_seconds("postgres") if self.postgres else 0.0,
            time.process_time(),
        )

    def restart(self) -> None:
        self._start = self._sample()
        self._wall = time.perf_counter()

    def server_ms_per_1000(self, events: int) -> list[float]:
        """The server's CPU milliseconds per 1,000 events since ``restart``: whole, then each worker."""
        end = self._sample()
        per_1000 = 1000 * 1000 / events
        whole = (end[0] - self._start[0]) * per_1000
        return [whole, *((b - a) * per_1000 for a, b in zip(self._start[1], end[1], strict=True))]

    def summary(self, events: int) -> str:
        """CPU milliseconds per 1,000 events sent, by whom, and how busy the server was."""
        end = self._sample()
        wall = time.perf_counter() - self._wall
        per_1000 = 1000 * 1000 / events  # seconds -> ms, per event -> per 1,000 events
        server = end[0] - self._start[0]
        text = f"CPU per 1,000 events: server {server * per_1000:.0f} ms"
        if len(self.workers) > 1:
            per_worker = [b - a for a, b in zip(self._start[1], end[1], strict=True)]
            text += " (" + " + ".join(f"{w * per_1000:.0f}" for w in per_worker) + ")"
        if self.postgres:
            text += f", postgres {(end[2] - self._start[2]) * per_1000:.0f} ms (all its processes)"
        text += f", bench clients {(end[3] - self._start[3]) * per_1000:.0f} ms"
        return text + f"; server busy {server / wall:.2f} cores"


class PgActivity:
    """Samples ``pg_stat_activity`` of one database every 20 ms: what its client sessions are doing.

    "idle in transaction" is a session whose transaction waits for the application (its
    Python work between statements, locks held); "lock wait" one queued behind another
    transaction's row locks (the account locks of ingestion, for instance).
    """

    INTERVAL_S = 0.02
    STATES = ("running", "lock wait", "other wait", "idle in transaction", "idle")

    def __init__(self, database_url: str) -> None:
        self.url = make_url(database_url)
        self.counts = dict.fromkeys(self.STATES, 0)
        self.waiting_in: Counter[str] = Counter()  # lock waits by the statement that waits
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            while not self._stop.wait(self.INTERVAL_S):
                rows = conn.execute(
                    "SELECT state, wait_event_type, query FROM pg_stat_activity "
                    "WHERE datname = current_database() AND backend_type = 'client backend' "
                    "AND pid <> pg_backend_pid()"
                ).fetchall()
                self.samples += 1
                for state, wait, query in rows:
                    kind = self._classify(state, wait)
                    self.counts[kind] += 1
                    if kind == "lock wait":
                        self.waiting_in[self._statement(query)] += 1

    @staticmethod
    def _statement(query: str) -> str:
        words = " ".join(query.split())
        return words if len(words) <= 70 else f"{words[:35]} … {words[-30:]}"

    @staticmethod
    def _classify(state: str | None, wait: str | None) -> str:
        if state == "active":
            return "running" if wait is None else "lock wait" if wait == "Lock" else "other wait"
        if state in ("idle in transaction", "idle in transaction (aborted)"):
            return "idle in transaction"
        return "idle"

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        total = sum(self.counts.values())
        if not total:
            return ""
        shares = ", ".join(f"{state} {100 * n / total:.0f} %" for state, n in self.counts.items())
        text = f"server's PostgreSQL sessions: {shares} (of {total / self.samples:.1f} on average)"
        if self.waiting_in:
            statement, waits = self.waiting_in.most_common(1)[0]
            share = 100 * waits / sum(self.waiting_in.values())
            text += f"; {share:.0f} % of lock waits in: {statement}"
        return text
