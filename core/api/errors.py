"""JSON error answers: ``{"error": {"code", "message", "field"}}`` with the right status."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

from core.errors import BillingError


class APIJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: any string, even one holding a lone surrogate taken from a
    hostile request, renders as valid JSON instead of failing to encode (a 500)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return APIJSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status)


def billing_error_response(error: BillingError) -> JSONResponse:
    return APIJSONResponse({"error": error.to_dict()}, status_code=error.http_status)


class RequestError(Exception):
    """A request the API refuses as a whole (bad body, too large, no token)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}
        response = error_response(self.status, self.code, self.message, self.field)
        response.headers.update({**headers, **self.headers})
        return response
