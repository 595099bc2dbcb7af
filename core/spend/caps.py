"""Spend caps (per account, project, meter or API key; per day, week or month; soft or hard) and
the overdraft allowance.

Caps stack: an account may have caps on several scopes and periods at once (a key may have a
daily and a monthly cap), one per (scope, value, period). Each cap measures its own period in
the account's time zone (the local day; the week from Monday; the calendar month) and starts
over at the local midnight that begins the next one (``CapStatus.resets_at``). An API key cap
names the key as usage carries it (the ``api_key`` dimension). A soft cap only notifies; a
hard cap makes ``POST /api/v1/authorize`` refuse with ``hard_cap_reached``. Usage past a cap
is always recorded (ingestion never drops it); how far it went past is the cap's
**overshoot**, shown on the Limits page.

Every write takes the acting ``Actor`` and checks, in its own transaction, that it may change caps
or the overdraft (owners and admins; caps also support admins through ``core.support``; the table
is in ``core.accounts.permissions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.permissions import CAPS_EDIT, OVERDRAFT_EDIT, Actor, require_permission
from core.db.models import (
    CAP_MODES,
    CAP_PERIODS,
    CAP_SCOPES,
    Account,
    AlertFiring,
    Meter,
    SpendCap,
    SpendSettings,
)
from core.errors import Conflict, NotFound, ValidationError
from core.money import credits_to_nanos
from core.spend.cap_spend import read_cells, spent_in
from core.spend.measure import CapPeriod, Scope, cap_period, meter_id_of
from core.text import single_line_text

MAX_CAPS_PER_ACCOUNT = 50
MAX_NANOS = 10**18
PERIOD_LABELS = {"day": "daily", "week": "weekly", "month": "monthly"}
PERIOD_NOUNS = {"day": "today", "week": "this week", "month": "this month"}


@dataclass(frozen=True)
class CapView:
    cap_id: int
    account_id: str
    scope: str
    scope_value: str
    period: str  # day | week | month
    limit_nanos: int
    mode: str
    state: str
    created_by: str
    created_at: datetime

    @property
    def scope_label(self) -> str:
        return Scope(self.scope, self.scope_value).describe()

    @property
    def period_label(self) -> str:
        return PERIOD_LABELS[self.period]


@dataclass(frozen=True)
class CapStatus:
    """A cap with its own period's spend in its scope."""

    cap: CapView
    spent_nanos: int
    period: CapPeriod  # the cap's day, week or month containing the moment asked about
    reached_at: datetime | None  # when it last fired this period, if it did

    @property
    def resets_at(self) -> datetime:
        """When this cap starts over (local midnight after its period, in UTC)."""
        return self.period.resets_at

    @property
    def remaining_nanos(self) -> int:
        return max(0, self.cap.limit_nanos - self.spent_nanos)

    @property
    def overshoot_nanos(self) -> int:
        """Usage recorded past the cap (it is never dropped)."""
        return max(0, self.spent_nanos - self.cap.limit_nanos)


def _cap_view(cap: SpendCap) -> CapView:
    return CapView(
        cap.id,
        cap.account_id,
        cap.scope,
        cap.scope_value,
        cap.period,
        cap.limit_nanos,
        cap.mode,
        cap.state,
        cap.created_by,
        cap.created_at,
    )


def _limit(value: object) -> int:
    try:
        nanos = credits_to_nanos(value, field="limit")
    except ValueError as error:
        raise ValidationError(str(error), code="not_a_number", field="limit") from None
    if nanos <= 0:
        raise ValidationError("the cap must be more than zero", code="must_be_positive", field="limit")
    if nanos > MAX_NANOS:
        raise ValidationError("the cap is too large", code="too_large", field="limit")
    return nanos


def _scope(session: Session, scope: str, scope_value: str) -> str:
    if scope not in CAP_SCOPES:
        raise ValidationError(
            f"scope must be one of {', '.join(CAP_SCOPES)}", code="unknown_scope", field="scope"
        )
    if scope == "account":
        return ""
    value = single_line_text(scope_value.strip(), field="scope_value")
    if not value:
        raise ValidationError(f"name the {scope}", code="required", field="scope_value")
    if len(value) > 128:
        raise ValidationError("the scope is longer than 128 characters", code="too_long", field="scope_value")
    if scope == "meter":
        meter_id_of(session, value)
    return value


def _period(period: str) -> str:
    if period not in CAP_PERIODS:
        raise ValidationError(
            f"period must be one of {', '.join(CAP_PERIODS)}", code="unknown_period", field="period"
        )
    return period


def checked_target(session: Session, *, scope: str, scope_value: str, period: str) -> tuple[str, str]:
    """The scope value (stripped; '' for the account) and period a cap would take, or a
    ValidationError naming the field: what callers check before they read or record anything."""
    return _scope(session, scope, scope_value), _period(period)


def _cap(session: Session, account_id: str, cap_id: int) -> SpendCap:
    cap = session.scalar(
        select(SpendCap).where(
            SpendCap.id == cap_id, SpendCap.account_id == account_id, SpendCap.deleted_at.is_(None)
        )
    )
    if cap is None:
        raise NotFound(f"cap {cap_id} does not exist", field="cap_id")
    return cap


def _live_caps(session: Session, account_id: str) -> list[SpendCap]:
    return list(
        session.scalars(
            select(SpendCap)
            .where(SpendCap.account_id == account_id, SpendCap.deleted_at.is_(None))
            .order_by(SpendCap.id)
        ).all()
    )


def set_cap(
    session: Session,
    *,
    account_id: str,
    scope: str,
    scope_value: str = "",
    period: str = "month",
    limit: str | Decimal | int,
    mode: str,
    actor: Actor,
    at: datetime,
) -> CapView:
    """Set the cap of a scope for a period (one per scope, value and period: setting it again
    changes its limit and mode; a key may have a daily and a monthly cap side by side)."""
    require_permission(session, actor, account_id=account_id, permission=CAPS_EDIT)
    _check_mode(mode)
    value = _scope(session, scope, scope_value)
    period = _period(period)
    existing = _same_cap(_live_caps(session, account_id), scope, value, period)
    if existing is None:
        return create_cap(
            session,
            account_id=account_id,
            scope=scope,
            scope_value=value,
            period=period,
            limit=limit,
            mode=mode,
            actor=actor,
            at=at,
        )
    return update_cap(
        session, account_id=account_id, cap_id=existing.id, actor=actor, at=at, limit=limit, mode=mode
    )


def delete_cap(session: Session, *, account_id: str, cap_id: int, actor: Actor, at: datetime) -> None:
    """Remove a cap (its firing history stays)."""
    require_permission(session, actor, account_id=account_id, permission=CAPS_EDIT)
    cap = _cap(session, account_id, cap_id)
    cap.deleted_at = at
    cap.updated_at = at
    session.flush()


def list_caps(session: Session, account_id: str) -> list[CapView]:
    return [_cap_view(c) for c in _live_caps(session, account_id)]


def cap_statuses(session: Session, account_id: str, *, at: datetime) -> list[CapStatus]:
    """Each cap with its own period's spend (the day, week or month containing ``at`` in the
    account's zone) in its scope, when it resets, and when it was reached this period."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    caps = _live_caps(session, account_id)
    if not caps:
        return []
    periods = {cap.id: cap_period(cap.period, account.timezone, at) for cap in caps}
    cells = read_cells(
        session,
        account_id,
        min(p.start for p in periods.values()),
        max(p.end for p in periods.values()),
    )
    meter_ids: dict[str, int] = {}
    if any(cap.scope == "meter" for cap in caps):
        meter_ids = {name: int(meter_id) for meter_id, name in session.execute(select(Meter.id, Meter.name))}
    statuses = []
    for cap in caps:
        period = periods[cap.id]
        spent = spent_in(
            cells,
            scope=cap.scope,
            scope_value=cap.scope_value,
            start=period.start,
            end=period.end,
            meter_ids=meter_ids,
        )
        reached_at = session.scalar(
            select(AlertFiring.at)
            .where(
                AlertFiring.cap_id == cap.id,
                AlertFiring.event == "fired",
                AlertFiring.at >= period.starts_at,
            )
            .order_by(AlertFiring.id.desc())
            .limit(1)
        )
        statuses.append(CapStatus(_cap_view(cap), spent, period, reached_at))
    return statuses


def overdraft_nanos(session: Session, account_id: str) -> int:
    """How far below zero the balance may go before authorize answers ``insufficient_credits``."""
    value = session.scalar(
        select(SpendSettings.overdraft_nanos).where(SpendSettings.account_id == account_id)
    )
    return int(value or 0)


def set_overdraft(
    session: Session, *, account_id: str, overdraft: str | Decimal | int, actor: Actor, at: datetime
) -> int:
    """Set the account's overdraft allowance (0 turns it off)."""
    require_permission(session, actor, account_id=account_id, permission=OVERDRAFT_EDIT)
    try:
        nanos = credits_to_nanos(overdraft, field="overdraft")
    except ValueError as error:
        raise ValidationError(str(error), code="not_a_number", field="overdraft") from None
    if nanos < 0:
        raise ValidationError(
            "the overdraft cannot be negative", code="must_be_non_negative", field="overdraft"
        )
    if nanos > MAX_NANOS:
        raise ValidationError("the overdraft is too large", code="too_large", field="overdraft")
    settings = session.get(SpendSettings, account_id)
    if settings is None:
        settings = SpendSettings(
            account_id=account_id, overdraft_nanos=nanos, updated_by=actor.author, updated_at=at
        )
        session.add(settings)
    else:
        settings.overdraft_nanos = nanos
        settings.updated_by = actor.author
        settings.updated_at = at
    session.flush()
    return nanos


# --- Create and change one cap by its id (the HTTP API) ---------------------------------------------


def _check_mode(mode: object) -> None:
    if mode not in CAP_MODES:
        raise ValidationError(
            "mode is soft (alerts only) or hard (authorize refuses)", code="unknown_mode", field="mode"
        )


def _same_cap(caps: list[SpendCap], scope: str, value: str, period: str) -> SpendCap | None:
    return next((c for c in caps if (c.scope, c.scope_value, c.period) == (scope, value, period)), None)


def _refuse_duplicate(cap: SpendCap) -> None:
    raise Conflict(
        f"cap {cap.id} already limits this scope and period: change it (PATCH) or delete it first",
        code="cap_exists",
        field="scope",
    )


def create_cap(
    session: Session,
    *,
    account_id: str,
    scope: str,
    scope_value: str = "",
    period: str = "month",
    limit: str | Decimal | int,
    mode: str,
    actor: Actor,
    at: datetime,
) -> CapView:
    """Add a cap; one that already limits the same scope, value and period is a ``Conflict``
    (code ``cap_exists``) naming its id, never a second cap or a silent change."""
    require_permission(session, actor, account_id=account_id, permission=CAPS_EDIT)
    _check_mode(mode)
    period = _period(period)
    value = _scope(session, scope, scope_value)
    limit_nanos = _limit(limit)
    caps = _live_caps(session, account_id)
    existing = _same_cap(caps, scope, value, period)
    if existing is not None:
        _refuse_duplicate(existing)
    if len(caps) >= MAX_CAPS_PER_ACCOUNT:
        raise ValidationError(
            f"at most {MAX_CAPS_PER_ACCOUNT} caps per account", code="too_many", field="scope"
        )
    cap = SpendCap(
        account_id=account_id,
        scope=scope,
        scope_value=value,
        period=period,
        limit_nanos=limit_nanos,
        mode=mode,
        state="ok",
        created_by=actor.author,
        created_at=at,
        updated_at=at,
    )
    session.add(cap)
    session.flush()
    return _cap_view(cap)


def update_cap(
    session: Session,
    *,
    account_id: str,
    cap_id: int,
    actor: Actor,
    at: datetime,
    limit: str | Decimal | int | None = None,
    mode: str | None = None,
    period: str | None = None,
) -> CapView:
    """Change a cap's limit, mode or period (None: unchanged). A new period starts the cap's
    crossings afresh; a period another cap of the scope already has is a ``Conflict``."""
    require_permission(session, actor, account_id=account_id, permission=CAPS_EDIT)
    cap = _cap(session, account_id, cap_id)
    if mode is not None:
        _check_mode(mode)
    if period is not None:
        period = _period(period)
    limit_nanos = None if limit is None else _limit(limit)
    if period is not None and period != cap.period:
        other = _same_cap(_live_caps(session, account_id), cap.scope, cap.scope_value, period)
        if other is not None:
            _refuse_duplicate(other)
        cap.period = period
        cap.state = "ok"
        cap.last_value = None
    if limit_nanos is not None:
        cap.limit_nanos = limit_nanos
    if mode is not None:
        cap.mode = mode
    cap.updated_at = at
    session.flush()
    return _cap_view(cap)


def get_cap(session: Session, account_id: str, cap_id: int) -> CapView:
    """One live cap of the account (another account's id is ``NotFound``, as a missing one)."""
    return _cap_view(_cap(session, account_id, cap_id))
