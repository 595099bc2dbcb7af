"""Start localstripe taught the one change of Stripe's API 2026-09-30.endive that our requests meet.

localstripe (1.15) speaks an API version from before endive: its PaymentIntent create still
takes ``payment_method_types`` and refuses ``allowed_payment_method_types`` ("Unexpected ...",
as it refuses every parameter it does not know). The SDK we install pins 2026-10-28.endive, where
Stripe refuses the first (400 ``payment_method_types_no_longer_supported``) and takes the second.
Here localstripe does the same: ``allowed_payment_method_types`` must be ``["card"]`` (localstripe
has only cards, so the filter changes nothing) and ``payment_method_types`` is refused.

This makes the localstripe tests send the requests production sends; it does not make localstripe
endive. What these tests still cannot show: that Stripe accepts each of our other parameters at
that version (the contract check in tests/stripe_contract.py does, against the SDK's types),
Checkout Sessions (localstripe has none), idempotency keys (it ignores them), refund events and
over-refund refusals (it sends none, accepts them), and the dispute statuses endive added.

Run as ``python tests/localstripe_endive.py --port N --from-scratch`` (localstripe's own options).
"""

from __future__ import annotations

from typing import Any

from localstripe.errors import UserError
from localstripe.resources import PaymentIntent
from localstripe.server import start

_create = PaymentIntent._api_create.__func__  # type: ignore[attr-defined]


def _api_create(
    cls: type[PaymentIntent],
    allowed_payment_method_types: Any = None,
    payment_method_types: Any = None,
    **data: Any,
) -> PaymentIntent:
    if payment_method_types is not None:
        raise UserError(
            400,
            "payment_method_types is not supported in API version 2026-09-30.endive and later: "
            "use allowed_payment_method_types",
            {"code": "payment_method_types_no_longer_supported", "param": "payment_method_types"},
        )
    if allowed_payment_method_types is not None and allowed_payment_method_types != ["card"]:
        raise UserError(400, "localstripe knows only cards", {"param": "allowed_payment_method_types"})
    return _create(cls, **data)


PaymentIntent._api_create = classmethod(_api_create)  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    start()
