"""The price sheet a customer reads: the card they are on, now and from which dates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Account, Meter, RateCard, RateCardVersion, RatePrice
from core.errors import NotFound


@dataclass(frozen=True)
class PriceLine:
    meter: str
    meter_display: str
    unit: str
    match_dimension: str  # "" = every value
    match_value: str
    per_units: int
    tiers: tuple[tuple[int | None, int], ...]  # (up_to monthly volume, price_nanos per per_units)
    is_override: bool  # an account-specific price


@dataclass(frozen=True)
class VersionSheet:
    version: int
    effective_from: datetime
    notes: str
    lines: list[PriceLine]


@dataclass(frozen=True)
class PriceSheet:
    card_key: str
    card_name: str
    current: VersionSheet | None
    upcoming: list[VersionSheet]
    has_overrides: bool
    past: list[VersionSheet] = field(default_factory=list)  # replaced versions, newest first

    def until(self, version: VersionSheet) -> datetime | None:
        """When ``version`` stopped (or stops) being in force: the next version's start, if any."""
        ordered = sorted(
            [*self.past, *([self.current] if self.current else []), *self.upcoming],
            key=lambda v: v.effective_from,
        )
        later = [v.effective_from for v in ordered if v.effective_from > version.effective_from]
        return later[0] if later else None


def _lines(session: Session, version_id: int, *, is_override: bool) -> list[PriceLine]:
    rows = session.execute(
        select(RatePrice, Meter)
        .join(Meter, Meter.id == RatePrice.meter_id)
        .where(RatePrice.version_id == version_id)
        .order_by(Meter.name, RatePrice.match_dimension, RatePrice.match_value)
    ).all()
    return [
        PriceLine(
            meter=meter.name,
            meter_display=meter.display_name or meter.name,
            unit=meter.unit,
            match_dimension=price.match_dimension,
            match_value=price.match_value,
            per_units=price.per_units,
            tiers=tuple((t.get("up_to"), int(t["price_nanos"])) for t in price.tiers),
            is_override=is_override,
        )
        for price, meter in rows
    ]


def _versions(session: Session, card_id: int | None) -> list[RateCardVersion]:
    if card_id is None:
        return []
    return list(
        session.scalars(
            select(RateCardVersion)
            .where(RateCardVersion.rate_card_id == card_id)
            .order_by(RateCardVersion.effective_from)
        )
    )


def _current_and_upcoming(
    versions: list[RateCardVersion], at: datetime
) -> tuple[RateCardVersion | None, list[RateCardVersion]]:
    current = None
    for version in versions:
        if version.effective_from <= at:
            current = version
    return current, [v for v in versions if v.effective_from > at]


def _past(versions: list[RateCardVersion], current: RateCardVersion | None) -> list[RateCardVersion]:
    """The versions ``current`` replaced, newest first."""
    if current is None:
        return []
    return sorted(
        (v for v in versions if v.effective_from < current.effective_from),
        key=lambda v: v.effective_from,
        reverse=True,
    )


def _in_force(versions: list[RateCardVersion], at: datetime) -> RateCardVersion | None:
    return _current_and_upcoming(versions, at)[0]


def _merge(base: list[PriceLine], override: list[PriceLine]) -> list[PriceLine]:
    keys = {(o.meter, o.match_dimension, o.match_value) for o in override}
    kept = [line for line in base if (line.meter, line.match_dimension, line.match_value) not in keys]
    return sorted([*kept, *override], key=lambda line: (line.meter, line.match_dimension, line.match_value))


def price_sheet(session: Session, account_id: str, *, at: datetime) -> PriceSheet:
    """The account's prices in force at ``at`` and the versions still to come.

    Account-specific override prices are merged in and flagged; an upcoming base
    version is shown with the override prices in force at ``at``.
    """
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    card = session.get(RateCard, account.rate_card_id) if account.rate_card_id else None
    base_versions = _versions(session, account.rate_card_id)
    override_versions = _versions(session, account.override_rate_card_id)
    base_current, base_upcoming = _current_and_upcoming(base_versions, at)
    override_current, override_upcoming = _current_and_upcoming(override_versions, at)
    override_lines = (
        _lines(session, override_current.id, is_override=True) if override_current is not None else []
    )

    def sheet(version: RateCardVersion, extra: list[PriceLine]) -> VersionSheet:
        return VersionSheet(
            version=version.version,
            effective_from=version.effective_from,
            notes=version.notes,
            lines=_merge(_lines(session, version.id, is_override=False), extra),
        )

    current = sheet(base_current, override_lines) if base_current is not None else None
    upcoming = [sheet(v, override_lines) for v in base_upcoming]
    upcoming += [
        VersionSheet(
            v.version,
            v.effective_from,
            f"Your own prices: {v.notes}".strip(),
            _lines(session, v.id, is_override=True),
        )
        for v in override_upcoming
    ]
    upcoming.sort(key=lambda v: v.effective_from)
    past = []
    for version in _past(base_versions, base_current):
        # A past version is shown with the account's own prices in force when it started.
        override_then = _in_force(override_versions, version.effective_from)
        extra = _lines(session, override_then.id, is_override=True) if override_then is not None else []
        past.append(sheet(version, extra))
    return PriceSheet(
        card_key=card.key if card else "",
        card_name=card.name if card else "",
        current=current,
        upcoming=upcoming,
        has_overrides=account.override_rate_card_id is not None,
        past=past,
    )
