"""Sending one alert message: email over SMTP (``SMTP_URL``) and signed webhooks.

Both are plain blocking calls with short timeouts; they run outside any database
transaction (see ``core.spend.deliveries``), never on the ingestion path.

Webhook signature (like Stripe's): the header ``Meterline-Signature: t=<unix seconds>,v1=<hex>``
where ``hex = HMAC-SHA256(secret, f"{t}.{body}")`` over the exact body bytes. A receiver
recomputes it with its secret, compares in constant time and refuses a ``t`` older than a few
minutes (replays). ``Meterline-Delivery`` carries the delivery id: the same id may arrive twice
(retries are at-least-once), so receivers should ignore one they have seen.

``SMTP_URL``: ``smtp://[user:password@]host[:port]`` (plain, upgraded with STARTTLS when the
server offers it), ``smtps://…`` (TLS from the start, port 465), with an optional
``?from=alerts@example.com`` (default ``alerts@meterline.localhost``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from core.text import one_line

SIGNATURE_HEADER = "Meterline-Signature"
DELIVERY_HEADER = "Meterline-Delivery"
SEND_TIMEOUT_S = 10.0
DEFAULT_FROM = "alerts@meterline.localhost"


class DeliveryFailed(Exception):
    """One attempt failed; ``retry`` says whether another attempt can succeed."""

    def __init__(self, message: str, *, retry: bool = True):
        super().__init__(message)
        self.retry = retry


def canonical_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes posted (and signed): sorted keys, no spaces, ASCII."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=…,v1=…`` for the signature header."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = 300) -> bool:
    """What a receiver does: the signature matches and its time is recent."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def private_targets_allowed() -> bool:
    """Whether webhooks may reach loopback and private networks.

    Refused in production (a customer's URL must not reach the server's own network:
    server-side request forgery), allowed elsewhere (local receivers in development and
    tests); ``METERLINE_WEBHOOKS_ALLOW_PRIVATE=1`` or ``0`` decides explicitly.
    """
    explicit = os.environ.get("METERLINE_WEBHOOKS_ALLOW_PRIVATE", "").strip().lower()
    if explicit:
        return explicit in {"1", "true", "yes", "on"}
    return os.environ.get("METERLINE_ENV", "").strip().lower() != "production"


def refuse_private_target(url: str) -> None:
    """``DeliveryFailed`` when ``url``'s host resolves to a loopback, private or reserved address."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as error:
        raise DeliveryFailed(f"the host {host!r} does not resolve: {error}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DeliveryFailed(f"the host {host!r} is on a private or reserved network ({address})")


def post_webhook(url: str, secret: str, payload: dict[str, Any], *, delivery_id: int, now: int) -> None:
    """POST the signed payload; a 2xx is success, anything else raises ``DeliveryFailed``."""
    if not private_targets_allowed():
        refuse_private_target(url)
    body = canonical_body(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Meterline-Webhooks/1",
        SIGNATURE_HEADER: sign(secret, now, body),
        DELIVERY_HEADER: str(delivery_id),
    }
    try:
        response = httpx.post(
            url, content=body, headers=headers, timeout=SEND_TIMEOUT_S, follow_redirects=False
        )
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}"[:400]) from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"the endpoint answered HTTP {response.status_code}")


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int
    tls: bool  # smtps: TLS from the first byte
    username: str | None
    password: str | None
    sender: str


def smtp_settings(url: str | None = None) -> SMTPSettings | None:
    """``SMTP_URL`` parsed; None when email is not configured."""
    text = (url if url is not None else os.environ.get("SMTP_URL", "")).strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://host:port or smtps://user:password@host")
    tls = parts.scheme == "smtps"
    sender = parse_qs(parts.query).get("from", [DEFAULT_FROM])[0]
    return SMTPSettings(
        host=parts.hostname,
        port=parts.port or (465 if tls else 25),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        sender=sender,
    )


def send_email(settings: SMTPSettings | None, to: str, subject: str, text: str) -> None:
    """Send one plain-text email; raises ``DeliveryFailed``."""
    if settings is None:
        raise DeliveryFailed("email is not configured on this server (set SMTP_URL)", retry=False)
    message = EmailMessage()
    try:
        # A header is one line: every line separator and control character (not only CR and LF:
        # also VT, FF, U+0085, U+2028, ...) becomes a space, or the message cannot even be built.
        message["From"] = one_line(settings.sender)
        message["To"] = one_line(to)
        message["Subject"] = one_line(subject)[:200]
        message.set_content(text)
    except (ValueError, TypeError) as error:  # it would fail the same way on every retry
        raise DeliveryFailed(f"the message cannot be built: {error}"[:400], retry=False) from None
    try:
        if settings.tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=SEND_TIMEOUT_S, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=SEND_TIMEOUT_S)
        with client:
            client.ehlo()
            if not settings.tls and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
            if settings.username:
                client.login(settings.username, settings.password or "")
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        raise DeliveryFailed(f"the server refused the address: {error}"[:400], retry=False) from None
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}"[:400]) from None
