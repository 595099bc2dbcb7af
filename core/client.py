"""A small Python client for the company's backend: send usage events, read balances.

    client = MeterlineClient("https://billing.example.com", token)
    summary = client.send_events(events)          # any number; sent 5,000 per request

Sending is idempotent: each event carries its own ``event_id``, so a retried request
(after a timeout, a dropped connection or a 5xx) can only add what is missing; events
already stored come back as duplicates, never twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

MAX_EVENTS_PER_REQUEST = 5_000
RETRY_STATUSES = frozenset({429, 502, 503, 504, 500})


class MeterlineAPIError(Exception):
    """The API refused a request as a whole (its ``error`` object is kept)."""

    def __init__(self, status: int, error: Mapping[str, Any]):
        super().__init__(f"{status} {error.get('code')}: {error.get('message')}")
        self.status = status
        self.code = error.get("code")
        self.field = error.get("field")
        self.message = error.get("message")


class MeterlineClient:
    """HTTP client for the Meterline API (one ``httpx.Client``, reused)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 30.0,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s

    def __enter__(self) -> MeterlineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, *, json: Any = None) -> dict[str, Any]:
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._http.request(method, path, json=json)
            except httpx.TransportError:
                if attempt == self._max_attempts:
                    raise
            else:
                if response.status_code not in RETRY_STATUSES or attempt == self._max_attempts:
                    try:
                        body = response.json() if response.content else {}
                    except ValueError:
                        body = {"error": {"code": "bad_response", "message": response.text[:200]}}
                    if response.status_code >= 400:
                        raise MeterlineAPIError(response.status_code, body.get("error", {}))
                    return body
            time.sleep(min(self._backoff_s * 2 ** (attempt - 1), 10.0))
        raise AssertionError("unreachable")

    def send_events(self, events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """Send events in requests of at most 5,000; returns the summed answer.

        ``rejected`` indexes refer to positions in ``events`` (not in one request).
        """
        batch: list[Mapping[str, Any]] = []
        total: dict[str, Any] = {"batch_ids": [], "accepted": 0, "duplicates": [], "rejected": []}
        offset = 0

        def flush() -> None:
            nonlocal offset
            answer = self._request("POST", "/api/v1/events", json={"events": batch})
            if answer.get("batch_id") is not None:
                total["batch_ids"].append(answer["batch_id"])
            total["accepted"] += answer["accepted"]
            total["duplicates"].extend(answer["duplicates"])
            total["rejected"].extend({**r, "index": r["index"] + offset} for r in answer["rejected"])
            offset += len(batch)
            batch.clear()

        for event in events:
            batch.append(event)
            if len(batch) == MAX_EVENTS_PER_REQUEST:
                flush()
        if batch:
            flush()
        return total

    def accounts(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/api/v1/accounts")["accounts"])

    def meters(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/api/v1/meters")["meters"])

    def balance(self, account_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/accounts/{quote(account_id, safe='')}/balance")
