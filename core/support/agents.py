"""Support agents: who they are, their level, and the limits that bind them.

An agent's level never comes from the database: it comes from the sign-in (the ``roles``
claim of the ID token) or from the allow-lists in the environment, as the portal's
support flag always has.

    support        reads every account; goodwill or promotional grants up to the support limit;
                   voids grants; re-runs payment reconciliation; resends receipts; approves
                   nothing above its limit
    support_admin  everything above, plus refunds, cap changes, suspending and reactivating
                   accounts, grants up to the approval threshold, and approving others' grants

A grant above the agent's own limit becomes a request that a *second* agent approves
(never the one who asked); a request above the ``support`` limit needs a ``support_admin``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from core.errors import PermissionDenied, ValidationError
from core.money import NANOS_PER_CREDIT

Level = Literal["support", "support_admin"]
SUPPORT: Level = "support"
SUPPORT_ADMIN: Level = "support_admin"
LEVEL_RANK = {SUPPORT: 1, SUPPORT_ADMIN: 2}

DEFAULT_SUPPORT_GRANT_LIMIT_CREDITS = 100
DEFAULT_APPROVAL_THRESHOLD_CREDITS = 1_000


@dataclass(frozen=True)
class Agent:
    """A support agent acting now: passed to every support action, which checks its level."""

    email: str
    level: Level

    @property
    def is_admin(self) -> bool:
        return self.level == SUPPORT_ADMIN


@dataclass(frozen=True)
class SupportLimits:
    """Grant limits in nanos: what each level may grant without a second agent."""

    support_grant_nanos: int  # a ``support`` agent grants up to this alone
    approval_threshold_nanos: int  # above this every grant needs a second agent

    def own_limit_nanos(self, agent: Agent) -> int:
        return self.approval_threshold_nanos if agent.is_admin else self.support_grant_nanos


def _emails(raw: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in raw.split(",") if part.strip())


def _credits(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default * NANOS_PER_CREDIT
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be a whole number of credits", field=name) from None
    if value < 0:
        raise ValidationError(f"{name} cannot be negative", field=name)
    return value * NANOS_PER_CREDIT


def support_limits(env: Mapping[str, str] | None = None) -> SupportLimits:
    """The limits from ``METERLINE_SUPPORT_GRANT_LIMIT`` and ``METERLINE_SUPPORT_APPROVAL_THRESHOLD``
    (whole credits; defaults 100 and 1,000)."""
    env = os.environ if env is None else env
    support = _credits(env, "METERLINE_SUPPORT_GRANT_LIMIT", DEFAULT_SUPPORT_GRANT_LIMIT_CREDITS)
    threshold = _credits(env, "METERLINE_SUPPORT_APPROVAL_THRESHOLD", DEFAULT_APPROVAL_THRESHOLD_CREDITS)
    return SupportLimits(support_grant_nanos=support, approval_threshold_nanos=max(support, threshold))


def _roles(claims: Mapping[str, object]) -> set[str]:
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = roles.replace(",", " ").split()
    return {str(role) for role in roles} if isinstance(roles, Iterable) else set()


def agent_level(
    email: str, claims: Mapping[str, object], env: Mapping[str, str] | None = None
) -> Level | None:
    """The support level of this sign-in, or None for a customer.

    ``support_admin`` from the ``roles`` claim or ``METERLINE_SUPPORT_ADMIN_EMAILS``;
    ``support`` from the claim or ``METERLINE_SUPPORT_EMAILS``.
    """
    env = os.environ if env is None else env
    normalized = email.strip().lower()
    roles = _roles(claims)
    if SUPPORT_ADMIN in roles or normalized in _emails(env.get("METERLINE_SUPPORT_ADMIN_EMAILS", "")):
        return SUPPORT_ADMIN
    if SUPPORT in roles or normalized in _emails(env.get("METERLINE_SUPPORT_EMAILS", "")):
        return SUPPORT
    return None


def require_agent(agent: object, level: Level = SUPPORT) -> Agent:
    """The agent if it has at least ``level``; PermissionDenied for anyone else (a customer included)."""
    if not isinstance(agent, Agent) or agent.level not in LEVEL_RANK:
        raise PermissionDenied("only support agents may do this", field="agent")
    if LEVEL_RANK[agent.level] < LEVEL_RANK[level]:
        raise PermissionDenied(f"this needs the {level} role; you are {agent.level}", field="role")
    return agent
