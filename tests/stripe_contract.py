"""The Stripe contract: every request a ``StripeProvider`` sends in the suite, checked against the SDK.

The SDK's request types (``stripe.params.*Params``, TypedDicts generated from Stripe's OpenAPI
spec for the API version the SDK pins) are the current contract. ``tests/conftest.py`` wraps the
HTTP client of every ``StripeProvider`` built during a test in a ``RecordingHTTPClient`` (a fake
client of a unit test, or the SDK's real one talking to localstripe), and at the end of each test
checks what was sent:

- each request goes to an endpoint in ``ENDPOINTS`` (an endpoint the project calls without
  mapping it here fails), and every form or query field, nested ones included
  (``line_items[0][price_data][unit_amount]``), is a field of that endpoint's params type whose
  value has its type; required fields are present;
- a POST carries the caller's idempotency key, never one the SDK made up;
- within one test, an idempotency key always carries the same request (Stripe refuses a key
  reused with other parameters: 400 ``idempotency_error``).

localstripe speaks an old API version and accepts parameters Stripe removed; these checks are what
make an SDK upgrade that drops a parameter fail here rather than in production.
"""

from __future__ import annotations

import inspect
import re
import threading
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
import stripe._request_options
import stripe.params
import stripe.params.checkout
import typing_extensions
from stripe._api_version import _ApiVersion
from stripe._stripe_object import UntypedStripeObject

API_VERSION = _ApiVersion.CURRENT
LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$")
SDK_MADE_KEY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Keys that are request options (sent as headers), not form fields: a params type inherits them.
OPTION_KEYS = frozenset(stripe._request_options.RequestOptions.__annotations__)


@dataclass(frozen=True)
class Endpoint:
    """One Stripe call the project makes: the SDK call, its HTTP request and its params type."""

    call: str  # as written after ``client.v1.``: "checkout.sessions.create"
    method: str
    path: str  # the SDK's path template: "/v1/payment_intents/{intent}/cancel"
    params: type

    def matches(self, method: str, path: str) -> bool:
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(self.path))
        return method == self.method and re.fullmatch(pattern, path) is not None


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("customers.create", "POST", "/v1/customers", stripe.params.CustomerCreateParams),
    Endpoint(
        "checkout.sessions.create",
        "POST",
        "/v1/checkout/sessions",
        stripe.params.checkout.SessionCreateParams,
    ),
    Endpoint(
        "checkout.sessions.retrieve",
        "GET",
        "/v1/checkout/sessions/{session}",
        stripe.params.checkout.SessionRetrieveParams,
    ),
    Endpoint(
        "checkout.sessions.expire",
        "POST",
        "/v1/checkout/sessions/{session}/expire",
        stripe.params.checkout.SessionExpireParams,
    ),
    Endpoint(
        "payment_intents.create", "POST", "/v1/payment_intents", stripe.params.PaymentIntentCreateParams
    ),
    Endpoint("payment_intents.list", "GET", "/v1/payment_intents", stripe.params.PaymentIntentListParams),
    Endpoint(
        "payment_intents.retrieve",
        "GET",
        "/v1/payment_intents/{intent}",
        stripe.params.PaymentIntentRetrieveParams,
    ),
    Endpoint(
        "payment_intents.cancel",
        "POST",
        "/v1/payment_intents/{intent}/cancel",
        stripe.params.PaymentIntentCancelParams,
    ),
    Endpoint("refunds.create", "POST", "/v1/refunds", stripe.params.RefundCreateParams),
    Endpoint("refunds.list", "GET", "/v1/refunds", stripe.params.RefundListParams),
    Endpoint("charges.update", "POST", "/v1/charges/{charge}", stripe.params.ChargeUpdateParams),
    Endpoint(
        "payment_methods.detach",
        "POST",
        "/v1/payment_methods/{payment_method}/detach",
        stripe.params.PaymentMethodDetachParams,
    ),
    Endpoint(
        "payment_methods.retrieve",
        "GET",
        "/v1/payment_methods/{payment_method}",
        stripe.params.PaymentMethodRetrieveParams,
    ),
)


def endpoint_for(method: str, path: str) -> Endpoint | None:
    return next((e for e in ENDPOINTS if e.matches(method, path)), None)


# --- The SDK's own description of a call -------------------------------------------------------


def sdk_request(call: str) -> tuple[str, str, str]:
    """(HTTP method, path template, params type name) of ``client.v1.<call>``, read from the SDK."""
    client = stripe.StripeClient("sk_test_contract")
    *resources, verb = call.split(".")
    service: Any = client.v1
    for name in resources:
        service = getattr(service, name)
    method = getattr(type(service), verb)
    source = inspect.getsource(method)
    found = re.search(r'self\._request\(\s*"(\w+)",\s*"([^"]+)"', source)
    assert found is not None, f"the SDK's {call} sends no request we can read"
    annotation = str(inspect.signature(method).parameters["params"].annotation)
    named = re.search(r"\w+Params", annotation)
    assert named is not None, f"the SDK's {call} takes no params type ({annotation})"
    return found.group(1).upper(), found.group(2), named.group(0)


# --- Checking a form against a params type -----------------------------------------------------


class _Names(dict[str, Any]):
    """Where a params annotation's names are found: ``stripe.params`` (loaded lazily), then the
    modules whose names the SDK imports only under ``TYPE_CHECKING``."""

    _MODULES = (stripe.params, stripe.params.checkout, stripe, typing, stripe._request_options)

    def __missing__(self, name: str) -> Any:
        for module in self._MODULES:
            try:
                return getattr(module, name)
            except AttributeError:
                continue
        raise KeyError(name)


_HINTS: dict[type, dict[str, Any]] = {}


def hints(params: type) -> dict[str, Any]:
    """The fields of a params TypedDict with their resolved types (request options left out)."""
    if params not in _HINTS:
        resolved = typing_extensions.get_type_hints(params, localns=_Names(), include_extras=True)
        _HINTS[params] = {k: v for k, v in resolved.items() if k not in OPTION_KEYS}
    return _HINTS[params]


def split_key(key: str) -> list[str] | None:
    """``a[b][0][c]`` as ``["a", "b", "0", "c"]`` (None: not a form key)."""
    found = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
    if found is None:
        return None
    return [found.group(1), *re.findall(r"\[([^\[\]]*)\]", found.group(2))]


def _unwrap(tp: Any) -> Any:
    while typing_extensions.get_origin(tp) in (
        typing_extensions.NotRequired,
        typing_extensions.Required,
        typing.NotRequired,
        typing.Required,
    ):
        (tp,) = typing_extensions.get_args(tp)
    return tp


def _scalar_fits(tp: Any, value: str) -> bool:
    if tp is str or tp is Any:
        return True
    if tp is bool:
        return value in ("true", "false")
    if tp is int:
        return re.fullmatch(r"-?\d+", value) is not None
    if tp in (float, Decimal):
        try:
            Decimal(value)
        except InvalidOperation:
            return False
        return True
    return False


@dataclass
class _Fit:
    """A field's path through the types: None when it fits, else why not; and the TypedDicts it
    went through (each with the form prefix it sits at), to check their required keys."""

    problem: str | None
    visited: list[tuple[str, type, str]] = field(default_factory=list)  # (prefix, TypedDict, key)


def _fit(tp: Any, segments: list[str], value: str, prefix: str) -> _Fit:
    tp = _unwrap(tp)
    origin = typing_extensions.get_origin(tp)
    args = typing_extensions.get_args(tp)
    if tp is Any:
        return _Fit(None)
    if origin in (typing.Union, types.UnionType):
        problems = []
        for member in args:
            fit = _fit(member, segments, value, prefix)
            if fit.problem is None:
                return fit
            problems.append(fit.problem)
        return _Fit(min(problems, key=len))
    if origin in (typing.Literal, typing_extensions.Literal):
        if segments:
            return _Fit(f"{prefix} is a value, not an object")
        if value in [str(a).lower() if isinstance(a, bool) else str(a) for a in args]:
            return _Fit(None)
        return _Fit(f"{prefix}={value!r} is not one of {list(args)}")
    if typing_extensions.is_typeddict(tp):
        if not segments:
            return _Fit(f"{prefix} is an object ({tp.__name__}), sent as a value")
        fields = hints(tp)
        key, rest = segments[0], segments[1:]
        if key not in fields:
            return _Fit(f"{prefix}[{key}] is not a field of {tp.__name__} (Stripe API {API_VERSION})")
        fit = _fit(fields[key], rest, value, f"{prefix}[{key}]")
        if fit.problem is None:
            fit.visited.append((prefix, tp, key))
        return fit
    if origin is list:
        if not segments or not segments[0].isdigit():
            return _Fit(f"{prefix} is a list: its items are sent as {prefix}[0], {prefix}[1], ...")
        return _fit(args[0], segments[1:], value, f"{prefix}[{segments[0]}]")
    if origin is dict or UntypedStripeObject in (origin, tp):
        if not segments:
            return _Fit(f"{prefix} is a map, sent as a value")
        inner = args[-1] if args else Any
        return _fit(inner, segments[1:], value, f"{prefix}[{segments[0]}]")
    if segments:
        return _Fit(f"{prefix} is a value ({getattr(tp, '__name__', tp)}), sent as an object")
    if _scalar_fits(tp, value):
        return _Fit(None)
    return _Fit(f"{prefix}={value!r} is not of type {getattr(tp, '__name__', tp)}")


def check_fields(params: type, fields: list[tuple[str, str]]) -> list[str]:
    """What in ``fields`` (a request's form or query, decoded) the params type does not allow."""
    problems: list[str] = []
    seen: dict[tuple[str, type], set[str]] = {}
    for key, value in fields:
        segments = split_key(key)
        if segments is None:
            problems.append(f"{key!r} is not a form field name")
            continue
        top = hints(params)
        if segments[0] not in top:
            problems.append(f"{segments[0]} is not a field of {params.__name__} (Stripe API {API_VERSION})")
            continue
        fit = _fit(top[segments[0]], segments[1:], value, segments[0])
        if fit.problem is not None:
            problems.append(fit.problem)
            continue
        seen.setdefault(("", params), set()).add(segments[0])
        for prefix, typed, name in fit.visited:
            seen.setdefault((prefix, typed), set()).add(name)
    seen.setdefault(("", params), set())
    for (prefix, typed), names in seen.items():
        required = set(getattr(typed, "__required_keys__", ())) - OPTION_KEYS
        for name in sorted(required - names):
            where = f"{prefix}[{name}]" if prefix else name
            problems.append(f"{where} is required by {typed.__name__}")
    return problems


# --- Recording what the provider sends ---------------------------------------------------------


@dataclass(frozen=True)
class SentRequest:
    method: str
    host: str
    path: str
    idempotency_key: str
    fields: tuple[tuple[str, str], ...]

    def label(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Journal:
    """The requests the providers sent during one test."""

    name: str
    requests: list[SentRequest] = field(default_factory=list)
    off_loopback: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: SentRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def problems(self) -> list[str]:
        with self._lock:
            sent = list(self.requests)
        found = list(self.off_loopback)
        for request in sent:
            endpoint = endpoint_for(request.method, request.path)
            if endpoint is None:
                found.append(
                    f"{request.label()}: not an endpoint tests/stripe_contract.py maps to its params type"
                )
                continue
            found += [f"{request.label()}: {p}" for p in check_fields(endpoint.params, list(request.fields))]
            if request.method == "POST" and SDK_MADE_KEY.match(request.idempotency_key):
                found.append(f"{request.label()}: sent without the caller's idempotency key")
        first: dict[str, SentRequest] = {}
        for request in sent:
            if not request.idempotency_key:
                continue
            before = first.setdefault(request.idempotency_key, request)
            if (before.method, before.path, before.fields) != (request.method, request.path, request.fields):
                found.append(
                    f"idempotency key {request.idempotency_key!r} sent twice with different requests "
                    f"(Stripe answers 400 idempotency_error): {_difference(before, request)}"
                )
        return found


def _difference(first: SentRequest, then: SentRequest) -> str:
    if (first.method, first.path) != (then.method, then.path):
        return f"{first.label()} then {then.label()}"
    before, after = dict(first.fields), dict(then.fields)
    changes = [
        f"{key}: {before.get(key, '(absent)')!r} -> {after.get(key, '(absent)')!r}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
    return "; ".join(changes)


class Contract:
    """The journal of the test running now (requests sent between tests go to a throwaway one)."""

    def __init__(self) -> None:
        self.journal = Journal("between tests")

    def begin(self, name: str) -> Journal:
        self.journal = Journal(name)
        return self.journal

    def end(self) -> Journal:
        journal, self.journal = self.journal, Journal("between tests")
        return journal


CONTRACT = Contract()


def _form(method: str, url: str, post_data: Any) -> list[tuple[str, str]]:
    if method == "POST":
        raw = post_data.decode() if isinstance(post_data, bytes) else str(post_data or "")
    else:
        raw = urlsplit(url).query
    return parse_qsl(raw, keep_blank_values=True)


class RecordingHTTPClient(stripe.HTTPClient):
    """Passes every request to ``inner`` and writes it into the current test's journal first.

    ``guard_loopback``: refuse a request to any host but loopback (set when ``inner`` is the SDK's
    real network client: the tests talk to localstripe on 127.0.0.1, never to Stripe).
    """

    name = "contract-recorder"

    def __init__(self, inner: stripe.HTTPClient, *, guard_loopback: bool) -> None:
        super().__init__()
        self.inner = inner
        self.guard_loopback = guard_loopback

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        verb = method.upper()
        parts = urlsplit(url)
        journal = CONTRACT.journal
        if self.guard_loopback and not LOOPBACK.match(parts.hostname or ""):
            journal.off_loopback.append(f"{verb} {url}: a test sent a request off this machine")
            raise stripe.APIConnectionError(f"tests talk to loopback only, not to {parts.hostname}")
        journal.add(
            SentRequest(
                method=verb,
                host=parts.netloc,
                path=parts.path,
                idempotency_key=str((headers or {}).get("Idempotency-Key", "")),
                fields=tuple(_form(verb, url, post_data)),
            )
        )
        return self.inner.request(method, url, headers, post_data)

    def close(self) -> None:
        self.inner.close()


@contextmanager
def recording_providers() -> Iterator[None]:
    """Every ``StripeProvider`` built inside sends through a ``RecordingHTTPClient``."""
    from core.payments.stripe_provider import StripeProvider

    original = StripeProvider.__init__

    def init(self: StripeProvider, *args: Any, **kwargs: Any) -> None:
        given = kwargs.get("http_client")
        inner = given if given is not None else stripe.new_default_http_client()
        kwargs["http_client"] = RecordingHTTPClient(inner, guard_loopback=given is None)
        original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StripeProvider, "__init__", init)
        yield
