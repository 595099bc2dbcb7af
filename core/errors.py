"""Errors the core raises on purpose; each carries a machine code and, where one is
to blame, the input field. Pages show ``message``; the HTTP API returns
``{"error": {"code", "message", "field"}}``.

    BillingError
     ├── ValidationError      bad input (HTTP 400/422): names the field
     ├── NotFound             an id that does not exist (404)
     ├── PermissionDenied     not a member, or the role does not allow it (403)
     ├── Conflict             an idempotency key reused with other content (409)
     └── InvariantViolation   the ledger disagrees with itself: a bug, never user input
"""

from __future__ import annotations


class BillingError(Exception):
    """Base of every deliberate core error."""

    http_status = 400
    default_code = "billing_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}


class ValidationError(BillingError):
    http_status = 422
    default_code = "invalid"


class NotFound(BillingError):
    http_status = 404
    default_code = "not_found"


class PermissionDenied(BillingError):
    http_status = 403
    default_code = "forbidden"


class Conflict(BillingError):
    http_status = 409
    default_code = "conflict"


class InvariantViolation(BillingError):
    http_status = 500
    default_code = "invariant_violation"
