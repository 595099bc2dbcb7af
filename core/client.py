"""A small Python client for the Meterline API: send usage events, read usage, costs and balances.

    client = MeterlineClient("https://billing.example.com", token)
    summary = client.send_events(events)          # any number; sent 5,000 per request

    # With a customer API key (``ml_live_…``) the account is the key's own: no account_id needed.
    customer = MeterlineClient("https://billing.example.com", "ml_live_…")
    page = customer.usage(start="2026-11-01T00:00:00Z", end="2026-12-01T00:00:00Z", group_by=["model"])
    for page in customer.costs_pages(start=..., end=..., bucket="1d"):   # follows next_page
        ...
    customer.balance()

    # With the server token, the gateway asks before serving a request (caps stack: account,
    # project, meter, API key; day, week or month):
    answer = client.authorize("acc_x", project="web", api_key="ci-runner", estimated_cost="0.0125")
    answer["allowed"], answer["reason"], answer["limit"]   # limit: the binding cap, or None

    # Caps and alert rules (the server token for any account; a key with spend:write for its own).
    cap = client.create_cap("acc_x", scope="project", value="copilot", mode="hard", limit="500")
    client.update_cap("acc_x", cap["id"], limit="750")
    client.list_caps("acc_x")["caps"]          # with spent, remaining, resets_at; "as_of" beside

Creating a cap or rule sends an ``Idempotency-Key`` made once per call and resent on every
retry, so a retried create makes one cap, never two.

    # The portal inside your own product: a single-use link for one account, for an iframe.
    session = client.create_portal_session("acc_123", role="billing", email="ana@customer.example")
    client.end_portal_session(session["id"])

Sending is idempotent: each event carries its own ``event_id``, so a retried request
(after a timeout, a dropped connection or a 5xx) can only add what is missing; events
already stored come back as duplicates, never twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

MAX_EVENTS_PER_REQUEST = 5_000
RETRY_STATUSES = frozenset({429, 502, 503, 504, 500})
MAX_RETRY_AFTER_S = 60.0  # the longest a 429's Retry-After is waited for before trying again
MAX_PAGES = 10_000  # a limit on everything: pages one *_pages call follows


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

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = self._send(method, path, json=json, params=params, headers=headers)
        return response.json() if response.content else {}

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The answer to one call, retried on transport errors and retryable statuses; an error
        answer raises ``MeterlineAPIError``."""
        for attempt in range(1, self._max_attempts + 1):
            wait = min(self._backoff_s * 2 ** (attempt - 1), 10.0)
            try:
                response = self._http.request(
                    method, path, json=json, params=list(params or ()), headers=dict(headers or {})
                )
            except httpx.TransportError:
                if attempt == self._max_attempts:
                    raise
            else:
                if response.status_code == 429:  # the key's rate: wait as long as the server says
                    retry_after = response.headers.get("retry-after", "")
                    if retry_after.isdigit():
                        wait = min(max(wait, float(retry_after)), MAX_RETRY_AFTER_S)
                if response.status_code not in RETRY_STATUSES or attempt == self._max_attempts:
                    if response.status_code >= 400:
                        try:
                            body = response.json() if response.content else {}
                        except ValueError:
                            body = {"error": {"code": "bad_response", "message": response.text[:200]}}
                        raise MeterlineAPIError(response.status_code, body.get("error", {}))
                    return response
            time.sleep(wait)
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

    def authorize(
        self,
        account_id: str,
        *,
        project: str | None = None,
        meter: str | None = None,
        api_key: str | None = None,
        estimated_cost: str | int | None = None,
    ) -> dict[str, Any]:
        """``POST /api/v1/authorize`` (server token): may the account spend now? ``estimated_cost``
        is credits as a decimal string or an integer of nano-credits. The answer holds ``allowed``,
        ``reason``, ``remaining``, ``resets_at``, ``limit`` (the binding hard cap: ``cap_id``,
        ``scope``, ``value``, ``period``, ``limit``, ``spent``, ``resets_at``; None when no hard cap
        applies) and ``as_of``."""
        body: dict[str, Any] = {"account_id": account_id}
        for name, value in (
            ("project", project),
            ("meter", meter),
            ("api_key", api_key),
            ("estimated_cost", estimated_cost),
        ):
            if value is not None:
                body[name] = value
        return self._request("POST", "/api/v1/authorize", json=body)

    def accounts(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/api/v1/accounts")["accounts"])

    def create_portal_session(
        self,
        account_id: str,
        *,
        role: str = "viewer",
        email: str | None = None,
        pages: Sequence[str] | None = None,
        ttl_seconds: int | None = None,
        return_url: str | None = None,
    ) -> dict[str, Any]:
        """A portal session for ``account_id``: ``{"id", "url", "expires_at"}`` (server token only).

        ``url`` starts one browser session, once: put it in an iframe of your product (the portal
        allows framing by the origins in ``METERLINE_EMBED_ORIGINS``). Not retried on its own
        behalf beyond the client's transport retries: a retried mint makes another session, and
        only the link the browser opens is ever used.
        """
        body: dict[str, Any] = {"account_id": account_id, "role": role}
        optional = {
            "email": email,
            "pages": list(pages) if pages is not None else None,
            "ttl_seconds": ttl_seconds,
            "return_url": return_url,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        return self._request("POST", "/api/v1/portal-sessions", json=body)

    def end_portal_session(self, session_id: str) -> dict[str, Any]:
        """End a portal session now: ``{"id", "ended_at"}``; its open pages stop on their next run."""
        return self._request("DELETE", f"/api/v1/portal-sessions/{quote(session_id, safe='')}")

    def meters(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/api/v1/meters")["meters"])

    def balance(self, account_id: str | None = None) -> dict[str, Any]:
        """Balance, open grants and as-of time; a customer key's own account when ``account_id`` is None."""
        params = [] if account_id is None else [("account_id", account_id)]  # None: a customer key's own
        return self._request("GET", "/api/v1/balance", params=params)

    def usage(
        self,
        *,
        start: datetime | str,
        end: datetime | str,
        account_id: str | None = None,
        bucket: str = "1d",
        group_by: Iterable[str] = (),
        limit: int | None = None,
        page: str | None = None,
    ) -> dict[str, Any]:
        """One page of ``GET /api/v1/usage``: quantities per meter in UTC buckets ``[start, end)``."""
        params = _report_params(start, end, account_id, bucket, group_by, limit, page)
        return self._request("GET", "/api/v1/usage", params=params)

    def costs(
        self,
        *,
        start: datetime | str,
        end: datetime | str,
        account_id: str | None = None,
        bucket: str = "1d",
        group_by: Iterable[str] = (),
        limit: int | None = None,
        page: str | None = None,
    ) -> dict[str, Any]:
        """One page of ``GET /api/v1/costs``: amounts in UTC buckets ``[start, end)``."""
        params = _report_params(start, end, account_id, bucket, group_by, limit, page)
        return self._request("GET", "/api/v1/costs", params=params)

    def focus_csv(self, month: str, *, account_id: str | None = None) -> bytes:
        """``GET /api/v1/costs?format=focus``: the account's calendar month (UTC, "YYYY-MM") as a
        FOCUS cost CSV (docs/focus.md)."""
        params = [("format", "focus"), ("month", month)]
        if account_id is not None:
            params.append(("account_id", account_id))
        return self._send("GET", "/api/v1/costs", params=params).content

    def usage_pages(self, **query: Any) -> Iterator[dict[str, Any]]:
        """Every page of ``usage(**query)``, following ``next_page``."""
        return self._pages(self.usage, query)

    def costs_pages(self, **query: Any) -> Iterator[dict[str, Any]]:
        """Every page of ``costs(**query)``, following ``next_page``."""
        return self._pages(self.costs, query)

    # --- Caps and alert rules (``/api/v1/accounts/{account_id}/caps``, ``/alert-rules``) -----------

    def list_caps(self, account_id: str) -> dict[str, Any]:
        """The account's caps, each with this period's ``spent``, ``remaining`` and ``resets_at``,
        and the ``as_of`` time of those figures."""
        return self._request("GET", _account_path(account_id, "caps"))

    def create_cap(
        self,
        account_id: str,
        *,
        scope: str,
        mode: str,
        limit: str | Decimal | int,
        value: str | None = None,
        period: str = "month",
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Add a cap (``limit`` in credits); retried safely with one ``Idempotency-Key`` (made here
        unless given). A cap on the same scope, value and period already: ``MeterlineAPIError`` 409."""
        body = {"scope": scope, "value": value, "period": period, "mode": mode, "limit": _credits(limit)}
        return self._create(_account_path(account_id, "caps"), body, idempotency_key)

    def update_cap(
        self,
        account_id: str,
        cap_id: int,
        *,
        limit: str | Decimal | int | None = None,
        mode: str | None = None,
        period: str | None = None,
    ) -> dict[str, Any]:
        """Change a cap's limit, mode or period (None: unchanged)."""
        body: dict[str, Any] = {
            "limit": None if limit is None else _credits(limit),
            "mode": mode,
            "period": period,
        }
        given = {name: value for name, value in body.items() if value is not None}
        return self._request("PATCH", _account_path(account_id, "caps", cap_id), json=given)

    def delete_cap(self, account_id: str, cap_id: int) -> None:
        self._request("DELETE", _account_path(account_id, "caps", cap_id))

    def list_alert_rules(self, account_id: str) -> list[dict[str, Any]]:
        return list(self._request("GET", _account_path(account_id, "alert-rules"))["alert_rules"])

    def create_alert_rule(
        self, account_id: str, *, name: str, kind: str, idempotency_key: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Add a rule; ``fields`` are the body's other fields (``scope``, ``value``, ``threshold``,
        ``budget``, ``percent``, ``days``, ``factor``, ``channels``, ``paused``; README)."""
        body = {"name": name, "kind": kind, **_money_fields(fields)}
        return self._create(_account_path(account_id, "alert-rules"), body, idempotency_key)

    def update_alert_rule(self, account_id: str, rule_id: int, **changes: Any) -> dict[str, Any]:
        """Change any of a rule's fields (``paused=True`` pauses it)."""
        path = _account_path(account_id, "alert-rules", rule_id)
        return self._request("PATCH", path, json=_money_fields(changes))

    def delete_alert_rule(self, account_id: str, rule_id: int) -> None:
        self._request("DELETE", _account_path(account_id, "alert-rules", rule_id))

    def _create(self, path: str, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        key = idempotency_key or str(uuid.uuid4())  # one per intended create, resent on every retry
        return self._request("POST", path, json=body, headers={"Idempotency-Key": key})

    def _pages(self, read: Any, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page: str | None = query.pop("page", None)
        for _ in range(MAX_PAGES):
            answer = read(**query, page=page)
            yield answer
            page = answer.get("next_page")
            if not page:
                return
        raise RuntimeError(f"more than {MAX_PAGES:,} pages: ask for a shorter range or larger buckets")


def _account_path(account_id: str, collection: str, item_id: int | None = None) -> str:
    path = f"/api/v1/accounts/{quote(account_id, safe='')}/{collection}"
    return path if item_id is None else f"{path}/{int(item_id)}"


def _credits(value: str | Decimal | int) -> str:
    """Credits as the API takes them: a decimal string (a float is refused, never rounded)."""
    if isinstance(value, (bool, float)) or not isinstance(value, (str, Decimal, int)):
        raise TypeError("give credits as a str, Decimal or int, not a float")
    return value if isinstance(value, str) else format(value, "f")


def _money_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _credits(value) if name in ("threshold", "budget") and value is not None else value
        for name, value in fields.items()
    }


def _moment(value: datetime | str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("give start and end as aware datetimes (or RFC 3339 strings with an offset)")
        return value.isoformat()
    return value


def _report_params(
    start: datetime | str,
    end: datetime | str,
    account_id: str | None,
    bucket: str,
    group_by: Iterable[str],
    limit: int | None,
    page: str | None,
) -> list[tuple[str, str]]:
    params = [("start", _moment(start)), ("end", _moment(end)), ("bucket", bucket)]
    params += [("group_by", name) for name in group_by]
    if account_id is not None:
        params.append(("account_id", account_id))
    if limit is not None:
        params.append(("limit", str(limit)))
    if page:
        params.append(("page", page))
    return params
