"""``decide`` with stacked caps, pure: every applicable cap must pass, the one with the least
room binds (and names itself and its reset), and holds count per project, meter and API key."""

from __future__ import annotations

from datetime import UTC, datetime

from core.spend.authorize import AccountSnapshot, CapSnapshot, binding_cap, decide
from core.spend.reservations import Reservations
from tests.core.spend.spend_setup import CREDIT

AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY_RESET = datetime(2026, 11, 21, tzinfo=UTC)
WEEK_RESET = datetime(2026, 11, 23, tzinfo=UTC)
MONTH_RESET = datetime(2026, 12, 1, tzinfo=UTC)
RESETS = {"day": DAY_RESET, "week": WEEK_RESET, "month": MONTH_RESET}


def cap(cap_id: int, scope: str, value: str, period: str, limit: int, spent: int = 0) -> CapSnapshot:
    return CapSnapshot(cap_id, scope, value, period, limit * CREDIT, spent * CREDIT, RESETS[period])


def snapshot(*caps: CapSnapshot, balance: int = 1_000, status: str = "active") -> AccountSnapshot:
    return AccountSnapshot("acc_a", status, balance * CREDIT, 0, caps, AS_OF, 0.0)


STACK = (
    cap(1, "account", "", "month", 500, 100),  # 400 left
    cap(2, "project", "web", "week", 100, 40),  # 60 left
    cap(3, "api_key", "ci", "day", 10, 8),  # 2 left
    cap(4, "api_key", "ci", "month", 300, 50),  # 250 left
    cap(5, "api_key", "prod", "day", 50, 50),  # none left
    cap(6, "meter", "requests", "month", 200, 195),  # 5 left
)


def test_the_least_room_binds_and_names_itself() -> None:
    decision = decide(snapshot(*STACK), project="web", api_key="ci", cost_nanos=CREDIT)
    assert (decision.allowed, decision.remaining_nanos, decision.resets_at) == (True, 2 * CREDIT, DAY_RESET)
    assert decision.limit is not None
    assert (decision.limit.cap.cap_id, decision.limit.cap.period) == (3, "day")
    assert decision.as_of == AS_OF
    refused = decide(snapshot(*STACK), project="web", api_key="ci", cost_nanos=3 * CREDIT)
    assert (refused.allowed, refused.reason, refused.remaining_nanos) == (
        False,
        "hard_cap_reached",
        2 * CREDIT,
    )
    assert refused.limit is not None and refused.limit.cap.cap_id == 3


def test_only_the_caps_a_request_names_apply() -> None:
    # Another key of the same account: its own cap is full, ci's is not consulted.
    prod = decide(snapshot(*STACK), project="web", api_key="prod")
    assert (prod.allowed, prod.reason, prod.limit and prod.limit.cap.cap_id) == (False, "hard_cap_reached", 5)
    # No key named: no key's cap; the project's week binds.
    web = decide(snapshot(*STACK), project="web", cost_nanos=60 * CREDIT)
    assert (web.allowed, web.limit and web.limit.cap.cap_id, web.resets_at) == (True, 2, WEEK_RESET)
    # Nothing named: the account's month.
    bare = decide(snapshot(*STACK))
    assert (bare.remaining_nanos, bare.limit and bare.limit.cap.cap_id) == (400 * CREDIT, 1)
    meter = decide(snapshot(*STACK), meter="requests", api_key="ci")
    assert (meter.remaining_nanos, meter.limit and meter.limit.cap.cap_id) == (2 * CREDIT, 3)
    assert decide(snapshot(*STACK), meter="requests", api_key="ci", cost_nanos=2 * CREDIT).allowed
    # No cap applies at all: no limit, no reset, the credits are the headroom.
    none = decide(snapshot(cap(7, "api_key", "other", "day", 1)), api_key="ci")
    assert (none.limit, none.resets_at, none.remaining_nanos) == (None, None, 1_000 * CREDIT)


def test_a_tie_goes_to_the_cap_that_resets_last() -> None:
    tied = (cap(1, "account", "", "day", 10, 5), cap(2, "api_key", "ci", "month", 5, 0))
    binding = binding_cap(tied, api_key="ci")
    assert binding is not None and (binding.cap.cap_id, binding.room_nanos) == (2, 5 * CREDIT)
    assert decide(snapshot(*tied), api_key="ci").resets_at == MONTH_RESET


def test_credits_and_suspension_keep_their_meaning_and_still_name_the_binding_cap() -> None:
    poor = decide(snapshot(*STACK, balance=1), project="web", api_key="ci", cost_nanos=CREDIT + 1)
    assert (poor.reason, poor.remaining_nanos, poor.limit and poor.limit.cap.cap_id) == (
        "insufficient_credits",
        CREDIT,
        3,
    )
    suspended = decide(snapshot(*STACK, status="suspended"), api_key="ci")
    assert (suspended.reason, suspended.remaining_nanos) == ("account_suspended", 0)


def test_held_reservations_count_per_key() -> None:
    held = Reservations()
    held.reserve("acc_a", 1.0, "web", None, CREDIT, api_key="ci")
    held.reserve("acc_a", 1.0, "web", None, 3 * CREDIT, api_key="other")
    now = held.held("acc_a")
    assert now is not None and now.by_api_key == {"ci": CREDIT, "other": 3 * CREDIT}
    ci = decide(snapshot(*STACK), api_key="ci", held=now)
    assert ci.remaining_nanos == CREDIT  # 2 left on ci's day less the 1 held for ci
    assert ci.limit is not None and ci.limit.spent_nanos == 9 * CREDIT  # 8 spent + 1 held
    assert not decide(snapshot(*STACK), api_key="ci", cost_nanos=CREDIT + 1, held=now).allowed
    # The other key's holds are not ci's, but count against the project and the account.
    web = decide(snapshot(*STACK), project="web", held=now)
    assert web.remaining_nanos == 56 * CREDIT
    assert held.release("acc_a", 2.0) == 4 * CREDIT
    assert held.held("acc_a") is None
