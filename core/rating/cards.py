"""Load rate cards from TOML or YAML into immutable, effective-dated versions.

File shape (TOML; YAML has the same keys)::

    [[meters]]
    name = "input_tokens"
    display_name = "Input tokens"
    unit = "token"
    dimensions = ["model", "project", "api_key"]

    [card]
    key = "standard"
    name = "Standard pay-as-you-go"
    # account = "acc_x"    # makes this card acc_x's override card (its prices win)

    [[versions]]
    effective_from = "2026-08-24T00:00:00Z"
    notes = "Launch prices"

    [[versions.prices]]
    meter = "input_tokens"
    model = "atlas-large"      # optional: one dimension = value this price is for
    per = 1_000_000            # the price is for this many units (default 1)
    price = "3.00"             # credits, exact decimal string

    [[versions.prices]]
    meter = "output_tokens"
    per = 1_000_000
    tiers = [{ up_to = 1_000_000_000, price = "15.00" }, { price = "12.00" }]

Loading is idempotent: a version already stored with the same ``effective_from`` and
the same prices is left alone; the same date with other prices is a ``Conflict``
(versions are never edited in place: add a new one with a later date).

A new version is never retroactive. It must start in the future (``in_past``), and
after the latest usage event already stored for an account the card prices
(``before_rated_usage``: events up to 24 h ahead are accepted, so "in the future" is not
enough): events already rated keep the price they were rated with, and an event is
always rated at the version in force at its own timestamp. ``allow_backdated`` (card
set-up, back-fills, demo data) lifts only the first rule: a back-dated version is
accepted while no usage at or after its date has been rated yet.

Loads take turns on the rate book's revision row and change the revision when they
add a version or change an account's override card, so every process's cached rate
book is reloaded (``core.rating.book``). The card's accounts are locked (in id order,
as ingestion locks them) before their latest event is read, so no event can be rated
at the old price between that check and the commit.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from core.db.models import Account, Meter, RateCard, RateCardVersion, RatePrice, UsageEvent
from core.display import format_datetime
from core.errors import Conflict, NotFound, ValidationError
from core.money import credits_to_nanos
from core.rating.book import bump_rate_book_revision, lock_rate_book_revision
from core.rating.engine import Tier, validate_tiers

PRICE_KEYS = {"meter", "per", "price", "tiers"}


@dataclass
class LoadReport:
    """What a load did."""

    card_key: str
    meters_created: list[str] = field(default_factory=list)
    versions_added: list[int] = field(default_factory=list)
    versions_unchanged: list[int] = field(default_factory=list)


def read_rate_card_file(path: str | Path) -> dict[str, Any]:
    """Parse a TOML (.toml) or YAML (.yaml/.yml) rate card file."""
    path = Path(path)
    return parse_card_text(path.read_text(encoding="utf-8"), path)


def parse_card_text(text: str, path: Path) -> dict[str, Any]:
    """Parse a card file's text: YAML when ``path`` ends in .yaml/.yml, else TOML."""
    try:
        is_yaml = path.suffix.lower() in (".yaml", ".yml")
        document = yaml.safe_load(text) if is_yaml else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ValidationError(f"{path.name} is not valid: {exc}", code="bad_file", field="file") from None
    if not isinstance(document, dict):
        raise ValidationError(f"{path.name} must hold a table/mapping", code="bad_file", field="file")
    return document


def load_rate_card_file(
    session: Session, path: str | Path, *, at: datetime, allow_backdated: bool = False
) -> LoadReport:
    """Load a rate card file (see the module doc)."""
    return load_rate_card(session, read_rate_card_file(path), at=at, allow_backdated=allow_backdated)


def _parse_time(value: object, where: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"{where}: {value!r} is not an RFC 3339 time", field=where) from None
    else:
        raise ValidationError(f"{where}: give an RFC 3339 time with offset", field=where)
    if parsed.tzinfo is None:
        raise ValidationError(f"{where}: needs a UTC offset (e.g. 2026-12-01T00:00:00Z)", field=where)
    return parsed


def _when(moment: datetime) -> str:
    return format_datetime(moment, "UTC")


def _price_nanos(value: object, where: str) -> int:
    try:
        nanos = credits_to_nanos(value, field=where)
    except ValueError as exc:
        raise ValidationError(str(exc), field=where) from None
    if nanos < 0:
        raise ValidationError(f"{where}: prices cannot be negative", field=where)
    return nanos


def _parse_price(raw: Mapping[str, Any], where: str, meters: dict[str, Meter]) -> dict[str, Any]:
    meter_name = raw.get("meter")
    if meter_name not in meters:
        raise ValidationError(f"{where}.meter: unknown meter {meter_name!r}", field=f"{where}.meter")
    meter = meters[meter_name]
    matches = {k: v for k, v in raw.items() if k not in PRICE_KEYS}
    if len(matches) > 1:
        raise ValidationError(f"{where}: a price matches at most one dimension", field=where)
    match_dimension, match_value = next(iter(matches.items()), ("", ""))
    if match_dimension and match_dimension not in meter.dimensions:
        raise ValidationError(
            f"{where}: meter {meter.name} has no dimension {match_dimension!r}",
            field=f"{where}.{match_dimension}",
        )
    per = raw.get("per", 1)
    if not isinstance(per, int) or isinstance(per, bool) or per <= 0:
        raise ValidationError(f"{where}.per: must be a positive whole number", field=f"{where}.per")
    if ("price" in raw) == ("tiers" in raw):
        raise ValidationError(f"{where}: give either price or tiers", field=where)
    if "price" in raw:
        tiers = [Tier(None, _price_nanos(raw["price"], f"{where}.price"))]
    else:
        tiers = []
        for index, tier in enumerate(raw["tiers"] or []):
            up_to = tier.get("up_to")
            if up_to is not None and (not isinstance(up_to, int) or isinstance(up_to, bool)):
                raise ValidationError(f"{where}.tiers[{index}].up_to: whole number", field=f"{where}.tiers")
            tiers.append(Tier(up_to, _price_nanos(tier.get("price"), f"{where}.tiers[{index}].price")))
    try:
        validate_tiers(tiers)
    except ValueError as exc:
        raise ValidationError(f"{where}.tiers: {exc}", field=f"{where}.tiers") from None
    return {
        "meter_id": meter.id,
        "meter": meter.name,
        "match_dimension": match_dimension,
        "match_value": str(match_value) if match_dimension else "",
        "per_units": per,
        "tiers": [{"up_to": t.up_to, "price_nanos": t.price_nanos} for t in tiers],
    }


def _fingerprint(prices: Sequence[Mapping[str, Any]]) -> str:
    canonical = sorted(
        json.dumps({k: v for k, v in p.items() if k != "meter_id"}, sort_keys=True) for p in prices
    )
    return hashlib.sha256("\n".join(canonical).encode()).hexdigest()


def _ensure_meters(
    session: Session, raw_meters: object, at: datetime, report: LoadReport
) -> dict[str, Meter]:
    meters = {m.name: m for m in session.scalars(select(Meter))}
    for index, raw in enumerate(raw_meters or []):  # type: ignore[union-attr]
        where = f"meters[{index}]"
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{where}.name: every meter needs a name", field=f"{where}.name")
        dimensions = list(raw.get("dimensions", []))
        if name in meters:
            meter = meters[name]
            # Dimensions only grow: events already stored keep theirs meaningful.
            meter.dimensions = list(dict.fromkeys([*meter.dimensions, *dimensions]))
            meter.display_name = raw.get("display_name", meter.display_name)
            continue
        meter = Meter(
            name=name,
            display_name=raw.get("display_name", name.replace("_", " ").capitalize()),
            unit=raw.get("unit", "unit"),
            dimensions=dimensions,
            created_at=at,
        )
        session.add(meter)
        meters[name] = meter
        report.meters_created.append(name)
    session.flush()
    return meters


def _priced_by(card_id: int, also: str | None) -> ColumnElement[bool]:
    """The accounts this card prices (as base or override card), and ``also``."""
    priced = or_(Account.rate_card_id == card_id, Account.override_rate_card_id == card_id)
    return priced if also is None else or_(priced, Account.id == also)


def _lock_accounts_where(session: Session, which: ColumnElement[bool]) -> bool:
    """Lock these accounts for this transaction, in id order, as ``core.ledger.lock_accounts`` does.

    One query without a list of ids (a card may price every account). SQLite: the write
    transaction already holds the database lock. False when there are none.
    """
    lock = select(Account.id).where(which).order_by(Account.id)
    if session.get_bind().dialect.name == "postgresql":
        lock = lock.with_for_update()
    return bool(session.scalars(lock).all())


def _latest_event_at(session: Session, which: ColumnElement[bool]) -> datetime | None:
    """The latest ``occurred_at`` of these accounts' stored events.

    One index lookup per account (and month partition, on PostgreSQL: the primary key's
    ``(account_id, occurred_at)`` prefix; on SQLite ``ix_usage_events_account_occurred``),
    never a scan of the events.
    """
    latest_of_account = (
        select(func.max(UsageEvent.occurred_at))
        .where(UsageEvent.account_id == Account.id)
        .correlate(Account)
        .scalar_subquery()
    )
    return session.scalar(select(func.max(latest_of_account)).where(which))


def load_rate_card(
    session: Session, document: Mapping[str, Any], *, at: datetime, allow_backdated: bool = False
) -> LoadReport:
    """Load a parsed rate card document (see the module doc); returns what changed."""
    card_doc = document.get("card")
    if not isinstance(card_doc, Mapping) or not card_doc.get("key"):
        raise ValidationError("card.key: the file needs a [card] table with a key", field="card.key")
    report = LoadReport(card_key=str(card_doc["key"]))
    # First, so that everything below reads what the previous load committed.
    lock_rate_book_revision(session)
    meters = _ensure_meters(session, document.get("meters"), at, report)
    card = session.scalar(select(RateCard).where(RateCard.key == report.card_key))
    account_id = card_doc.get("account")
    if card is None:
        card = RateCard(
            key=report.card_key,
            name=card_doc.get("name", report.card_key),
            account_id=account_id,
            created_at=at,
        )
        session.add(card)
        session.flush()
    account = None
    if account_id is not None:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"card.account: account {account_id!r} does not exist", field="card.account")
    override_changes = account is not None and account.override_rate_card_id != card.id
    existing = {
        v.effective_from: v
        for v in session.scalars(select(RateCardVersion).where(RateCardVersion.rate_card_id == card.id))
    }
    next_version = int(
        session.scalar(
            select(func.coalesce(func.max(RateCardVersion.version), 0)).where(
                RateCardVersion.rate_card_id == card.id
            )
        )
        or 0
    )
    versions = document.get("versions") or []
    if not versions:
        raise ValidationError("versions: the card needs at least one version", field="versions")
    locked = False
    latest_rated: datetime | None = None
    for index, raw_version in enumerate(versions):
        where = f"versions[{index}]"
        effective_from = _parse_time(raw_version.get("effective_from"), f"{where}.effective_from")
        prices = [
            _parse_price(raw, f"{where}.prices[{p}]", meters)
            for p, raw in enumerate(raw_version.get("prices") or [])
        ]
        if not prices:
            raise ValidationError(
                f"{where}.prices: a version needs at least one price", field=f"{where}.prices"
            )
        keys = [(p["meter_id"], p["match_dimension"], p["match_value"]) for p in prices]
        if len(set(keys)) != len(keys):
            raise ValidationError(f"{where}.prices: the same meter and match twice", field=f"{where}.prices")
        fingerprint = _fingerprint(prices)
        stored = existing.get(effective_from)
        if stored is not None:
            if stored.source_sha256 != fingerprint:
                raise Conflict(
                    f"{where}: version {stored.version} of {card.key} already starts at "
                    f"{_when(effective_from)} with other prices; versions are never edited: "
                    "add one with a later date",
                    field=f"{where}.effective_from",
                )
            report.versions_unchanged.append(stored.version)
            continue
        if effective_from < at and not allow_backdated:
            raise ValidationError(
                f"{where}.effective_from: {_when(effective_from)} is in the past; a price change "
                "applies from its date, so pick a future time",
                code="in_past",
                field=f"{where}.effective_from",
            )
        if not locked:
            # Ingestion rates a batch only once it holds its accounts' locks: with these
            # held, the latest event read now stays the latest rated at the old prices
            # until this load commits. An account taking this card as its override counts.
            priced = _priced_by(card.id, account_id if override_changes else None)
            locked = True
            if _lock_accounts_where(session, priced):
                latest_rated = _latest_event_at(session, priced)
        if latest_rated is not None and effective_from <= latest_rated:
            latest = latest_rated.isoformat().replace("+00:00", "Z")
            raise ValidationError(
                f"{where}.effective_from: {_when(effective_from)} is not after usage already "
                f"rated with this card (the latest event is at {latest}, and rated events "
                f"keep their price); pick an effective_from after {latest}",
                code="before_rated_usage",
                field=f"{where}.effective_from",
            )
        next_version += 1
        version = RateCardVersion(
            rate_card_id=card.id,
            version=next_version,
            effective_from=effective_from,
            notes=str(raw_version.get("notes", "")),
            source_sha256=fingerprint,
            created_at=at,
        )
        session.add(version)
        session.flush()
        for price in prices:
            session.add(
                RatePrice(
                    version_id=version.id,
                    meter_id=price["meter_id"],
                    match_dimension=price["match_dimension"],
                    match_value=price["match_value"],
                    per_units=price["per_units"],
                    tiers=price["tiers"],
                )
            )
        existing[effective_from] = version
        report.versions_added.append(next_version)
    if override_changes:
        assert account is not None
        if not locked:
            _lock_accounts_where(session, Account.id == account.id)
        account.override_rate_card_id = card.id
    if report.versions_added or override_changes:
        bump_rate_book_revision(session)
    session.flush()
    return report
