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

import functools
import hashlib
import hmac
import json
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from core.spend import webhook_targets
from core.text import one_line

log = logging.getLogger(__name__)

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


ADDRESS_REFUSED = (
    "the URL's host is on a private or reserved network, where alerts are not sent (not retried)"
)


def post_webhook(url: str, secret: str, payload: dict[str, Any], *, delivery_id: int, now: int) -> None:
    """POST the signed payload; a 2xx is success, anything else raises ``DeliveryFailed``.

    The host is resolved once per call (each attempt and retry) and, unless private targets are
    allowed, every address is checked (``core.spend.webhook_targets``); the request then goes to
    those addresses only, with the host name kept in the Host header and as the TLS server name
    (SNI and certificate check), as httpx's ``sni_hostname`` extension documents. Redirects are
    not followed, proxies from the environment are not used, the response body is not read, and
    the error says what went wrong in the customer's terms, never an address or an internal
    message (those go to the server's log)."""
    body = canonical_body(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Meterline-Webhooks/1",
        SIGNATURE_HEADER: sign(secret, now, body),
        DELIVERY_HEADER: str(delivery_id),
    }
    post_pinned(url, body, headers, delivery_id=delivery_id)


def post_pinned(url: str, body: bytes, headers: dict[str, str], *, delivery_id: int) -> None:
    """POST ``body`` to ``url`` connecting only to its checked addresses (see ``post_webhook``);
    a 2xx is success, anything else raises ``DeliveryFailed``. Shared by webhooks and Slack."""
    target = httpx.URL(url)
    host = target.raw_host.decode("ascii")
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        addresses = webhook_targets.resolve(host, port, refuse_private=not private_targets_allowed())
    except webhook_targets.TargetUnresolved:
        raise DeliveryFailed("the URL's host name does not resolve (DNS)") from None
    except webhook_targets.TargetRefused as refused:
        log.warning("webhook delivery %s refused: %s resolves to %s", delivery_id, host, refused.address)
        raise DeliveryFailed(ADDRESS_REFUSED, retry=False) from None
    headers = {"Host": target.netloc.decode("ascii"), **headers}
    first_error: httpx.TransportError | None = None
    with httpx.Client(
        verify=_tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
        trust_env=False,  # an environment proxy would resolve the name again
        follow_redirects=False,
        timeout=SEND_TIMEOUT_S,
    ) as client:
        for address in addresses:
            request = client.build_request(
                "POST",
                target.copy_with(host=str(address)),
                content=body,
                headers=headers,
                extensions={"sni_hostname": host},
            )
            try:
                response = client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                log.info("webhook delivery %s: %s did not connect: %r", delivery_id, address, error)
                first_error = first_error or error  # nothing was sent: try the next checked address
                continue
            except httpx.HTTPError as error:
                log.info("webhook delivery %s to %s failed: %r", delivery_id, address, error)
                raise DeliveryFailed(failure_text(error)) from None
            response.close()  # the status is all we need: the body is never read
            if not 200 <= response.status_code < 300:
                raise DeliveryFailed(status_text(response.status_code))
            return
    assert first_error is not None, "resolve answers at least one address"
    raise DeliveryFailed(failure_text(first_error)) from None


@functools.lru_cache(maxsize=4)
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """httpx's default verifying context, made once per value of the two variables it reads:
    loading the CA bundle takes a few hundred milliseconds here, and a context may be shared."""
    return httpx.create_ssl_context()


def status_text(status: int) -> str:
    """A non-2xx answer, by its class."""
    meaning = {
        3: "a redirect, which is not followed: give the final URL",
        4: "the endpoint refused the request: check the URL and that it accepts POST",
        5: "an error on the endpoint's side",
    }.get(status // 100, "not a success")
    return f"the endpoint answered HTTP {status} ({status // 100}xx: {meaning})"


def failure_text(error: httpx.HTTPError) -> str:
    """What went wrong, in the customer's terms: no address, host or internal message."""
    causes: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and len(causes) < 10:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return "the endpoint's TLS certificate is not valid for its host name"
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return "the TLS handshake with the endpoint failed"
    if isinstance(error, httpx.ConnectTimeout):
        return f"the endpoint did not accept a connection within {SEND_TIMEOUT_S:.0f} s"
    if isinstance(error, httpx.TimeoutException):
        return f"the endpoint did not answer within {SEND_TIMEOUT_S:.0f} s"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "the endpoint refused the connection"
    if isinstance(error, httpx.ConnectError):
        return "could not connect to the endpoint"
    if isinstance(error, httpx.RemoteProtocolError):
        return "the endpoint closed the connection or did not answer in HTTP"
    return "the request to the endpoint failed"


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
