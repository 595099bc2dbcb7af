"""HTTP routes of payments, served beside the API and the portal.

    POST /api/webhooks/stripe                 Stripe's (or the sandbox's) signed events
    GET  /payments/authenticate/{token}       3-D Secure with Stripe.js, for a payment the bank holds
    GET|POST /payments/sandbox/...            the sandbox's checkout, 3-D Secure and receipt pages

The webhook route reads at most 1 MiB, checks the ``Stripe-Signature`` header against
the webhook secret and answers as ``core.payments.webhook`` says: 400 for an unsigned,
wrongly signed or stale event, 200 for anything it recorded (known type or not). A
database that is busy is a 503 (Stripe retries); a bug is a 500, also retried.
Place these routes before the API's ``/api/{rest:path}`` fallback.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.api.body import read_body
from core.api.errors import APIJSONResponse, RequestError, error_response
from core.api.html_page import page as _page
from core.api.sandbox_pages import sandbox_routes
from core.db import unit_of_work
from core.db.models import TopUp
from core.errors import BillingError
from core.payments import states
from core.payments.provider import ProviderError
from core.payments.runtime import Payments
from core.payments.stripe_provider import StripeProvider
from core.payments.top_ups import return_url
from core.payments.webhook import MAX_BODY_BYTES, receive_webhook

log = logging.getLogger("meterline.payments")

WEBHOOK_PATH = "/api/webhooks/stripe"


def payment_routes(payments_provider: Callable[[], Payments]) -> list[BaseRoute]:
    """The webhook route, the 3-D Secure page and the sandbox pages; ``payments_provider`` per request."""

    async def stripe_webhook(request: Request) -> Response:
        if request.method != "POST":  # answered here: the API's /api/ fallback does not know this route
            response = error_response(405, "method_not_allowed", f"use POST on {WEBHOOK_PATH}")
            response.headers["Allow"] = "POST"
            return response
        try:
            body = await read_body(request, limit=MAX_BODY_BYTES)
            payments = payments_provider()
            if payments.provider is None:
                return error_response(503, "not_configured", "payments are not configured on this server")
            reply = await run_in_threadpool(
                receive_webhook,
                payments.engine,
                payments.provider,
                payload=body,
                signature=request.headers.get("stripe-signature"),
                secret=payments.webhook_secret,
                clock=payments.clock,
            )
        except RequestError as error:
            return error.response()
        except BillingError as error:  # the server's payment settings cannot be read: Stripe retries
            log.error("webhook refused: %s", error.message)
            return error_response(503, error.code, error.message, error.field)
        except OperationalError:
            log.exception("database unavailable during a webhook")
            return error_response(503, "unavailable", "the database is busy or unavailable; retry shortly")
        return APIJSONResponse(reply.body, status_code=reply.status)

    def authentication_page(token: str) -> Response:
        payments = payments_provider()
        provider = payments.provider
        if not isinstance(provider, StripeProvider) or len(token) > 64:
            return HTMLResponse(
                _page("Not found", "<p>There is nothing to confirm here.</p>"), status_code=404
            )
        with unit_of_work(payments.engine) as session:
            top_up = session.scalar(select(TopUp).where(TopUp.access_token == token))
            found = None if top_up is None else (top_up.id, top_up.state, top_up.payment_intent_id)
        if found is None:
            return HTMLResponse(
                _page("Not found", "<p>There is nothing to confirm here.</p>"), status_code=404
            )
        top_up_id, state, intent_id = found
        back = return_url(f"{payments.config.public_url}/buy_credits", top_up_id)
        if state != states.PENDING_PAYMENT or not intent_id:
            return RedirectResponse(back, status_code=303)
        payment = provider.retrieve_payment(intent_id)
        if payment.status != "requires_action" or payment.action is None:
            return RedirectResponse(back, status_code=303)
        if not payments.config.publishable_key:
            return HTMLResponse(
                _page(
                    "Confirmation not available",
                    "<p>Your bank asks you to confirm this payment, but this server has no "
                    "<code>STRIPE_PUBLISHABLE_KEY</code> to load Stripe's confirmation with.</p>",
                ),
                status_code=503,
            )
        script = _STRIPE_JS.format(
            key=json.dumps(payments.config.publishable_key),
            secret=json.dumps(payment.action.client_secret),
            method=json.dumps(payment.action.payment_method_id),
            confirm=json.dumps(payment.action.confirm),
            back=json.dumps(back),
        )
        body = (
            "<p>Your bank asks you to confirm this payment. A window from your bank opens; "
            "when you are done you return to Meterline.</p>"
            f'<p id="status">Opening your bank\'s confirmation…</p>'
            f'<script src="{html.escape(payments.config.stripe_js_url)}"></script><script>{script}</script>'
        )
        return HTMLResponse(_page("Confirm your payment", body))

    async def authenticate(request: Request) -> Response:
        try:
            return await run_in_threadpool(authentication_page, request.path_params["token"])
        except ProviderError as error:
            return HTMLResponse(
                _page("Try again shortly", f"<p>{html.escape(error.message)}</p>"), status_code=502
            )

    return [
        Route(WEBHOOK_PATH, stripe_webhook, methods=["GET", "PUT", "PATCH", "DELETE", "POST"]),
        Route("/payments/authenticate/{token}", authenticate, methods=["GET"]),
        *sandbox_routes(payments_provider),
    ]


_STRIPE_JS = """
(async () => {{
  const stripe = Stripe({key});
  const secret = {secret}, method = {method}, confirm = {confirm}, back = {back};
  let result;
  if (confirm) {{  // an off-session payment the bank refused without the customer: confirm it with them
    result = await stripe.confirmCardPayment(secret, {{payment_method: method}});
  }} else if (stripe.handleNextAction) {{
    result = await stripe.handleNextAction({{clientSecret: secret}});
  }} else {{  // older Stripe.js, and localstripe's stand-in
    result = await stripe.confirmCardPayment(secret);
  }}
  if (result && result.error) {{
    document.getElementById("status").textContent = result.error.message || "The confirmation failed.";
  }}
  window.location.href = back;
}})();
"""
