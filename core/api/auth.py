"""The server token check: ``Authorization: Bearer <token>``, compared in constant time."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from core.api.errors import RequestError


def require_token(request: Request, expected: str) -> None:
    """Raise 401 unless the request carries the server token."""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise RequestError(401, "unauthorized", "send the server token as 'Authorization: Bearer <token>'")
    if not expected or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise RequestError(401, "unauthorized", "the token is not valid")
