"""``POST /api/v1/authorize``: the gateway asks before serving a request (server token, JSON).

Body: ``{"account_id": "acc_x", "project": "copilot", "meter": "input_tokens", "api_key":
"ci-runner", "estimated_cost": "0.0125"}``; only ``account_id`` is required. ``estimated_cost``
is either a decimal **string of credits** (1 credit = $1, up to 9 decimals) or an **integer of
nano-credits** (10^9 per credit); a JSON number with a fraction is refused (422). Answer:
``{"allowed", "reason", "remaining", "remaining_nanos", "resets_at", "limit", "as_of"}``:
``limit`` is the binding hard cap (the applicable one with the least room; null when none
applies) as ``{cap_id, scope, value, period, limit, spent, resets_at}``, given on allowed
answers too; ``resets_at`` is its reset (null when no hard cap applies); ``as_of`` is when the
snapshot behind the answer was read. A fresh snapshot
answers without touching the database or the thread pool. An allowed request reserves its
estimate (a default without one) in this process until a snapshot shows its spend
(``core.spend.reservations``). A refusal is counted in memory and written in bulk by a
background thread (``Authorizer.note_refusal``; the support console shows them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.api.body import read_body
from core.api.errors import APIJSONResponse, RequestError
from core.errors import NotFound
from core.metering.exact_json import NotJSON, loads_exact
from core.money import NANOS_PER_CREDIT, credits_to_nanos
from core.spend.authorize import BindingCap, Decision
from core.spend.runtime import SpendRuntime

MAX_AUTHORIZE_BODY_BYTES = 16 * 1024
MAX_COST_NANOS = 10**18
MAX_ACCOUNT_ID = 64
MAX_PROJECT = 128
MAX_METER = 64
MAX_API_KEY = 128

Handler = Callable[[Request], Awaitable[Response]]


def _text(document: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str | None:
    value = document.get(name)
    if value is None:
        if required:
            raise RequestError(422, "required", f"the body needs {name!r}", name)
        return None
    if not isinstance(value, str):
        raise RequestError(422, "not_a_string", f"{name!r} must be a string", name)
    if not value or len(value) > limit:
        raise RequestError(
            422, "too_long" if value else "required", f"{name!r} must be 1 to {limit} characters", name
        )
    if "\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise RequestError(422, "invalid_character", f"{name!r} holds a NUL or a lone surrogate", name)
    return value


def parse_cost(value: object) -> int:
    """``estimated_cost`` in nano-credits: a decimal string of credits, or an integer of nanos."""
    field = "estimated_cost"
    if value is None:
        return 0
    if isinstance(value, bool):
        raise RequestError(
            422, "not_a_number", "estimated_cost must be a decimal string or an integer", field
        )
    if isinstance(value, int):
        nanos = value
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40 or not all(ch.isdigit() or ch in ".-+" for ch in text):
            raise RequestError(
                422, "not_a_number", "estimated_cost must be credits as a decimal string", field
            )
        try:
            nanos = credits_to_nanos(text, field=field)
        except ValueError as error:
            raise RequestError(422, "not_exact", str(error), field) from None
    elif isinstance(value, Decimal):
        raise RequestError(
            422,
            "not_an_integer",
            'a JSON number is nano-credits and must be whole; send credits as a string ("0.0125")',
            field,
        )
    else:
        raise RequestError(
            422, "not_a_number", "estimated_cost must be a decimal string or an integer", field
        )
    if nanos < 0:
        raise RequestError(422, "must_be_non_negative", "estimated_cost cannot be negative", field)
    if nanos > MAX_COST_NANOS:
        raise RequestError(422, "too_large", "estimated_cost is over 10^18 nano-credits", field)
    return nanos


@lru_cache(maxsize=4096)  # the hot path: a snapshot's as_of and its caps' resets repeat
def _instant_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else _instant_text(moment)


def _credits(nanos: int) -> str:
    """``format(nanos_to_credits(nanos), "f")`` ("12.500000000"), in integers: it runs per answer."""
    whole, fraction = divmod(abs(nanos), NANOS_PER_CREDIT)
    return f"{'-' if nanos < 0 else ''}{whole}.{fraction:09d}"


def limit_answer(binding: BindingCap | None) -> dict[str, object] | None:
    """The binding cap as the answer names it (``spent`` includes what this process holds)."""
    if binding is None:
        return None
    cap = binding.cap
    return {
        "cap_id": cap.cap_id,
        "scope": cap.scope,
        "value": None if cap.scope == "account" else cap.scope_value,
        "period": cap.period,
        "limit": _credits(cap.limit_nanos),
        "spent": _credits(binding.spent_nanos),
        "resets_at": _instant(cap.resets_at),
    }


def answer(decision: Decision) -> dict[str, object]:
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "remaining": _credits(decision.remaining_nanos),
        "remaining_nanos": decision.remaining_nanos,
        "resets_at": _instant(decision.resets_at),
        "limit": limit_answer(decision.limit),
        "as_of": _instant(decision.as_of),
    }


def authorize_route(runtime: SpendRuntime, guarded: Callable[[Handler], Handler]) -> Route:
    """The route, wrapped by the API's ``guarded`` (token check, error answers)."""
    authorizer = runtime.authorizer

    async def authorize(request: Request) -> Response:
        body = await read_body(request, limit=MAX_AUTHORIZE_BODY_BYTES)
        if not body.strip():
            raise RequestError(400, "bad_json", 'the body is empty; send {"account_id": ...}')
        try:
            document = loads_exact(body)
        except NotJSON as error:
            raise RequestError(400, "bad_json", f"the body is not valid JSON: {error}") from None
        if not isinstance(document, dict):
            raise RequestError(422, "not_an_object", 'the body must be a JSON object {"account_id": ...}')
        account_id = _text(document, "account_id", MAX_ACCOUNT_ID, required=True)
        assert account_id is not None
        project = _text(document, "project", MAX_PROJECT)
        meter = _text(document, "meter", MAX_METER)
        api_key = _text(document, "api_key", MAX_API_KEY)
        raw_cost = document.get("estimated_cost")
        cost = None if raw_cost is None else parse_cost(raw_cost)  # None: reserve the default estimate
        if meter is not None:
            known = authorizer.known_meter(meter)
            if known is None:
                known = meter in await run_in_threadpool(authorizer.load_meters)
            if not known:
                raise RequestError(422, "unknown_meter", f"there is no meter {meter!r}", "meter")
        # Check and reserve under the authorizer's lock, on the event loop: no I/O when fresh.
        decision = authorizer.authorize(
            account_id, project=project, meter=meter, api_key=api_key, cost_nanos=cost
        )
        if decision is None and await run_in_threadpool(authorizer.load, account_id) is not None:
            decision = authorizer.authorize(
                account_id, project=project, meter=meter, api_key=api_key, cost_nanos=cost, just_loaded=True
            )
        if decision is None:
            raise NotFound(f"account {account_id!r} does not exist", field="account_id")
        if not decision.allowed:  # counted in memory; the authorizer's thread writes the counts
            authorizer.note_refusal(account_id, decision, project=project, meter=meter, cost_nanos=cost or 0)
        return APIJSONResponse(answer(decision))

    return Route("/api/v1/authorize", guarded(authorize), methods=["POST"])
