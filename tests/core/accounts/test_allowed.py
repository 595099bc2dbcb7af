"""``allowed(role, action)``: the pure look-up pages ask before drawing a control, on the one table."""

from __future__ import annotations

import pytest

from core.accounts.permissions import PERMISSIONS, allowed
from core.db.models import ROLES

# Written out by hand from the table in core.accounts.permissions (a changed rule fails here).
EXPECTED = {
    "alerts.edit": {"owner", "admin"},
    "webhooks.edit": {"owner", "admin"},
    "caps.edit": {"owner", "admin"},
    "overdraft.edit": {"owner", "admin"},
    "credits.buy": {"owner", "admin", "billing"},
    "cards.remove": {"owner", "admin", "billing"},
    "auto_recharge.edit": {"owner", "admin", "billing"},
    "notifications.read": {"owner", "admin", "billing", "viewer"},
}


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_each_role_gets_the_documented_answer(action: str) -> None:
    assert {role for role in ROLES if allowed(role, action)} == EXPECTED[action]
    assert set(EXPECTED) == set(PERMISSIONS)


@pytest.mark.parametrize(
    ("role", "action"), [("support", "caps.edit"), ("owner", "ledger.rewrite"), ("", "")]
)
def test_an_unknown_role_or_action_is_refused(role: str, action: str) -> None:
    assert allowed(role, action) is False
