"""The portal-session operations of the OpenAPI document (``core.api.openapi`` merges them)."""

from __future__ import annotations

from typing import Any

from core.db.models import PORTAL_PAGES, PORTAL_ROLES
from core.portal_sessions import DEFAULT_TTL_S, MAX_EMAIL, MAX_RETURN_URL, MAX_TTL_S, MIN_TTL_S

_SCHEMAS = "#/components/schemas/"
_RESPONSES = "#/components/responses/"
MAX_PORTAL_BODY_TEXT = "16 KiB"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMAS + name}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def portal_schemas() -> dict[str, Any]:
    return {
        "PortalSessionRequest": {
            "type": "object",
            "required": ["account_id", "role"],
            "properties": {
                "account_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "email": {
                    "type": ["string", "null"],
                    "maxLength": MAX_EMAIL,
                    "description": "The person, for the audit trail. When they are a member of the "
                    "account, `role` may not be more than their membership role.",
                },
                "role": {"type": "string", "enum": list(PORTAL_ROLES)},
                "pages": {
                    "type": ["array", "null"],
                    "items": {"type": "string", "enum": list(PORTAL_PAGES)},
                    "minItems": 1,
                    "description": "The pages the session may open (default: all of them).",
                },
                "ttl_seconds": {
                    "type": ["integer", "null"],
                    "minimum": MIN_TTL_S,
                    "maximum": MAX_TTL_S,
                    "default": DEFAULT_TTL_S,
                },
                "return_url": {
                    "type": ["string", "null"],
                    "maxLength": MAX_RETURN_URL,
                    "description": "An http(s) address the 'ended' page offers as the way back.",
                },
            },
        },
        "PortalSession": {
            "type": "object",
            "required": ["id", "url", "expires_at"],
            "properties": {
                "id": {"type": "string", "description": "End the session with DELETE .../{id}."},
                "url": {
                    "type": "string",
                    "description": "The start link, for an iframe: it starts one browser session, once.",
                },
                "expires_at": {"type": "string", "format": "date-time"},
            },
        },
        "PortalSessionEnded": {
            "type": "object",
            "required": ["id", "ended_at"],
            "properties": {"id": {"type": "string"}, "ended_at": {"type": "string", "format": "date-time"}},
        },
    }


def portal_paths(read_errors: dict[str, Any]) -> dict[str, Any]:
    return {
        "/api/v1/portal-sessions": {
            "post": {
                "operationId": "createPortalSession",
                "tags": ["portal"],
                "summary": "A single-use link into the portal for one account (to put in an iframe)",
                "description": (
                    "The link starts one browser session on its first open; a second open is refused. "
                    "The session sees only `account_id` and `pages`, acts with `role` (never more than "
                    "the person's membership role, when `email` is a member), and lasts until "
                    "`expires_at` at most. Every write it makes is audited with its id and `email`. "
                    "Framing is allowed only for the origins in `METERLINE_EMBED_ORIGINS`. Body up to "
                    f"{MAX_PORTAL_BODY_TEXT}."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("PortalSessionRequest")}},
                },
                "responses": {
                    "201": {
                        "description": "The session and its start link.",
                        "content": {
                            "application/json": {
                                "schema": _ref("PortalSession"),
                                "example": {
                                    "id": "ps_3kTq9V0bXc2LmN8pQrS1",
                                    "url": "https://billing.example.com/portal/start?token=…",
                                    "expires_at": "2026-12-07T21:00:00Z",
                                },
                            }
                        },
                    },
                    "400": {"$ref": _RESPONSES + "BadJson"},
                    "404": _error("No account has this id (code `not_found`, field `account_id`)."),
                    "413": _error(f"The body is over {MAX_PORTAL_BODY_TEXT} (code `too_large`)."),
                    "422": _error(
                        "A field is missing or wrong; `field` names it (codes `not_an_object`, "
                        "`unknown_field`, `required`, `not_a_string`, `invalid_email`, `invalid_role`, "
                        "`above_member_role`, `not_a_list`, `empty`, `unknown_page`, `not_an_integer`, "
                        "`out_of_range`, `invalid_url`)."
                    ),
                    **read_errors,
                },
            }
        },
        "/api/v1/portal-sessions/{session_id}": {
            "delete": {
                "operationId": "endPortalSession",
                "tags": ["portal"],
                "summary": "End a portal session now (its open pages stop on their next run)",
                "parameters": [
                    {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "Ended (ending it again answers the same).",
                        "content": {"application/json": {"schema": _ref("PortalSessionEnded")}},
                    },
                    "404": _error("No portal session has this id (code `not_found`, field `id`)."),
                    **read_errors,
                },
            }
        },
    }
