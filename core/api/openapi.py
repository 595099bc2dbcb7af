"""The HTTP API as an OpenAPI 3.1 document, served at ``GET /api/v1/openapi.json``.

Built as a plain dict from the same constants the code enforces (body and batch limits,
string lengths, quantity and amount ceilings), so the document cannot drift from them;
``tests/integration/test_openapi.py`` checks it against the routes and real responses.
Schemas are JSON Schema 2020-12, the dialect of OpenAPI 3.1.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from core.api.body import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from core.api.openapi_customer import (
    customer_key_scheme,
    customer_paths,
    customer_responses,
    customer_schemas,
)
from core.api.openapi_portal import portal_paths, portal_schemas
from core.api.openapi_spend import spend_paths, spend_responses, spend_schemas
from core.db.models import GRANT_SOURCES, Account, Meter
from core.metering.settings import (
    DEFAULT_MAX_LATENESS_DAYS,
    MAX_BATCH_AMOUNT_NANOS,
    MAX_DIMENSION_KEY_LENGTH,
    MAX_DIMENSION_VALUE_LENGTH,
    MAX_DIMENSIONS,
    MAX_EVENT_AMOUNT_NANOS,
    MAX_EVENT_ID_LENGTH,
    MAX_FUTURE,
    MAX_QUANTITY,
    TOTAL_CEILING,
)
from core.money import NANOS_PER_CREDIT
from core.sizes import format_bytes

OPENAPI_VERSION = "3.1.0"
# Validation checks account ids and meter names against their columns' length.
MAX_ACCOUNT_ID_LENGTH = int(Account.__table__.c.id.type.length)
MAX_METER_NAME_LENGTH = int(Meter.__table__.c.name.type.length)

_SCHEMAS = "#/components/schemas/"
_RESPONSES = "#/components/responses/"
_DECIMAL_CREDITS_PATTERN = r"^-?[0-9]+\.[0-9]{9}$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMAS + name}


def _words(number: int) -> str:
    """``10**18`` as "10^18", ``4 * 10**18`` as "4 × 10^18", other numbers with separators."""
    text = str(number)
    digit, zeros = text.rstrip("0"), len(text) - len(text.rstrip("0"))
    if zeros < 6 or len(digit) != 1:
        return f"{number:,}"
    return f"10^{zeros}" if digit == "1" else f"{digit} × 10^{zeros}"


def _credits(nanos: int) -> str:
    return f"{nanos // NANOS_PER_CREDIT:,} credits"


def _package_version() -> str:
    try:
        return metadata.version("meterline")
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        return "0.0.0+unknown"


def _limits_text() -> str:
    return (
        f"Limits. A request carries at most {MAX_EVENTS_PER_REQUEST:,} events and "
        f"{format_bytes(MAX_BODY_BYTES)} (past that it is refused as a whole, 422 or 413). "
        "Per event, ceilings make overflow impossible; an event past one is rejected on its own, "
        "naming the field `quantity`, and the other events of the request are kept:\n\n"
        f"- the largest quantity of one event is {_words(MAX_QUANTITY)} units (code `too_large`);\n"
        f"- the largest rated amount of one event is {_words(MAX_EVENT_AMOUNT_NANOS)} nano-credits "
        f"= {_credits(MAX_EVENT_AMOUNT_NANOS)} (code `amount_too_large`);\n"
        "- the largest rated amount of one request for one account is "
        f"{_words(MAX_BATCH_AMOUNT_NANOS)} nano-credits = {_credits(MAX_BATCH_AMOUNT_NANOS)} "
        "(code `batch_amount_too_large` on the events past it);\n"
        "- every stored total (the hourly and daily usage of one account, meter and dimensions; "
        f"the balance) stays within ±{_words(TOTAL_CEILING)} ({TOTAL_CEILING:,} units or "
        "nano-credits): an event that would pass it is rejected with code `total_too_large`."
    )


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The body of every 4xx and 5xx answer.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "field"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Machine code, e.g. `bad_json`, `unauthorized`, `too_large`, "
                        "`too_many_events`, `not_found`, `unavailable`.",
                    },
                    "message": {"type": "string", "description": "What went wrong and what to do."},
                    "field": {
                        "type": ["string", "null"],
                        "description": "The input field to blame, when there is one.",
                    },
                },
            }
        },
    }


def _usage_event_schema() -> dict[str, Any]:
    future_hours = int(MAX_FUTURE.total_seconds() // 3600)
    return {
        "type": "object",
        "description": (
            "One usage event. `(account_id, event_id)` is the idempotency key: resending the same "
            "event is reported as a duplicate and counted once; the same id with other content is "
            "rejected with code `conflict`. An event that does not match this schema is rejected "
            "on its own (see `Rejection`); the valid events of the request are kept. Strings must "
            "not contain NUL or a lone surrogate (code `invalid_character`)."
        ),
        "required": ["event_id", "account_id", "meter", "quantity", "timestamp"],
        "properties": {
            "event_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_EVENT_ID_LENGTH,
                "description": "Made once by the sender per event and reused on every retry.",
            },
            "account_id": {"type": "string", "minLength": 1, "maxLength": MAX_ACCOUNT_ID_LENGTH},
            "meter": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_METER_NAME_LENGTH,
                "description": "A meter name from `GET /api/v1/meters`.",
            },
            "quantity": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_QUANTITY,
                "description": (
                    f"Units used, a whole JSON number from 0 to {_words(MAX_QUANTITY)} "
                    "(a fraction is rejected with `not_an_integer`, a larger number with `too_large`). "
                    f"The rated amount must also stay within {_words(MAX_EVENT_AMOUNT_NANOS)} "
                    f"nano-credits ({_credits(MAX_EVENT_AMOUNT_NANOS)}) per event."
                ),
                "examples": [1200],
            },
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": (
                    "When the usage happened: RFC 3339 with a UTC offset (`Z` or `+02:00`). At most "
                    f"{future_hours} hours in the future and no older than the lateness window "
                    f"(`METERLINE_MAX_LATENESS_DAYS`, default {DEFAULT_MAX_LATENESS_DAYS} days). Late "
                    "events are rated at the prices in force at their own timestamp."
                ),
                "examples": ["2026-11-22T10:15:00Z"],
            },
            "dimensions": {
                "type": "object",
                "maxProperties": MAX_DIMENSIONS,
                "propertyNames": {"maxLength": MAX_DIMENSION_KEY_LENGTH},
                "additionalProperties": {"type": "string", "maxLength": MAX_DIMENSION_VALUE_LENGTH},
                "description": (
                    f"Up to {MAX_DIMENSIONS} string tags (names up to {MAX_DIMENSION_KEY_LENGTH} "
                    f"characters, values up to {MAX_DIMENSION_VALUE_LENGTH}). `model`, `project` and "
                    "`api_key` are the ones usage is grouped by; other tags are kept with the event."
                ),
                "examples": [{"model": "atlas-large", "project": "copilot", "api_key": "key_prod_7f3a"}],
            },
        },
    }


def _rejection_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "Why the event at `index` was not accepted, with the field to blame and a code:\n\n"
            "- `event`: `not_an_object`\n"
            "- `event_id`: `required`, `not_a_string`, `too_long`, `invalid_character`, "
            "`conflict` (the id was received before with other content)\n"
            "- `account_id`: `required`, `not_a_string`, `too_long`, `invalid_character`, "
            "`unknown_account`\n"
            "- `meter`: `required`, `not_a_string`, `too_long`, `invalid_character`, `unknown_meter`\n"
            "- `quantity`: `required`, `not_a_number`, `not_an_integer` (a fraction), `not_exact`, "
            "`must_be_non_negative`, `too_large` (over the largest quantity), `amount_too_large` "
            "(the event's rated amount is over its ceiling), `batch_amount_too_large` (the "
            "request's rated amount for the account is over its ceiling), `total_too_large` (a "
            "stored total would pass its ceiling)\n"
            "- `timestamp`: `required`, `not_a_string`, `not_a_timestamp`, `missing_offset`, "
            "`out_of_range` (its UTC conversion leaves the calendar), `in_future`, `too_late`\n"
            "- `dimensions`: `not_an_object`, `too_many`, `too_long`, `invalid_character` (in a "
            "name); `dimensions.<name>`: "
            "`not_a_string`, `too_long`, `invalid_character`\n\n"
            "`invalid_character` means a NUL or a lone surrogate in a string. A rejected event must "
            "be fixed, not retried as is; treat an unknown code the same way."
        ),
        "required": ["index", "event_id", "field", "code", "message"],
        "properties": {
            "index": {"type": "integer", "minimum": 0, "description": "Position in `events`."},
            "event_id": {"type": ["string", "null"], "description": "Null when it was not a valid string."},
            "field": {"type": ["string", "null"]},
            "code": {"type": "string"},
            "message": {"type": "string"},
        },
    }


def _grant_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "An open grant (something left, not expired), in burn order.",
        "required": [
            "grant_id",
            "source",
            "description",
            "priority",
            "amount_nanos",
            "remaining_nanos",
            "remaining_credits",
            "expires_at",
        ],
        "properties": {
            "grant_id": {"type": "integer"},
            "source": {"type": "string", "enum": list(GRANT_SOURCES)},
            "description": {"type": "string"},
            "priority": {"type": "integer", "description": "Lower burns first."},
            "amount_nanos": {"type": "integer", "description": "Granted, in nano-credits."},
            "remaining_nanos": {"type": "integer", "description": "Left, in nano-credits."},
            "remaining_credits": {"$ref": _SCHEMAS + "DecimalCredits"},
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
        },
    }


def _balance_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "An account's balance and the grants it is made of. Money is an integer of nano-credits "
            f"({NANOS_PER_CREDIT:,} per credit; 1 credit = $1), with the exact decimal in credits "
            f"beside it. The balance stays within ±{_words(TOTAL_CEILING)} nano-credits."
        ),
        "required": ["account_id", "balance_nanos", "balance_credits", "deficit_nanos", "grants", "as_of"],
        "properties": {
            "account_id": {"type": "string"},
            "balance_nanos": {"type": "integer", "minimum": -TOTAL_CEILING, "maximum": TOTAL_CEILING},
            "balance_credits": {"$ref": _SCHEMAS + "DecimalCredits"},
            "deficit_nanos": {
                "type": "integer",
                "maximum": 0,
                "minimum": -TOTAL_CEILING,
                "description": "Zero or negative: usage no grant covered yet.",
            },
            "grants": {"type": "array", "items": _ref("Grant")},
            "as_of": {"type": "string", "format": "date-time"},
        },
    }


def _authorize_request_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "What the gateway asks before serving a request; only `account_id` is required.",
        "required": ["account_id"],
        "properties": {
            "account_id": {"type": "string", "minLength": 1, "maxLength": MAX_ACCOUNT_ID_LENGTH},
            "project": {
                "type": ["string", "null"],
                "maxLength": 128,
                "description": "The project the request is for: a hard cap on it applies. Without it "
                "no project's cap is consulted: the request is checked against the account's hard "
                "caps, the named meter's and the credits only.",
            },
            "meter": {
                "type": ["string", "null"],
                "maxLength": MAX_METER_NAME_LENGTH,
                "description": "The meter it will use (a known meter, else 422 `unknown_meter`): "
                "a hard cap on it applies.",
            },
            "api_key": {
                "type": ["string", "null"],
                "minLength": 1,
                "maxLength": 128,
                "description": "The API key the request is made with, named as usage carries it (the "
                "`api_key` dimension): a hard cap on that key applies. Without it no key's cap is "
                "consulted.",
            },
            "estimated_cost": {
                "description": (
                    "What the request is expected to cost: either credits as a **decimal string** "
                    '(`"0.0125"`, up to 9 decimals; 1 credit = $1) or an **integer of nano-credits** '
                    "(`12500000`). A JSON number with a fraction is refused (`not_an_integer`). "
                    "Compared with the room left under the hard caps and with the credits left, after "
                    "what this server process already reserved; once allowed, it is reserved in turn. "
                    "Without it the request is allowed while any room is left and reserves the "
                    "server's default estimate (`METERLINE_AUTHORIZE_DEFAULT_ESTIMATE`, 0.01 credits "
                    "unless set); an explicit 0 reserves nothing."
                ),
                "oneOf": [
                    {"type": "string", "pattern": r"^\s*\+?[0-9]*\.?[0-9]+\s*$"},
                    {"type": "integer", "minimum": 0, "maximum": 10**18},
                    {"type": "null"},
                ],
            },
        },
    }


def _authorize_answer_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "Allowed or not, and why. Caps stack: every hard cap that applies must pass (the account's "
            "always; a project's, a meter's or an API key's when the request names that value), each "
            "measured over its own period (day, week from Monday, or month, in the account's time "
            "zone). Reasons, checked in this order: `account_suspended` (the account is not active), "
            "`hard_cap_reached` (an applicable hard cap has no room for the estimated cost; `limit` "
            "names the one with the least room), `insufficient_credits` (the balance plus the "
            "account's overdraft allowance does not cover it; with no estimate: is zero or less). "
            "Answers come from a snapshot at most one second old (`as_of`); usage past a cap is "
            "still recorded."
        ),
        "required": ["allowed", "reason", "remaining", "remaining_nanos", "resets_at", "limit", "as_of"],
        "properties": {
            "allowed": {"type": "boolean"},
            "reason": {
                "type": ["string", "null"],
                "enum": [None, "hard_cap_reached", "insufficient_credits", "account_suspended"],
            },
            "remaining": {
                "$ref": _SCHEMAS + "DecimalCredits",
                "description": "Headroom in credits: the least of the caps' room and the credits left, "
                "less what this server process has reserved for requests it allowed.",
            },
            "remaining_nanos": {"type": "integer", "minimum": 0, "description": "The same, in nano-credits."},
            "resets_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "When the binding cap (`limit`) starts over: local midnight after its "
                "day, week or month in the account's time zone, in UTC. On an allowed answer too: the "
                "reset of the applicable cap with the least room. Null when no hard cap applies.",
            },
            "limit": {
                "oneOf": [{"type": "null"}, _ref("BindingCap")],
                "description": "The binding hard cap: of the caps that apply to this request, the one "
                "with the least room (a tie goes to the one that resets last). Given on allowed answers "
                "too, so a gateway can see what will stop it first; null when no hard cap applies. On "
                "`hard_cap_reached` it is the cap that refused.",
            },
            "as_of": {
                "type": "string",
                "format": "date-time",
                "description": "When the snapshot the answer was decided from was read (UTC).",
            },
        },
    }


def _binding_cap_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["cap_id", "scope", "value", "period", "limit", "spent", "resets_at"],
        "properties": {
            "cap_id": {"type": "integer"},
            "scope": {"type": "string", "enum": ["account", "project", "meter", "api_key"]},
            "value": {
                "type": ["string", "null"],
                "description": "The project, meter or API key capped; null for the account.",
            },
            "period": {
                "type": "string",
                "enum": ["day", "week", "month"],
                "description": "The cap's period in the account's time zone (a week starts on Monday).",
            },
            "limit": {"$ref": _SCHEMAS + "DecimalCredits", "description": "The cap, in credits."},
            "spent": {
                "$ref": _SCHEMAS + "DecimalCredits",
                "description": "Spent in its scope this period, plus what this server process holds "
                "for requests it allowed that the snapshot does not show yet (credits).",
            },
            "resets_at": {"type": "string", "format": "date-time", "description": "When it starts over."},
        },
    }


def _schemas() -> dict[str, Any]:
    return {
        "Error": _error_schema(),
        "UsageEvent": _usage_event_schema(),
        "IngestRequest": {
            "type": "object",
            "required": ["events"],
            "properties": {
                "events": {"type": "array", "maxItems": MAX_EVENTS_PER_REQUEST, "items": _ref("UsageEvent")}
            },
        },
        "Rejection": _rejection_schema(),
        "IngestResult": {
            "type": "object",
            "description": "What happened to each event of the request; the valid events are kept.",
            "required": ["batch_id", "accepted", "duplicates", "rejected"],
            "properties": {
                "batch_id": {"type": ["integer", "null"], "description": "Null when nothing was accepted."},
                "accepted": {"type": "integer", "minimum": 0},
                "duplicates": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Event ids already received with the same content (counted once).",
                },
                "rejected": {"type": "array", "items": _ref("Rejection")},
            },
        },
        "Account": {
            "type": "object",
            "required": ["id", "name", "status"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "status": {"type": "string", "description": "`active`, `suspended` or `closed`."},
            },
        },
        "AccountList": {
            "type": "object",
            "required": ["accounts"],
            "properties": {"accounts": {"type": "array", "items": _ref("Account")}},
        },
        "Meter": {
            "type": "object",
            "required": ["name", "unit", "dimensions"],
            "properties": {
                "name": {"type": "string"},
                "unit": {"type": "string", "description": "Singular, e.g. `token`."},
                "dimensions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "MeterList": {
            "type": "object",
            "required": ["meters"],
            "properties": {"meters": {"type": "array", "items": _ref("Meter")}},
        },
        "DecimalCredits": {
            "type": "string",
            "pattern": _DECIMAL_CREDITS_PATTERN,
            "description": "Exact credits as a decimal string with 9 places, e.g. `104.000000000`.",
        },
        "Grant": _grant_schema(),
        "Balance": _balance_schema(),
        "AuthorizeRequest": _authorize_request_schema(),
        "AuthorizeAnswer": _authorize_answer_schema(),
        "BindingCap": _binding_cap_schema(),
        **customer_schemas(),
        **spend_schemas(),
        **portal_schemas(),
    }


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _responses() -> dict[str, Any]:
    unauthorized = _error("No or wrong token (code `unauthorized`).")
    unauthorized["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`."}}
    return {
        "BadJson": _error("The body is empty or not JSON (code `bad_json`)."),
        "Unauthorized": unauthorized,
        "NotFound": _error("No such account (code `not_found`, field `account_id`)."),
        "TooLarge": _error(
            f"The body is over {format_bytes(MAX_BODY_BYTES)} (code `too_large`); send smaller batches."
        ),
        "Unprocessable": _error(
            f'The body is not `{{"events": [...]}}` or has more than {MAX_EVENTS_PER_REQUEST:,} events '
            "(codes `not_an_object`, `required`, `not_a_list`, `too_many_events`, field `events`)."
        ),
        "Internal": _error("An unexpected server error (code `internal`); nothing was stored."),
        "Unavailable": _error(
            "The database is busy or unavailable (code `unavailable`); retry shortly, nothing was stored."
        ),
        **customer_responses(),
        **spend_responses(),
    }


def _json_ok(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _read_errors() -> dict[str, Any]:
    return {
        "401": {"$ref": _RESPONSES + "Unauthorized"},
        "403": {"$ref": _RESPONSES + "Forbidden"},
        "500": {"$ref": _RESPONSES + "Internal"},
        "503": {"$ref": _RESPONSES + "Unavailable"},
    }


def _paths() -> dict[str, Any]:
    return {
        "/api/v1/events": {
            "post": {
                "operationId": "ingestEvents",
                "tags": ["usage"],
                "summary": f"Send up to {MAX_EVENTS_PER_REQUEST:,} usage events",
                "description": (
                    "200 whenever the request itself was valid and the batch was processed, even when "
                    "some or all events were rejected: the body says, per event, what happened. Retry "
                    "only on a network error or a 5xx (the batch is wholly in or wholly out, and "
                    "resending the same event ids is safe); fix rejected events instead of retrying "
                    "them.\n\n" + _limits_text()
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("IngestRequest")}},
                },
                "responses": {
                    "200": _json_ok("The batch was processed.", "IngestResult"),
                    "400": {"$ref": _RESPONSES + "BadJson"},
                    "413": {"$ref": _RESPONSES + "TooLarge"},
                    "422": {"$ref": _RESPONSES + "Unprocessable"},
                    **_read_errors(),
                },
            }
        },
        "/api/v1/accounts": {
            "get": {
                "operationId": "listAccounts",
                "tags": ["accounts"],
                "summary": "Id, name and status of every account",
                "responses": {"200": _json_ok("Every account.", "AccountList"), **_read_errors()},
            }
        },
        "/api/v1/meters": {
            "get": {
                "operationId": "listMeters",
                "tags": ["meters"],
                "summary": "Name, unit and dimensions of every meter",
                "responses": {"200": _json_ok("Every meter, by name.", "MeterList"), **_read_errors()},
            }
        },
        "/api/v1/accounts/{account_id}/balance": {
            "get": {
                "operationId": "getBalance",
                "tags": ["accounts"],
                "summary": "An account's balance, open grants and as-of time",
                "parameters": [
                    {
                        "name": "account_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": MAX_ACCOUNT_ID_LENGTH},
                    }
                ],
                "responses": {
                    "200": _json_ok("The balance now.", "Balance"),
                    "404": {"$ref": _RESPONSES + "NotFound"},
                    **_read_errors(),
                },
            }
        },
        "/api/v1/authorize": {
            "post": {
                "operationId": "authorize",
                "tags": ["spend"],
                "summary": "May this account spend now? (for the gateway, before serving a request)",
                "description": (
                    "Fast: answered from an in-process snapshot refreshed within a second, no writes. "
                    "Body up to 16 KiB. Checked against the account's status, its hard account caps "
                    "and its credits; a project's hard cap only when `project` names it, a meter's only "
                    "when `meter` names it, an API key's only when `api_key` names it (a request "
                    "without `project` is held to no project's cap, one without `api_key` to no key's). "
                    "Caps stack: every one that applies must pass, each over its own day, week or month. "
                    "Each allowed request reserves its estimate in the server process until a snapshot "
                    "read `METERLINE_AUTHORIZE_INGESTION_LAG_S` (5 s) later shows its spend, so one "
                    "process allows at most the headroom plus one estimate past a hard cap, and N "
                    "processes N × (headroom + one estimate), plus the estimates of requests whose "
                    "usage arrives later than that lag (README, The HTTP API)."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("AuthorizeRequest")}},
                },
                "responses": {
                    "200": _json_ok("The decision.", "AuthorizeAnswer"),
                    "400": {"$ref": _RESPONSES + "BadJson"},
                    "404": {"$ref": _RESPONSES + "NotFound"},
                    "413": _error("The body is over 16 KiB (code `too_large`)."),
                    "422": _error(
                        "A field is missing or wrong (codes `required`, `not_a_string`, `too_long`, "
                        "`invalid_character`, `unknown_meter`, `not_a_number`, `not_an_integer`, "
                        "`not_exact`, `must_be_non_negative`, `too_large`; `field` names it)."
                    ),
                    **_read_errors(),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "getOpenApiDocument",
                "tags": ["meta"],
                "summary": "This document (no token needed)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document of this API.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        **customer_paths(),
        **spend_paths(),
        **portal_paths(_read_errors()),
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1.0 document of the HTTP API, a fresh dict on every call."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Meterline API",
            "version": _package_version(),
            "description": (
                "Usage metering and credit balances. JSON in, JSON out; every error is "
                '`{"error": {"code", "message", "field"}}`. Money is an integer of nano-credits '
                f"({NANOS_PER_CREDIT:,} per credit; 1 credit = $1).\n\n"
                "Every route takes the company's server token (`bearerAuth`). `/api/v1/usage`, "
                "`/api/v1/costs`, `/api/v1/balance` and an account's `/caps` and `/alert-rules` also "
                "take a customer API key (`customerKey`), which acts on its own account only.\n\n"
                + _limits_text()
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer <METERLINE_API_TOKEN>`, the server token.",
                },
                "customerKey": customer_key_scheme(),
            },
            "schemas": _schemas(),
            "responses": _responses(),
        },
    }
