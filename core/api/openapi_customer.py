"""The OpenAPI parts of the customer routes (usage, costs, balance) and of customer API keys.

``core.api.openapi`` merges these into the document; the limits come from
``core.usage.report_query`` and ``core.api.rate_limit``, so the description follows the code.
"""

from __future__ import annotations

from typing import Any

from core.api.rate_limit import DEFAULT_RATE_PER_MINUTE, RATE_SETTING
from core.customer_keys import SCOPES
from core.usage.report_query import (
    BUCKETS,
    DEFAULT_BUCKET,
    GROUP_BY,
    MAX_ACCOUNT_ID,
    PAGE_LIMITS,
)

_SCHEMAS = "#/components/schemas/"
_RESPONSES = "#/components/responses/"
SECURITY = [{"bearerAuth": []}, {"customerKey": []}]  # either scheme


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMAS + name}


def customer_key_scheme() -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "`Authorization: Bearer ml_live_…`, a customer API key an account made on its API keys page "
            "(or `meterline keys create`). It reads its own account only, on `/api/v1/usage`, "
            f"`/api/v1/costs` (scope `usage:read`) and `/api/v1/balance` (scope `balance:read`); scopes: "
            f"{', '.join(f'`{s}`' for s in SCOPES)}. Unknown, revoked or expired: 401; another route or a "
            "missing scope: 403; another account's id: 404. Rate-limited per key "
            f"(`{RATE_SETTING}`, default {DEFAULT_RATE_PER_MINUTE} a minute per server process): 429 with "
            "`Retry-After`."
        ),
    }


def _dimension(name: str) -> dict[str, Any]:
    return {
        "type": ["string", "null"],
        "description": f"The `{name}` the events carried (null: none); only when grouped by `{name}`.",
    }


def _money() -> dict[str, Any]:
    return {
        "amount": {
            "$ref": _SCHEMAS + "DecimalCredits",
            "description": "Rated amount in credits (1 credit = $1).",
        },
        "amount_nanos": {"type": "integer", "minimum": 0, "description": "The same, in nano-credits."},
    }


def _bucket_schema(results: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["start", "end", "results"],
        "properties": {
            "start": {"type": "string", "format": "date-time", "description": "Inclusive, UTC."},
            "end": {"type": "string", "format": "date-time", "description": "Exclusive, UTC."},
            "results": {"type": "array", "items": _ref(results), "description": "Empty: no usage in it."},
        },
    }


def _report_schema(bucket: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": [
            "account_id",
            "start",
            "end",
            "bucket",
            "group_by",
            "buckets",
            "has_more",
            "next_page",
            "as_of",
        ],
        "properties": {
            "account_id": {"type": "string"},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "bucket": {"type": "string", "enum": list(BUCKETS)},
            "group_by": {"type": "array", "items": {"type": "string", "enum": list(GROUP_BY)}},
            "buckets": {
                "type": "array",
                "items": _ref(bucket),
                "description": "Every bucket of this page, in time order, empty ones included.",
            },
            "has_more": {"type": "boolean"},
            "next_page": {
                "type": ["string", "null"],
                "description": "Pass it back as `page` (with the same other parameters) for the next "
                "buckets; null on the last page.",
            },
            "as_of": {
                "type": "string",
                "format": "date-time",
                "description": "When the figures were read; usage received later shows in a later read.",
            },
        },
    }


def customer_schemas() -> dict[str, Any]:
    return {
        "UsageResult": {
            "type": "object",
            "description": "One meter's usage (per value of each other `group_by` dimension) in a bucket.",
            "required": ["meter", "unit", "quantity", "events", "amount", "amount_nanos"],
            "properties": {
                "meter": {"type": "string", "description": "The meter's name, e.g. `input_tokens`."},
                "model": _dimension("model"),
                "project": _dimension("project"),
                "api_key": _dimension("api_key"),
                "unit": {"type": "string", "description": "The meter's unit, singular."},
                "quantity": {"type": "integer", "minimum": 0, "description": "Units used (exact)."},
                "events": {"type": "integer", "minimum": 0, "description": "Usage events counted."},
                **_money(),
            },
        },
        "CostResult": {
            "type": "object",
            "description": "What one group cost in a bucket: the bucket's total without `group_by`.",
            "required": ["amount", "amount_nanos"],
            "properties": {
                "meter": {"type": "string", "description": "Only when grouped by `meter`."},
                "model": _dimension("model"),
                "project": _dimension("project"),
                "api_key": _dimension("api_key"),
                **_money(),
            },
        },
        "UsageBucket": _bucket_schema(
            "UsageResult", "One UTC bucket of usage, one result per meter and group."
        ),
        "CostBucket": _bucket_schema("CostResult", "One UTC bucket of costs, one result per group."),
        "UsageReport": _report_schema(
            "UsageBucket",
            "Usage per bucket: always split by meter (quantities of different meters are never added).",
        ),
        "CostReport": _report_schema(
            "CostBucket", "Costs per bucket, split only by `group_by` (no quantity: it would add units)."
        ),
    }


def customer_responses() -> dict[str, Any]:
    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}

    limited = error(
        "This customer API key went past its rate (code `rate_limited`); retry after `Retry-After` seconds."
    )
    limited["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
    return {
        "Forbidden": error(
            "A customer API key on a route for the server token only, or without the route's scope "
            "(code `forbidden`, field `authorization` or `scope`)."
        ),
        "RateLimited": limited,
        "QueryInvalid": error(
            "A query parameter is missing or wrong; `field` names it (codes `required`, `repeated`, "
            "`unknown_parameter`, `not_a_timestamp`, `missing_offset`, `out_of_range`, `not_aligned`, "
            "`empty_range`, `range_too_long`, `unknown_bucket`, `unknown_group_by`, `invalid_page`, "
            "`unknown_format`, `invalid`)."
        ),
    }


def _query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def _account_parameter() -> dict[str, Any]:
    return _query(
        "account_id",
        "The account. A customer API key reads its own: leave it out (any other id is 404). Required "
        "with the server token.",
        {"type": "string", "minLength": 1, "maxLength": MAX_ACCOUNT_ID},
        required=False,
        example="acc_brightpath",
    )


def _report_parameters(costs: bool) -> list[dict[str, Any]]:
    limits = "; ".join(f"`{b}`: default {d}, at most {m:,}" for b, (d, m) in PAGE_LIMITS.items())
    parameters = [
        _account_parameter(),
        _query(
            "start",
            "Inclusive. RFC 3339 with an offset, on a bucket boundary in UTC (a whole minute for `1m`, a "
            "whole hour for `1h`, midnight UTC for `1d`)."
            + (" Required, except with `format=focus`." if costs else ""),
            {"type": "string", "format": "date-time"},
            required=not costs,
            example="2026-11-01T00:00:00Z",
        ),
        _query(
            "end",
            "Exclusive, after `start`, on a bucket boundary. At most 24 hours after `start` for `1m`, "
            "366 days for `1h` and `1d`." + (" Required, except with `format=focus`." if costs else ""),
            {"type": "string", "format": "date-time"},
            required=not costs,
            example="2026-12-01T00:00:00Z",
        ),
        _query(
            "bucket",
            "Bucket width: `1m`, `1h` or `1d`. Buckets are UTC: a `1d` bucket starts at midnight UTC.",
            {"type": "string", "enum": list(BUCKETS), "default": DEFAULT_BUCKET},
            example="1d",
        ),
        _query(
            "group_by",
            "Repeat for several: "
            + ", ".join(f"`{g}`" for g in GROUP_BY)
            + (". Without it, one total per bucket." if costs else ". Usage is always split by meter."),
            {"type": "array", "items": {"type": "string", "enum": list(GROUP_BY)}},
            style="form",
            explode=True,
            example=["model", "project"],
        ),
        _query(
            "limit",
            f"Buckets per page ({limits}).",
            {"type": "integer", "minimum": 1, "maximum": max(m for _, m in PAGE_LIMITS.values())},
            example=7,
        ),
        _query(
            "page",
            "The `next_page` of the previous answer to the same query (opaque; another query's is 422).",
            {"type": "string", "maxLength": 200},
        ),
    ]
    if costs:
        parameters += [
            _query(
                "format",
                "`json` (default): the buckets. `focus`: the account's calendar `month` (UTC) as a FOCUS "
                "cost CSV (FinOps FOCUS 1.0 columns and the 1.2 ones that apply; docs/focus.md), which "
                "takes only `account_id` and `month`.",
                {"type": "string", "enum": ["json", "focus"], "default": "json"},
                example="json",
            ),
            _query(
                "month",
                "With `format=focus` only (and then required): the calendar month in UTC, `YYYY-MM`.",
                {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                example="2026-11",
            ),
        ]
    return parameters


_USAGE_EXAMPLE = {
    "account_id": "acc_brightpath",
    "start": "2026-11-01T00:00:00Z",
    "end": "2026-11-03T00:00:00Z",
    "bucket": "1d",
    "group_by": ["model"],
    "buckets": [
        {
            "start": "2026-11-01T00:00:00Z",
            "end": "2026-11-02T00:00:00Z",
            "results": [
                {
                    "meter": "input_tokens",
                    "model": "atlas-large",
                    "unit": "token",
                    "quantity": 1200000,
                    "events": 340,
                    "amount": "3.600000000",
                    "amount_nanos": 3600000000,
                }
            ],
        },
        {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z", "results": []},
    ],
    "has_more": False,
    "next_page": None,
    "as_of": "2026-11-08T09:41:07Z",
}
_COSTS_EXAMPLE = {
    "account_id": "acc_brightpath",
    "start": "2026-11-01T00:00:00Z",
    "end": "2026-11-08T00:00:00Z",
    "bucket": "1d",
    "group_by": ["project"],
    "buckets": [
        {
            "start": "2026-11-01T00:00:00Z",
            "end": "2026-11-02T00:00:00Z",
            "results": [
                {"project": "copilot", "amount": "3.600000000", "amount_nanos": 3600000000},
                {"project": None, "amount": "0.010000000", "amount_nanos": 10000000},
            ],
        }
    ],
    "has_more": True,
    "next_page": "eyJ2IjoxLCJhdCI6MTc5MzY2NDAwMCwicSI6IjkxMDFiMTIzODM3YWQwMGRjNjUzZmZiMyJ9",
    "as_of": "2026-11-08T09:41:07Z",
}


def _ok(description: str, schema: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema), "example": example}},
    }


def _errors() -> dict[str, Any]:
    return {
        "401": {"$ref": _RESPONSES + "Unauthorized"},
        "403": {"$ref": _RESPONSES + "Forbidden"},
        "404": {"$ref": _RESPONSES + "NotFound"},
        "422": {"$ref": _RESPONSES + "QueryInvalid"},
        "429": {"$ref": _RESPONSES + "RateLimited"},
        "500": {"$ref": _RESPONSES + "Internal"},
        "503": {"$ref": _RESPONSES + "Unavailable"},
    }


def customer_paths() -> dict[str, Any]:
    return {
        "/api/v1/usage": {
            "get": {
                "operationId": "getUsage",
                "tags": ["usage"],
                "summary": "Usage per meter in UTC buckets (customer key with `usage:read`, or server token)",
                "description": (
                    "Quantities per meter (and per value of each `group_by` dimension) in `1m`, `1h` or "
                    "`1d` UTC buckets, with their rated amounts. The totals over a range are what the "
                    "portal's Usage page shows for it. Paged by buckets: follow `next_page`."
                ),
                "security": SECURITY,
                "parameters": _report_parameters(costs=False),
                "responses": {"200": _ok("A page of buckets.", "UsageReport", _USAGE_EXAMPLE), **_errors()},
            }
        },
        "/api/v1/costs": {
            "get": {
                "operationId": "getCosts",
                "tags": ["usage"],
                "summary": "Costs in UTC buckets (customer key with `usage:read`, or the server token)",
                "description": (
                    "Rated amounts in `1m`, `1h` or `1d` UTC buckets, split by the `group_by` dimensions "
                    "(none: one total per bucket). Same range, buckets and paging as `/api/v1/usage`."
                ),
                "security": SECURITY,
                "parameters": _report_parameters(costs=True),
                "responses": {
                    "200": {
                        "description": "A page of buckets (`format=json`) or the FOCUS CSV (`format=focus`).",
                        "content": {
                            "application/json": {"schema": _ref("CostReport"), "example": _COSTS_EXAMPLE},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(),
                },
            }
        },
        "/api/v1/balance": {
            "get": {
                "operationId": "getOwnBalance",
                "tags": ["accounts"],
                "summary": "Balance, open grants (what is left, when they expire) and as-of time "
                "(customer key with `balance:read`, or the server token)",
                "security": SECURITY,
                "parameters": [_account_parameter()],
                "responses": {
                    "200": {
                        "description": "The balance now.",
                        "content": {"application/json": {"schema": _ref("Balance")}},
                    },
                    **_errors(),
                },
            }
        },
    }
