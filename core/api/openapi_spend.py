"""The OpenAPI parts of the caps and alert-rule routes (``core.api.spend_routes``).

``core.api.openapi`` merges these into the document. The enumerations and limits come from the
models and the code that enforces them, so the description follows the code.
"""

from __future__ import annotations

from typing import Any

from core.api.spend_body import MAX_EMAILS_GIVEN, MAX_ID, MAX_SPEND_BODY_BYTES, MAX_TEXT
from core.api.spend_routes import IDEMPOTENCY_HEADER, MAX_IDEMPOTENCY_KEY
from core.db.models import ALERT_KINDS, ALERT_SCOPES, ALERT_STATES, CAP_MODES, CAP_PERIODS, CAP_SCOPES
from core.sizes import format_bytes
from core.spend.alerts import MAX_DAYS, MAX_EMAILS_PER_RULE, MAX_PERCENT, MAX_RULES_PER_ACCOUNT
from core.spend.caps import MAX_CAPS_PER_ACCOUNT
from core.spend.change_log import IDEMPOTENCY_WINDOW

_SCHEMAS = "#/components/schemas/"
_RESPONSES = "#/components/responses/"
SECURITY = [{"bearerAuth": []}, {"customerKey": []}]  # either scheme
_MONEY_INPUT = r"^-?[0-9]{1,24}(\.[0-9]{1,24})?$"
_TIME = {"type": "string", "format": "date-time"}
_TAG = ["spend"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMAS + name}


def _credits(description: str, *, nullable: bool = False) -> dict[str, Any]:
    if nullable:
        return {"anyOf": [_ref("DecimalCredits"), {"type": "null"}], "description": description}
    return {"$ref": _SCHEMAS + "DecimalCredits", "description": description}


def _nanos(description: str, *, nullable: bool = False) -> dict[str, Any]:
    return {"type": ["integer", "null"] if nullable else "integer", "description": description}


def _money_input(description: str) -> dict[str, Any]:
    return {"type": "string", "pattern": _MONEY_INPUT, "description": description}


def _scope_value() -> dict[str, Any]:
    return {
        "type": ["string", "null"],
        "maxLength": 128,
        "description": "The project, API key (the `api_key` dimension of usage events) or meter name; "
        "null or absent for the `account` scope.",
    }


def _cap_properties() -> dict[str, Any]:
    return {
        "id": {"type": "integer"},
        "account_id": {"type": "string"},
        "scope": {"type": "string", "enum": list(CAP_SCOPES)},
        "value": _scope_value(),
        "period": {
            "type": "string",
            "enum": list(CAP_PERIODS),
            "description": "day, week (Monday to Sunday) or calendar month, in the account's time zone.",
        },
        "mode": {
            "type": "string",
            "enum": list(CAP_MODES),
            "description": "`soft`: alerts only; `hard`: `POST /api/v1/authorize` refuses past it.",
        },
        "limit": _credits("The cap in credits."),
        "limit_nanos": _nanos("The same, in nano-credits."),
        "state": {"type": "string", "enum": list(ALERT_STATES), "description": "`firing` once reached."},
        "created_by": {
            "type": "string",
            "description": "`api`, `api_key:<id>:<prefix>` or a person's email.",
        },
        "created_at": _TIME,
    }


def _cap_schema() -> dict[str, Any]:
    properties = _cap_properties()
    return {"type": "object", "required": list(properties), "properties": properties}


def _cap_with_spend_schema() -> dict[str, Any]:
    properties = {
        **_cap_properties(),
        "spent": _credits("Spend in the cap's scope this period, as of `as_of`."),
        "spent_nanos": _nanos("The same, in nano-credits."),
        "remaining": _credits("What is left before the cap (0 once past it)."),
        "remaining_nanos": _nanos("The same, in nano-credits."),
        "resets_at": {**_TIME, "description": "When the period starts over (local midnight, in UTC)."},
    }
    return {"type": "object", "required": list(properties), "properties": properties}


def _cap_create_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["scope", "mode", "limit"],
        "properties": {
            "scope": {"type": "string", "enum": list(CAP_SCOPES)},
            "value": _scope_value(),
            "period": {"type": "string", "enum": list(CAP_PERIODS), "default": "month"},
            "mode": {"type": "string", "enum": list(CAP_MODES)},
            "limit": _money_input(
                'Credits as a decimal string ("500", "12.50"), more than 0, at most 9 decimals and '
                "10^9 credits; a JSON number is refused."
            ),
        },
    }


def _cap_patch_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "Any of these; `scope` and `value` cannot change (422 `immutable`).",
        "properties": {
            "limit": _money_input("Credits as a decimal string."),
            "mode": {"type": "string", "enum": list(CAP_MODES)},
            "period": {
                "type": "string",
                "enum": list(CAP_PERIODS),
                "description": "A new period starts the cap's crossings afresh.",
            },
        },
    }


def _channels_schema(*, answer: bool) -> dict[str, Any]:
    email: dict[str, Any] = {
        "type": "array",
        "items": {"type": "string", "maxLength": MAX_TEXT},
        "description": f"Addresses to email (at most {MAX_EMAILS_PER_RULE}, stored lower-case).",
    }
    if not answer:
        email["maxItems"] = MAX_EMAILS_GIVEN
    schema: dict[str, Any] = {
        "type": "object",
        "description": "Where a firing goes; at least one (422 `no_channel`, field `channels`).",
        "properties": {
            "in_app": {"type": "boolean", "description": "The portal's notification centre."},
            "email": email,
            "webhook_id": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_ID,
                "description": "One of the account's alert webhooks (signed POSTs), or null.",
            },
            "slack_webhook_id": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_ID,
                "description": "One of the account's Slack incoming webhooks (added on the Alerts page), "
                "or null.",
            },
        },
    }
    if answer:
        schema["required"] = ["in_app", "email", "webhook_id", "slack_webhook_id"]
    else:
        schema["additionalProperties"] = False
    return schema


def _rule_input_properties() -> dict[str, Any]:
    return {
        "name": {"type": "string", "maxLength": 200},
        "kind": {
            "type": "string",
            "enum": list(ALERT_KINDS),
            "description": "`balance_below` (threshold), `spend_above` and `projected_spend_above` "
            "(threshold, or budget and percent; this month), `runway_below` (days), `spend_spike` "
            "(factor: today ≥ K × the mean of the last 7 days).",
        },
        "scope": {
            "type": "string",
            "enum": list(ALERT_SCOPES),
            "default": "account",
            "description": "`balance_below` and `runway_below` take only `account`.",
        },
        "value": _scope_value(),
        "threshold": _money_input("Credits as a decimal string (balance or spend kinds)."),
        "budget": _money_input("A budget in credits, with `percent` (spend kinds)."),
        "percent": {"type": "integer", "minimum": 1, "maximum": MAX_PERCENT},
        "days": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
        "factor": {
            "type": ["string", "number"],
            "description": "K of `spend_spike`: more than 1, at most 1,000, two decimals.",
        },
        "channels": _channels_schema(answer=False),
        "paused": {"type": "boolean", "description": "A paused rule is not evaluated and sends nothing."},
    }


def _rule_create_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "kind"],
        "description": "Channels default to in-app only.",
        "properties": _rule_input_properties(),
    }


def _rule_patch_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "Any of the fields; absent ones stay. A `threshold` replaces a budget and "
        "percent and the other way round; a new kind or scope starts the rule's crossings afresh.",
        "properties": _rule_input_properties(),
    }


def _rule_schema() -> dict[str, Any]:
    properties = {
        "id": {"type": "integer"},
        "account_id": {"type": "string"},
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": list(ALERT_KINDS)},
        "scope": {"type": "string", "enum": list(ALERT_SCOPES)},
        "value": _scope_value(),
        "threshold": _credits("balance_below, or spend kinds with an amount.", nullable=True),
        "threshold_nanos": _nanos("The same, in nano-credits.", nullable=True),
        "budget": _credits("Spend kinds with a percentage of a budget.", nullable=True),
        "budget_nanos": _nanos("The same, in nano-credits.", nullable=True),
        "percent": {"type": ["integer", "null"]},
        "days": {"type": ["integer", "null"]},
        "factor": {"type": ["string", "null"], "description": 'K of spend_spike, e.g. "2.5".'},
        "channels": _channels_schema(answer=True),
        "paused": {"type": "boolean"},
        "state": {"type": "string", "enum": list(ALERT_STATES)},
        "condition": {"type": "string", "description": "The condition in words, as the portal shows it."},
        "created_by": {"type": "string"},
        "created_at": _TIME,
    }
    return {"type": "object", "required": list(properties), "properties": properties}


def spend_schemas() -> dict[str, Any]:
    return {
        "Cap": _cap_schema(),
        "CapWithSpend": _cap_with_spend_schema(),
        "CapList": {
            "type": "object",
            "required": ["account_id", "caps", "as_of"],
            "properties": {
                "account_id": {"type": "string"},
                "caps": {"type": "array", "items": _ref("CapWithSpend")},
                "as_of": {**_TIME, "description": "When the spend figures were read."},
            },
        },
        "CapCreate": _cap_create_schema(),
        "CapPatch": _cap_patch_schema(),
        "AlertRule": _rule_schema(),
        "AlertRuleList": {
            "type": "object",
            "required": ["account_id", "alert_rules"],
            "properties": {
                "account_id": {"type": "string"},
                "alert_rules": {"type": "array", "items": _ref("AlertRule")},
            },
        },
        "AlertRuleCreate": _rule_create_schema(),
        "AlertRulePatch": _rule_patch_schema(),
    }


def spend_responses() -> dict[str, Any]:
    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}

    return {
        "SpendNotFound": error(
            "No such account, cap or rule (code `not_found`, field `account_id`, `cap_id` or "
            "`rule_id`); a customer key's other accounts are answered the same way."
        ),
        "SpendInvalid": error(
            "A field is missing or wrong; `field` names it as in the body (`limit`, `channels.email`, "
            f"`{IDEMPOTENCY_HEADER}`). Codes include `required`, `unknown_field`, `not_a_string`, "
            "`not_a_number`, `not_an_integer`, `not_a_boolean`, `too_long`, `invalid_character`, "
            "`unknown_scope`, `unknown_period`, `unknown_mode`, `unknown_kind`, `unknown_meter`, "
            "`unknown_webhook`, `must_be_positive`, `too_large`, `out_of_range`, `immutable`, "
            "`no_channel`, `invalid_email`, `too_many`."
        ),
        "SpendConflict": error(
            "The cap's scope, value and period already have a cap (code `cap_exists`; the message names "
            f"its id), or the `{IDEMPOTENCY_HEADER}` was used with another body (`idempotency_key_reused`)."
        ),
        "SpendTooLarge": error(f"The body is over {format_bytes(MAX_SPEND_BODY_BYTES)} (code `too_large`)."),
    }


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": what,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def _account() -> dict[str, Any]:
    return {
        "name": "account_id",
        "in": "path",
        "required": True,
        "description": "The account; a customer key's own (any other is 404).",
        "schema": {"type": "string", "maxLength": 64},
    }


def _idempotency() -> dict[str, Any]:
    return {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": (
            "Made once per intended create (a UUID) and resent with every retry: the same key and body "
            f"within {int(IDEMPOTENCY_WINDOW.total_seconds() // 3600)} hours answers the first create again "
            "(201, `Idempotent-Replayed: true`) and makes nothing; with another body, 409."
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
    }


def _errors(*, write: bool) -> dict[str, Any]:
    errors = {
        "401": {"$ref": _RESPONSES + "Unauthorized"},
        "403": {"$ref": _RESPONSES + "Forbidden"},
        "404": {"$ref": _RESPONSES + "SpendNotFound"},
        "429": {"$ref": _RESPONSES + "RateLimited"},
        "500": {"$ref": _RESPONSES + "Internal"},
        "503": {"$ref": _RESPONSES + "Unavailable"},
    }
    if write:
        errors["400"] = {"$ref": _RESPONSES + "BadJson"}
        errors["413"] = {"$ref": _RESPONSES + "SpendTooLarge"}
        errors["422"] = {"$ref": _RESPONSES + "SpendInvalid"}
    return errors


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _created(description: str, schema: str) -> dict[str, Any]:
    answer = _json(description, schema)
    answer["headers"] = {
        "Location": {"schema": {"type": "string"}, "description": "The new object's path."},
        "Idempotent-Replayed": {
            "schema": {"type": "string", "enum": ["true"]},
            "description": "Present when this answers an earlier create with the same key.",
        },
    }
    return answer


_READ = "customer key with `usage:read` or `spend:write`, or the server token"
_WRITE = "customer key with `spend:write`, or the server token; audited"


def spend_paths() -> dict[str, Any]:
    caps, rules = "/api/v1/accounts/{account_id}/caps", "/api/v1/accounts/{account_id}/alert-rules"
    deleted = {"204": {"description": "Deleted; its firing history stays."}}
    return {
        caps: {
            "get": {
                "operationId": "listCaps",
                "tags": _TAG,
                "summary": f"The account's spend caps with this period's spend ({_READ})",
                "security": SECURITY,
                "parameters": [_account()],
                "responses": {"200": _json("The caps, as of `as_of`.", "CapList"), **_errors(write=False)},
            },
            "post": {
                "operationId": "createCap",
                "tags": _TAG,
                "summary": f"Add a spend cap ({_WRITE})",
                "description": (
                    f"One cap per scope, value and period (409 `cap_exists` otherwise: change that cap); "
                    f"at most {MAX_CAPS_PER_ACCOUNT} per account. Caps stack: a request must pass every "
                    "hard cap that applies to it."
                ),
                "security": SECURITY,
                "parameters": [_account(), _idempotency()],
                "requestBody": _body("CapCreate"),
                "responses": {
                    "201": _created("The cap.", "Cap"),
                    "409": {"$ref": _RESPONSES + "SpendConflict"},
                    **_errors(write=True),
                },
            },
        },
        caps + "/{cap_id}": {
            "patch": {
                "operationId": "updateCap",
                "tags": _TAG,
                "summary": f"Change a cap's limit, mode or period ({_WRITE})",
                "security": SECURITY,
                "parameters": [_account(), _path_id("cap_id", "The cap.")],
                "requestBody": _body("CapPatch"),
                "responses": {
                    "200": _json("The cap as changed.", "Cap"),
                    "409": {"$ref": _RESPONSES + "SpendConflict"},
                    **_errors(write=True),
                },
            },
            "delete": {
                "operationId": "deleteCap",
                "tags": _TAG,
                "summary": f"Remove a cap ({_WRITE})",
                "security": SECURITY,
                "parameters": [_account(), _path_id("cap_id", "The cap.")],
                "responses": {**deleted, **_errors(write=False)},
            },
        },
        rules: {
            "get": {
                "operationId": "listAlertRules",
                "tags": _TAG,
                "summary": f"The account's alert rules ({_READ})",
                "security": SECURITY,
                "parameters": [_account()],
                "responses": {"200": _json("The rules.", "AlertRuleList"), **_errors(write=False)},
            },
            "post": {
                "operationId": "createAlertRule",
                "tags": _TAG,
                "summary": f"Add an alert rule ({_WRITE})",
                "description": f"At most {MAX_RULES_PER_ACCOUNT} rules per account.",
                "security": SECURITY,
                "parameters": [_account(), _idempotency()],
                "requestBody": _body("AlertRuleCreate"),
                "responses": {
                    "201": _created("The rule.", "AlertRule"),
                    "409": {"$ref": _RESPONSES + "SpendConflict"},
                    **_errors(write=True),
                },
            },
        },
        rules + "/{rule_id}": {
            "patch": {
                "operationId": "updateAlertRule",
                "tags": _TAG,
                "summary": f"Change an alert rule, pause or resume it ({_WRITE})",
                "security": SECURITY,
                "parameters": [_account(), _path_id("rule_id", "The rule.")],
                "requestBody": _body("AlertRulePatch"),
                "responses": {"200": _json("The rule as changed.", "AlertRule"), **_errors(write=True)},
            },
            "delete": {
                "operationId": "deleteAlertRule",
                "tags": _TAG,
                "summary": f"Remove an alert rule ({_WRITE})",
                "security": SECURITY,
                "parameters": [_account(), _path_id("rule_id", "The rule.")],
                "responses": {**deleted, **_errors(write=False)},
            },
        },
    }
