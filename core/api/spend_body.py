"""Bodies of the caps and alert-rule routes: JSON objects checked field by field.

Every refusal is a 422 naming the field as the caller wrote it (``limit``, ``channels.email``),
before the core sees the value: a wrong type, an unknown field (a typo in a PATCH would
otherwise change nothing, silently), text with a NUL or a lone surrogate, a number too large
to be meant. Money is credits as a decimal string (``"50"``, ``"12.5"``; at most 9 decimals);
a JSON number for money is refused, so that ``0.1`` never passes through a float anywhere.
The core then checks the values themselves (``core.spend.caps``, ``core.spend.alerts``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.api.errors import RequestError
from core.metering.exact_json import NotJSON, loads_exact
from core.spend.alerts import RuleInput
from core.text import is_clean_text

MAX_SPEND_BODY_BYTES = 16 * 1024
MAX_TEXT = 320  # longer than any name, scope value or address the core accepts: it names the limit
MAX_EMAILS_GIVEN = 50
MAX_ID = 2**31 - 1  # the id columns' range
MAX_SMALL_INT = 10**9
_MONEY = re.compile(r"^-?[0-9]{1,24}(\.[0-9]{1,24})?$")
_FACTOR = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,12})?$")

CAP_FIELDS = ("scope", "value", "period", "mode", "limit")
CAP_PATCH_FIELDS = ("limit", "mode", "period")
RULE_FIELDS = ("name", "kind", "scope", "value", "threshold", "budget", "percent", "days", "factor")
RULE_FIELDS += ("channels", "paused")
CHANNEL_FIELDS = ("in_app", "email", "webhook_id", "slack_webhook_id")


def _invalid(field: str, code: str, message: str) -> RequestError:
    return RequestError(422, code, message, field)


def parse_object(body: bytes, fields: tuple[str, ...], *, example: str) -> dict[str, Any]:
    """The body as a JSON object holding only ``fields``; 400 for no JSON, 422 for anything else."""
    if not body.strip():
        raise RequestError(400, "bad_json", f"the body is empty; send a JSON object such as {example}")
    try:
        document = loads_exact(body)
    except NotJSON as error:
        raise RequestError(400, "bad_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise RequestError(422, "not_an_object", f"the body must be a JSON object such as {example}")
    _only(document, fields, prefix="")
    return document


def _only(document: dict[str, Any], fields: tuple[str, ...], *, prefix: str) -> None:
    for name in document:
        if name not in fields:
            shown = name[:40] if is_clean_text(name) else "?"
            raise _invalid(
                prefix + shown,
                "unknown_field",
                f"unknown field {shown!r}; the fields are {', '.join(fields)}",
            )


def text(
    document: dict[str, Any], name: str, *, required: bool = False, field: str | None = None
) -> str | None:
    """A string field (None when absent or null, unless ``required``)."""
    shown = field or name
    value = document.get(name)
    if value is None:
        if required:
            raise _invalid(shown, "required", f"the body needs {shown!r}")
        return None
    if not isinstance(value, str):
        raise _invalid(shown, "not_a_string", f"{shown!r} must be a string")
    if len(value) > MAX_TEXT:
        raise _invalid(shown, "too_long", f"{shown!r} is longer than {MAX_TEXT} characters")
    if not is_clean_text(value):
        raise _invalid(shown, "invalid_character", f"{shown!r} holds a NUL or a lone surrogate")
    return value


def money(document: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """Credits as a decimal string, as given (the core converts and checks the range)."""
    value = document.get(name)
    if value is None and not required:
        return None
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        raise _invalid(
            name, "not_a_string", f'{name!r} is credits as a decimal string, e.g. "50.00", not a JSON number'
        )
    given = text(document, name, required=required)
    assert given is not None
    if not _MONEY.match(given.strip()):
        raise _invalid(name, "not_a_number", f'{name!r} must be credits as a decimal string, e.g. "50.00"')
    return given.strip()


def whole(
    document: dict[str, Any], name: str, *, low: int = -MAX_SMALL_INT, high: int = MAX_SMALL_INT
) -> int | None:
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(name, "not_an_integer", f"{name!r} must be a whole JSON number")
    if not low <= value <= high:
        raise _invalid(name, "out_of_range", f"{name!r} must be from {low:,} to {high:,}")
    return value


def flag(document: dict[str, Any], name: str, *, field: str | None = None) -> bool | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _invalid(field or name, "not_a_boolean", f"{(field or name)!r} must be true or false")
    return value


def factor(document: dict[str, Any]) -> str | None:
    """The K of a spike rule: a number or a decimal string (the core checks 1 < K ≤ 1,000)."""
    value = document.get("factor")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise _invalid("factor", "not_a_number", "'factor' must be a number such as 2.5")
    shown = value if isinstance(value, str) else format(value, "f") if abs(value) < 10**12 else "x"
    if not _FACTOR.match(shown.strip()):
        raise _invalid("factor", "not_a_number", "'factor' must be a number such as 2.5, more than 1")
    return shown.strip()


# --- Caps -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapBody:
    scope: str
    value: str
    period: str
    mode: str
    limit: str


def cap_body(body: bytes) -> CapBody:
    example = '{"scope": "project", "value": "copilot", "period": "month", "mode": "hard", "limit": "500"}'
    document = parse_object(body, CAP_FIELDS, example=example)
    scope = text(document, "scope", required=True)
    assert scope is not None
    value = text(document, "value")
    if scope == "account" and value:
        raise _invalid("value", "not_allowed", "the account scope takes no value: leave 'value' out")
    if scope != "account" and not value:
        raise _invalid("value", "required", f"name the {scope.replace('_', ' ')} in 'value'")
    period = text(document, "period") or "month"
    mode = text(document, "mode", required=True)
    limit = money(document, "limit", required=True)
    assert mode is not None and limit is not None
    return CapBody(scope, value or "", period, mode, limit)


def cap_patch(body: bytes) -> dict[str, str]:
    """The fields to change: any of limit, mode, period (at least one)."""
    document = parse_object(body, (*CAP_PATCH_FIELDS, "scope", "value"), example='{"limit": "750"}')
    for fixed in ("scope", "value"):
        if fixed in document:
            raise _invalid(
                fixed, "immutable", f"a cap's {fixed} cannot change: delete the cap and create another"
            )
    changes: dict[str, str] = {}
    if "limit" in document:
        changes["limit"] = money(document, "limit", required=True) or ""
    for name in ("mode", "period"):
        if name in document:
            changes[name] = text(document, name, required=True) or ""
    if not changes:
        raise _invalid("limit", "required", "send at least one of limit, mode, period")
    return changes


# --- Alert rules ----------------------------------------------------------------------------------


def _channels(document: dict[str, Any]) -> dict[str, Any]:
    """RuleInput's channel fields from ``channels`` (absent keys absent)."""
    channels = document.get("channels")
    if channels is None:
        return {}
    if not isinstance(channels, dict):
        raise _invalid(
            "channels",
            "not_an_object",
            "'channels' must be an object {in_app, email, webhook_id, slack_webhook_id}",
        )
    _only(channels, CHANNEL_FIELDS, prefix="channels.")
    fields: dict[str, Any] = {}
    if "in_app" in channels:
        in_app = flag(channels, "in_app", field="channels.in_app")
        fields["notify_in_app"] = bool(in_app)
    if "email" in channels:
        emails = channels["email"] if channels["email"] is not None else []
        if not isinstance(emails, list):
            raise _invalid("channels.email", "not_a_list", "'channels.email' must be a list of addresses")
        if len(emails) > MAX_EMAILS_GIVEN:
            raise _invalid("channels.email", "too_many", f"at most {MAX_EMAILS_GIVEN} addresses")
        fields["email_to"] = tuple(
            text({"email": item}, "email", required=True, field="channels.email") for item in emails
        )
    for name, what in (("webhook_id", "webhook"), ("slack_webhook_id", "Slack webhook")):
        if name in channels:
            hook = channels[name]
            if hook is not None and (
                isinstance(hook, bool) or not isinstance(hook, int) or not 0 < hook <= MAX_ID
            ):
                raise _invalid(f"channels.{name}", "invalid", f"'channels.{name}' is a {what}'s id, or null")
            fields[name] = hook
    return fields


def rule_fields(body: bytes, *, patch: bool) -> dict[str, Any]:
    """The rule's fields as ``RuleInput`` names (and ``paused``): all given ones for a PATCH."""
    example = '{"name": "Half the budget", "kind": "spend_above", "budget": "1000", "percent": 50}'
    document = parse_object(body, RULE_FIELDS, example=example)
    fields: dict[str, Any] = {}
    for name in ("name", "kind", "scope"):
        if name in document or (not patch and name != "scope"):
            fields[name] = text(document, name, required=True)
    if "value" in document:
        fields["scope_value"] = text(document, "value") or ""
    if not patch and fields.get("scope", "account") == "account" and fields.get("scope_value"):
        raise _invalid("value", "not_allowed", "the account scope takes no value: leave 'value' out")
    for name in ("threshold", "budget"):
        if name in document:
            fields[name] = money(document, name)
    if "percent" in document:
        fields["percent"] = whole(document, "percent")
    if "days" in document:
        fields["days"] = whole(document, "days")
    if "factor" in document:
        fields["factor"] = factor(document)
    fields.update(_channels(document))
    if "paused" in document:
        fields["paused"] = flag(document, "paused")
    if patch and not fields:
        raise _invalid("name", "required", f"send at least one of {', '.join(RULE_FIELDS)}")
    return fields


def new_rule(fields: dict[str, Any]) -> tuple[RuleInput, bool]:
    """A create's ``RuleInput`` and whether it starts paused."""
    given = {name: value for name, value in fields.items() if name != "paused"}
    return RuleInput(**given), bool(fields.get("paused"))
