"""The cap stack as a customer thinks of it: for each API key and project, the budget that binds first.

A request made with API key K (or for project P) is held to every hard cap on the account and
every hard cap on K (or P), each over its own day, week or month; the one with the least room
stops it first. ``budget_stack`` finds that cap for the whole account (a request naming
neither), each key and each project, from the caps' statuses (``core.spend.caps.cap_statuses``):
pure, no reads. Soft caps only notify, so they never bind. A tie goes to the cap that resets
last, as ``POST /api/v1/authorize`` breaks it (``core.spend.authorize.binding_cap``); meter caps
are left out (they bind requests by meter, which is neither a key nor a project). The room here
is the snapshot's: authorize also subtracts what its process holds for requests just allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from core.spend.caps import CapStatus

KINDS = ("account", "api_key", "project")


@dataclass(frozen=True)
class BudgetLine:
    kind: str  # account | api_key | project
    value: str  # the key or project ('' for the account)
    binding: CapStatus | None  # the hard cap with the least room; None when no hard cap applies

    @property
    def room_nanos(self) -> int | None:
        return None if self.binding is None else self.binding.remaining_nanos

    @property
    def resets_at(self) -> datetime | None:
        return None if self.binding is None else self.binding.resets_at


def _room(status: CapStatus) -> int:
    return status.cap.limit_nanos - status.spent_nanos  # negative past the cap: binds hardest


def binding_status(statuses: Iterable[CapStatus], kind: str, value: str) -> CapStatus | None:
    """The hard cap that binds a request naming only ``value`` of ``kind`` (or nothing: account)."""
    best: CapStatus | None = None
    for status in statuses:
        cap = status.cap
        if cap.mode != "hard":
            continue
        if cap.scope != "account" and (cap.scope, cap.scope_value) != (kind, value):
            continue
        if (
            best is None
            or _room(status) < _room(best)
            or (_room(status) == _room(best) and status.resets_at > best.resets_at)
        ):
            best = status
    return best


def budget_stack(
    statuses: list[CapStatus], *, api_keys: Iterable[str], projects: Iterable[str]
) -> list[BudgetLine]:
    """The account's line, then one per API key and per project: those given (seen in usage) and
    those with a cap of their own, each sorted by name."""
    capped_keys = {s.cap.scope_value for s in statuses if s.cap.scope == "api_key"}
    capped_projects = {s.cap.scope_value for s in statuses if s.cap.scope == "project"}
    lines = [BudgetLine("account", "", binding_status(statuses, "account", ""))]
    for kind, values in (
        ("api_key", set(api_keys) | capped_keys),
        ("project", set(projects) | capped_projects),
    ):
        lines.extend(
            BudgetLine(kind, value, binding_status(statuses, kind, value)) for value in sorted(values)
        )
    return lines
