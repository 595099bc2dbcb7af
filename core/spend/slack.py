"""Slack as an alert channel: an incoming-webhook URL, its check, the Block Kit message, the post.

A Slack incoming webhook (``https://hooks.slack.com/services/T…/B…/…``) posts to one channel
chosen when the customer made it in Slack. Its URL is the credential (whoever holds it may post
there), so it is stored like a webhook's signing secret: shown once, at creation, then only its
last characters (``url_hint``) beside the customer's ``label``.

Only ``https://hooks.slack.com/services/…`` is accepted: no other host, port, user, query or
fragment. For local receivers in development and tests, ``METERLINE_SLACK_HOOKS_ORIGIN``
(``http://127.0.0.1:8123``) names one more origin whose ``/services/…`` URLs are accepted, but only
where private webhook targets are allowed (``core.spend.channels.private_targets_allowed``: never
with ``METERLINE_ENV=production`` unless ``METERLINE_WEBHOOKS_ALLOW_PRIVATE=1``), and the post goes
through the same SSRF guard as signed webhooks (one checked lookup per attempt, the connection
pinned to the checked addresses, no redirects, no environment proxy).

The message (``slack_message``): a header with the rule's name and what happened, a section with
the condition and the figures (value, threshold, fired or resolved, when; credits as
``docs/money.md`` says, via ``core.display``), a button to the portal's Alerts page (Limits for a
cap) when ``METERLINE_PUBLIC_URL`` is set, and a plain ``text`` fallback for notifications and
clients without blocks. Customer-typed text is escaped for Slack's markup (``&``, ``<``, ``>``),
so a rule named ``<!channel>`` mentions no one.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

from core.errors import ValidationError
from core.spend import channels
from core.spend.rules import format_value
from core.text import one_line, single_line_text

SLACK_HOOKS_HOST = "hooks.slack.com"
ORIGIN_OVERRIDE_ENV = "METERLINE_SLACK_HOOKS_ORIGIN"
PUBLIC_URL_ENV = "METERLINE_PUBLIC_URL"
MAX_URL_CHARS = 500
MAX_LABEL_CHARS = 80
HEADER_MAX_CHARS = 150  # Slack's limit for a header block's text
SECTION_MAX_CHARS = 3000  # Slack's limit for a section's text
FIELD_MAX_CHARS = 2000
TEXT_MAX_CHARS = 4000
_SERVICES_PATH = re.compile(r"^/services/[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,128}$")
_INVALID = "a Slack incoming-webhook URL looks like https://hooks.slack.com/services/T…/B…/…"


def override_origin() -> str | None:
    """The test or development origin accepted beside Slack's, if configured and allowed here."""
    origin = os.environ.get(ORIGIN_OVERRIDE_ENV, "").strip().rstrip("/")
    if not origin or not channels.private_targets_allowed():
        return None
    return origin


def validate_slack_url(url: str) -> str:
    """The URL, checked: ``https://hooks.slack.com/services/…`` (or the allowed override origin)."""
    text = single_line_text(str(url).strip(), field="url")
    if not text:
        raise ValidationError("give the Slack incoming-webhook URL", code="required", field="url")
    if len(text) > MAX_URL_CHARS or any(ch.isspace() or ord(ch) < 32 or ord(ch) > 126 for ch in text):
        raise ValidationError(_INVALID, code="invalid_url", field="url")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValidationError(_INVALID, code="invalid_url", field="url") from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError(_INVALID, code="invalid_url", field="url")
    if not _SERVICES_PATH.match(parts.path):
        raise ValidationError(_INVALID, code="invalid_url", field="url")
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    allowed = override_origin()
    if allowed is not None and origin == allowed.lower():
        return text
    if parts.scheme != "https" or (parts.hostname or "").lower() != SLACK_HOOKS_HOST or port is not None:
        raise ValidationError(
            f"{_INVALID}: only Slack's own host ({SLACK_HOOKS_HOST}, https) is accepted",
            code="not_slack",
            field="url",
        )
    return f"https://{SLACK_HOOKS_HOST}{parts.path}"


def validate_label(label: str) -> str:
    text = single_line_text(str(label).strip(), field="label")
    if not text:
        raise ValidationError("name the Slack channel (e.g. #ops-alerts)", code="required", field="label")
    if len(text) > MAX_LABEL_CHARS:
        raise ValidationError(
            f"the name is longer than {MAX_LABEL_CHARS} characters", code="too_long", field="label"
        )
    return text


def url_hint(url: str) -> str:
    """The last characters of the URL's token: enough to tell two URLs apart, not to use one."""
    return url.rstrip("/")[-4:]


def escape(text: str) -> str:
    """Text for Slack's markup: the three characters it gives meaning to, as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def public_url() -> str:
    """The portal's address as customers reach it (``METERLINE_PUBLIC_URL``), without a final slash."""
    return os.environ.get(PUBLIC_URL_ENV, "").strip().rstrip("/")


def portal_link(payload: dict[str, Any], base_url: str) -> tuple[str, str] | None:
    """(button text, absolute URL) of the page to manage what fired; None without a base URL."""
    if not base_url.startswith(("http://", "https://")):
        return None
    if payload.get("cap") is not None:
        return "Open Limits", f"{base_url}/limits"
    return "Open Alerts", f"{base_url}/alerts"


def slack_message(payload: dict[str, Any], *, when: str, base_url: str) -> dict[str, Any]:
    """The Block Kit message for one firing's payload (as ``core.spend.evaluate`` writes it)."""
    resolved = str(payload.get("type", "")).endswith("resolved")
    rule = payload.get("rule") or {}
    name = one_line(str(rule.get("name") or payload.get("subject") or "Alert"))
    verb = "resolved" if resolved else "fired"
    unit = str(payload.get("unit", "nanos"))
    value = format_value(_integer(payload.get("value")), unit)
    threshold = format_value(_integer(payload.get("threshold")), unit)
    status = "Resolved: back from the threshold" if resolved else "Fired: crossed the threshold"
    message = one_line(str(payload.get("message", "")))
    condition = one_line(str(payload.get("condition", "")))
    link = portal_link(payload, base_url)
    section_text = f"*{escape(condition)}*\n{escape(message)}" if condition else escape(message)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(f"{name} {verb}", HEADER_MAX_CHARS), "emoji": False},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(section_text, SECTION_MAX_CHARS)},
            "fields": [
                {"type": "mrkdwn", "text": _clip(f"*Value*\n{value}", FIELD_MAX_CHARS)},
                {"type": "mrkdwn", "text": _clip(f"*Threshold*\n{threshold}", FIELD_MAX_CHARS)},
                {"type": "mrkdwn", "text": f"*Status*\n{status}"},
                {"type": "mrkdwn", "text": _clip(f"*When*\n{escape(when)}", FIELD_MAX_CHARS)},
            ],
        },
    ]
    if link is not None:
        label, url = link
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": label},
                        "url": url,
                        "action_id": "open_portal",
                    }
                ],
            }
        )
    fallback = f"{escape(name)} {verb}: {escape(message)} (value {value}, threshold {threshold})"
    if link is not None:
        fallback += f" {link[0]}: {link[1]}"
    return {"text": _clip(fallback, TEXT_MAX_CHARS), "blocks": blocks}


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def post_slack(url: str, message: dict[str, Any], *, delivery_id: int) -> None:
    """POST the message to the incoming webhook; a 2xx is success, else ``DeliveryFailed``.

    The URL is checked again (a stored URL from before a rule change, or an override that is no
    longer allowed, is refused for good), then posted through the webhook SSRF guard."""
    try:
        checked = validate_slack_url(url)
    except ValidationError:
        raise channels.DeliveryFailed("the Slack URL is no longer accepted here", retry=False) from None
    body = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    headers = {"Content-Type": "application/json", "User-Agent": "Meterline-Alerts/1"}
    channels.post_pinned(checked, body, headers, delivery_id=delivery_id)
