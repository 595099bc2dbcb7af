"""Read and parse a request body within limits (checked while reading, not after)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from core.api.errors import RequestError
from core.metering.exact_json import NotJSON, loads_usage
from core.sizes import format_bytes

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_EVENTS_PER_REQUEST = 5_000


async def read_body(request: Request, limit: int = MAX_BODY_BYTES, *, advice: str = "") -> bytes:
    """The body, or 413 as soon as it (or its declared length) passes ``limit`` bytes.

    The 413's message states the limit ("the body is over 16 KiB"), then ``advice`` if any.
    """
    too_large = f"the body is over {format_bytes(limit)}" + (f"; {advice}" if advice else "")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, "too_large", too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "too_large", too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_events(body: bytes, max_events: int = MAX_EVENTS_PER_REQUEST) -> list[Any]:
    """The ``events`` list of a body ``{"events": [...]}``; 400/422 with the reason otherwise."""
    if not body.strip():
        raise RequestError(400, "bad_json", 'the body is empty; send {"events": [...]}')
    try:
        document = loads_usage(body)  # numbers stay exact: int or Decimal, never float
    except NotJSON as exc:
        raise RequestError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RequestError(422, "not_an_object", 'the body must be a JSON object {"events": [...]}')
    if "events" not in document:
        raise RequestError(422, "required", 'the body needs an "events" list', "events")
    events = document["events"]
    if not isinstance(events, list):
        raise RequestError(422, "not_a_list", '"events" must be a list', "events")
    if len(events) > max_events:
        raise RequestError(
            422, "too_many_events", f"{len(events):,} events; at most {max_events:,} per request", "events"
        )
    return events
