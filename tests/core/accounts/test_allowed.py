"""``allowed`` answers "may this role do X" from the same table the core enforces, without writing:
what pages use to offer only the controls a person can use. The table is written out by hand from
docs/domain.md (not derived from the code's), so a changed rule fails here as in the write tests."""

from __future__ import annotations

import pytest

from core.accounts import PERMISSIONS, allowed
from core.accounts.permissions import CREDITS_BUY

ROLES = ("owner", "admin", "billing", "viewer")
TABLE = {  # action: the member roles that may do it
    "alerts.edit": {"owner", "admin"},
    "webhooks.edit": {"owner", "admin"},
    "caps.edit": {"owner", "admin"},
    "overdraft.edit": {"owner", "admin"},
    "credits.buy": {"owner", "admin", "billing"},
    "cards.remove": {"owner", "admin", "billing"},
    "auto_recharge.edit": {"owner", "admin", "billing"},
    "notifications.read": {"owner", "admin", "billing", "viewer"},
    "members.edit": {"owner", "admin"},
    "owners.edit": {"owner"},
    "api_keys.edit": {"owner", "admin", "billing"},
}
SUPPORT_CONSOLE = {"caps.edit"}


def test_the_table_covers_every_action() -> None:
    assert set(TABLE) == set(PERMISSIONS)


@pytest.mark.parametrize("action", sorted(TABLE))
@pytest.mark.parametrize("role", ROLES)
def test_a_member_may_do_what_the_table_says(action: str, role: str) -> None:
    assert allowed(role, action) is (role in TABLE[action])
    assert allowed(role, PERMISSIONS[action]) is (role in TABLE[action])


@pytest.mark.parametrize("action", sorted(TABLE))
def test_a_customer_view_is_offered_nothing_and_the_system_everything(action: str) -> None:
    assert not allowed("owner", action, kind="view_as")  # even an agent who is the account's owner
    assert allowed(None, action, kind="system")
    assert allowed(None, action, kind="agent") is (action in SUPPORT_CONSOLE)


def test_a_non_member_or_an_agent_reading_is_offered_nothing() -> None:
    assert not allowed(None, CREDITS_BUY)
    assert not allowed("support", CREDITS_BUY)  # the role a support agent's read carries


def test_an_unknown_action_is_a_mistake_not_a_quiet_no() -> None:
    with pytest.raises(KeyError):
        allowed("owner", "credits.steal")
