"""The sandbox's pages: what Stripe's hosted checkout, 3-D Secure and receipt pages do, locally.

    GET  /payments/sandbox/checkout/{session_id}       pay with a test card (or go back)
    POST /payments/sandbox/checkout/{session_id}       card=<test number> | action=cancel
    GET  /payments/sandbox/authenticate/{intent_id}    the bank's 3-D Secure question
    POST /payments/sandbox/authenticate/{intent_id}    approve=1 | approve=0
    GET  /payments/sandbox/receipt/{intent_id}         a receipt

Paying changes the sandbox's objects and sends the signed webhook events (to the same
handler as Stripe's); the browser then goes to the session's success URL, where the
portal asks the provider what happened. Ids are long and random (or keyed with the
sandbox's secret), as Stripe's are. These pages exist only while payments run in the
sandbox; otherwise they are 404.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.api.body import read_body
from core.api.errors import RequestError
from core.api.html_page import page
from core.errors import BillingError
from core.payments.config import format_cents
from core.payments.runtime import Payments
from core.payments.sandbox import CARD_3DS, CARD_DECLINED, CARD_SUCCEEDS, TEST_CARDS, SandboxProvider

BANNER = (
    '<div class="banner">SANDBOX — Stripe test mode without Stripe. No real card is charged and no '
    "money moves.</div>"
)
FORM_LIMIT = 4096
_CARD_TEXT = {
    CARD_SUCCEEDS: "Pay with 4242 4242 4242 4242 — succeeds",
    CARD_DECLINED: "Pay with 4000 0000 0000 0341 — is declined",
    CARD_3DS: "Pay with 4000 0025 0000 3155 — asks for 3-D Secure",
}


def _not_found() -> HTMLResponse:
    return HTMLResponse(page("Not found", "<p>No such sandbox page.</p>", banner=BANNER), status_code=404)


def _checkout_page(session: dict[str, Any]) -> HTMLResponse:
    sandbox = session["_sandbox"]
    amount = format_cents(int(session["amount_total"]))
    title = html.escape(str(sandbox["product_name"]))
    if session["status"] == "complete":
        body = (
            f"<p>{title}</p><p class='amount'>{amount}</p><p>This checkout is paid.</p>"
            f"<p><a href='{html.escape(session['success_url'])}'>Back to Meterline</a></p>"
        )
        return HTMLResponse(page("Paid", body, banner=BANNER))
    if session["status"] == "expired":
        body = (
            "<p>This checkout expired (or was left); nothing was charged.</p>"
            f"<p><a href='{html.escape(session['cancel_url'])}'>Back to Meterline</a></p>"
        )
        return HTMLResponse(page("Checkout expired", body, banner=BANNER))
    error = f"<p class='error'>{html.escape(sandbox['error'])}</p>" if sandbox.get("error") else ""
    save = (
        "<p>This card will be saved for later purchases and auto-recharge.</p>"
        if sandbox.get("save_card")
        else ""
    )
    buttons = "".join(
        f'<button type="submit" name="card" value="{number}"{" class=primary" if i == 0 else ""}>'
        f"{html.escape(_CARD_TEXT[number])}</button>"
        for i, number in enumerate(TEST_CARDS)
    )
    body = (
        f"<p>{title}<br><small>{html.escape(str(sandbox['description']))}</small></p>"
        f"<p class='amount'>{amount}</p>{error}{save}"
        f'<form method="post">{buttons}'
        '<button type="submit" name="action" value="cancel">← Cancel and go back to Meterline</button></form>'
    )
    return HTMLResponse(page("Pay Meterline", body, banner=BANNER))


def _authenticate_page(intent: dict[str, Any]) -> HTMLResponse:
    amount = format_cents(int(intent["amount"]))
    if intent["status"] != "requires_action":
        back = html.escape(str(intent["_sandbox"].get("return_url") or "/"))
        return HTMLResponse(
            page(
                "Nothing to confirm",
                f"<p>This payment needs no confirmation.</p><p><a href='{back}'>Back</a></p>",
            )
        )
    body = (
        f"<p>Your bank asks you to confirm a payment of</p><p class='amount'>{amount}</p>"
        '<form method="post"><button class="primary" type="submit" name="approve" value="1">'
        "Complete authentication</button>"
        '<button type="submit" name="approve" value="0">Fail authentication</button></form>'
    )
    return HTMLResponse(page("3-D Secure", body, banner=BANNER))


def _receipt_page(intent: dict[str, Any]) -> HTMLResponse:
    charge = intent.get("latest_charge")
    if intent["status"] != "succeeded" or not isinstance(charge, dict):
        return _not_found()
    card = charge["payment_method_details"]["card"]
    refunded = int(charge["amount_refunded"])
    rows = [
        ("Amount paid", format_cents(int(charge["amount"]))),
        ("Card", f"{str(card['brand']).title()} •••• {card['last4']}"),
        ("Payment", html.escape(str(intent["id"]))),
    ]
    if refunded:
        rows.append(("Refunded", format_cents(refunded)))
    table = "".join(f"<tr><td>{label}</td><td>{value}</td></tr>" for label, value in rows)
    return HTMLResponse(page("Receipt", f"<table>{table}</table>", banner=BANNER))


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def sandbox_routes(payments_provider: Callable[[], Payments]) -> list[BaseRoute]:
    """The sandbox pages (404 unless payments run in the sandbox)."""

    def sandbox() -> SandboxProvider | None:
        provider = payments_provider().provider
        return provider if isinstance(provider, SandboxProvider) else None

    async def form(request: Request) -> dict[str, str]:
        body = await read_body(request, limit=FORM_LIMIT)
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
        return {key: values[0] for key, values in fields.items() if values}

    def show_checkout(session_id: str) -> Response:
        provider = sandbox()
        if provider is None:
            return _not_found()
        try:
            return _checkout_page(provider.checkout_session(session_id))
        except BillingError:
            return _not_found()

    def submit_checkout(session_id: str, fields: dict[str, str]) -> Response:
        provider = sandbox()
        if provider is None:
            return _not_found()
        try:
            session = provider.checkout_session(session_id)
            if fields.get("action") == "cancel":
                return _redirect(str(session["cancel_url"]))
            card = fields.get("card", "")
            if card not in TEST_CARDS:
                return _checkout_page(
                    {**session, "_sandbox": {**session["_sandbox"], "error": "Pick a test card."}}
                )
            session = provider.pay_checkout(session_id, card)
        except BillingError:
            return _not_found()
        if session["status"] == "complete":
            return _redirect(str(session["success_url"]))
        intent_id = session.get("payment_intent")
        if intent_id and provider.payment_intent(str(intent_id))["status"] == "requires_action":
            return _redirect(f"/payments/sandbox/authenticate/{intent_id}")
        return _checkout_page(session)

    def show_authenticate(intent_id: str) -> Response:
        provider = sandbox()
        if provider is None:
            return _not_found()
        try:
            return _authenticate_page(provider.payment_intent(intent_id))
        except BillingError:
            return _not_found()

    def submit_authenticate(intent_id: str, fields: dict[str, str]) -> Response:
        provider = sandbox()
        if provider is None:
            return _not_found()
        try:
            intent = provider.authenticate(intent_id, approve=fields.get("approve") == "1")
        except BillingError:
            return _not_found()
        session_id = intent["_sandbox"].get("session_id")
        if session_id and intent["status"] != "succeeded":
            return _redirect(f"/payments/sandbox/checkout/{session_id}")  # try another card, as on Stripe
        return _redirect(str(intent["_sandbox"].get("return_url") or "/"))

    def show_receipt(intent_id: str) -> Response:
        provider = sandbox()
        if provider is None:
            return _not_found()
        try:
            return _receipt_page(provider.payment_intent(intent_id))
        except BillingError:
            return _not_found()

    async def checkout(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        if request.method == "GET":
            return await run_in_threadpool(show_checkout, session_id)
        try:
            fields = await form(request)
        except RequestError as error:
            return error.response()
        return await run_in_threadpool(submit_checkout, session_id, fields)

    async def authenticate(request: Request) -> Response:
        intent_id = request.path_params["intent_id"]
        if request.method == "GET":
            return await run_in_threadpool(show_authenticate, intent_id)
        try:
            fields = await form(request)
        except RequestError as error:
            return error.response()
        return await run_in_threadpool(submit_authenticate, intent_id, fields)

    async def receipt(request: Request) -> Response:
        return await run_in_threadpool(show_receipt, request.path_params["intent_id"])

    return [
        Route("/payments/sandbox/checkout/{session_id}", checkout, methods=["GET", "POST"]),
        Route("/payments/sandbox/authenticate/{intent_id}", authenticate, methods=["GET", "POST"]),
        Route("/payments/sandbox/receipt/{intent_id}", receipt, methods=["GET"]),
    ]
