"""Customer API keys: an account's own secrets for the Usage & Cost API, with scopes, stored as
hashes, revocable (distinct from the company's server token and from the ``api_key`` usage dimension)."""

from core.customer_keys.secret import new_secret, secret_digest
from core.customer_keys.service import (
    BALANCE_READ,
    DEFAULT_SCOPES,
    SCOPE_HELP,
    SCOPES,
    SPEND_WRITE,
    USAGE_READ,
    CustomerKeyView,
    NewCustomerKey,
    create_customer_key,
    key_for_secret,
    list_customer_keys,
    note_key_used,
    revoke_customer_key,
)

__all__ = [
    "BALANCE_READ",
    "DEFAULT_SCOPES",
    "SCOPES",
    "SCOPE_HELP",
    "SPEND_WRITE",
    "USAGE_READ",
    "CustomerKeyView",
    "NewCustomerKey",
    "create_customer_key",
    "key_for_secret",
    "list_customer_keys",
    "new_secret",
    "note_key_used",
    "revoke_customer_key",
    "secret_digest",
]
