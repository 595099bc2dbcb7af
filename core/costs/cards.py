"""Internal cost cards: what serving each meter (per model) costs us, versioned and effective-dated.

Customers never see them: no customer page, export or API reads these tables; only the margin
report (``core.costs.margin``, support admins and operators) does. File shape (TOML; YAML has the
same keys)::

    [card]
    key = "internal"
    name = "Cost of serving"

    [[versions]]
    effective_from = "2026-12-01T00:00:00Z"   # a whole UTC hour (margin is computed per hour)
    notes = "New GPU contract"

    [[versions.costs]]
    meter = "input_tokens"       # a meter the rate cards already define
    model = "atlas-large"        # optional: without it, every model of the meter with no cost of its own
    per = 1_000_000              # the cost is for this many units (default 1)
    cost = "0.80"                # US dollars, exact decimal string (at most 9 decimals)

As with rate cards, versions are never edited: a version already stored with the same
``effective_from`` and the same costs is left alone, the same date with other costs is a
``Conflict``; a new version must start in the future unless ``allow_backdated`` (a cost known
late, the demo) says otherwise: a cost card changes no customer's bill, only the margin report.
Every error names the field (``versions[0].costs[2].cost``) and, for a TOML file, its line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.models import CostCard, CostCardVersion, CostPrice, Meter
from core.display import format_datetime
from core.errors import BillingError, Conflict, ValidationError
from core.money import credits_to_nanos
from core.rating.cards import parse_card_text
from core.rating.history import file_sha256, record_operator_action

COST_KEYS = {"meter", "model", "per", "cost"}
VERSION_KEYS = {"effective_from", "notes", "costs"}
MAX_MODEL = 128
LOAD_ACTION = "costs.load"


@dataclass
class CostLoadReport:
    """What a cost card load did."""

    card_key: str
    versions_added: list[int] = field(default_factory=list)
    versions_unchanged: list[int] = field(default_factory=list)


def _when(moment: datetime) -> str:
    return format_datetime(moment, "UTC")


def _parse_time(value: object, where: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"{where}: {value[:60]!r} is not an RFC 3339 time", field=where) from None
    else:
        raise ValidationError(f"{where}: give an RFC 3339 time with offset", field=where)
    if parsed.tzinfo is None:
        raise ValidationError(f"{where}: needs a UTC offset (e.g. 2026-12-01T00:00:00Z)", field=where)
    if (parsed.minute, parsed.second, parsed.microsecond) != (0, 0, 0) or parsed.utcoffset().seconds % 3600:  # type: ignore[union-attr]
        raise ValidationError(
            f"{where}: costs change on a whole UTC hour (the margin report adds usage up by the hour), "
            f"not at {value}",
            code="not_on_the_hour",
            field=where,
        )
    return parsed


def _parse_cost(raw: object, where: str, meters: dict[str, Meter]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where}: each cost is a table (meter, model, per, cost)", field=where)
    unknown = sorted(str(k) for k in raw if k not in COST_KEYS)
    if unknown:
        raise ValidationError(
            f"{where}.{unknown[0]}: unknown key (a cost has meter, model, per and cost)",
            field=f"{where}.{unknown[0]}",
        )
    meter_name = raw.get("meter")
    if not isinstance(meter_name, str) or meter_name not in meters:
        raise ValidationError(
            f"{where}.meter: unknown meter {meter_name!r} (load the rate card that defines it first)",
            field=f"{where}.meter",
        )
    model = raw.get("model", "")
    if not isinstance(model, str) or len(model) > MAX_MODEL:
        raise ValidationError(
            f"{where}.model: a model name, up to {MAX_MODEL} characters", field=f"{where}.model"
        )
    per = raw.get("per", 1)
    if not isinstance(per, int) or isinstance(per, bool) or not 0 < per <= 10**12:
        raise ValidationError(f"{where}.per: a whole number of units, 1 to 10^12", field=f"{where}.per")
    if "cost" not in raw:
        raise ValidationError(f'{where}.cost: missing (US dollars, e.g. "0.80")', field=f"{where}.cost")
    try:
        cost_nanos = credits_to_nanos(raw["cost"], field=f"{where}.cost")
    except ValueError as exc:
        raise ValidationError(str(exc), field=f"{where}.cost") from None
    if not 0 <= cost_nanos <= 10**18:
        raise ValidationError(f"{where}.cost: between 0 and 1,000,000,000 dollars", field=f"{where}.cost")
    return {
        "meter_id": meters[meter_name].id,
        "meter": meter_name,
        "model": model,
        "per": per,
        "cost_nanos": cost_nanos,
    }


def _fingerprint(costs: list[dict[str, Any]]) -> str:
    canonical = sorted(
        json.dumps({k: v for k, v in c.items() if k != "meter_id"}, sort_keys=True) for c in costs
    )
    return hashlib.sha256("\n".join(canonical).encode()).hexdigest()


def _locked_card(session: Session, key: str, name: str, at: datetime) -> CostCard:
    """The card, created if new, locked until this transaction ends: loads of one card take turns."""
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        dialect_insert(CostCard)
        .values(key=key, name=name, created_at=at)
        .on_conflict_do_nothing(index_elements=[CostCard.key])
    )
    card = session.scalar(select(CostCard).where(CostCard.key == key).with_for_update())
    assert card is not None
    return card


def load_cost_card(
    session: Session, document: Mapping[str, Any], *, at: datetime, allow_backdated: bool = False
) -> CostLoadReport:
    """Load a parsed cost card document (see the module doc); returns what changed."""
    card_doc = document.get("card")
    if (
        not isinstance(card_doc, Mapping)
        or not isinstance(card_doc.get("key"), str)
        or not card_doc["key"].strip()
    ):
        raise ValidationError("card.key: the file needs a [card] table with a key", field="card.key")
    key = card_doc["key"].strip()
    if len(key) > 64:
        raise ValidationError("card.key: at most 64 characters", field="card.key")
    name = str(card_doc.get("name", key))[:200]
    versions = document.get("versions")
    if not isinstance(versions, list) or not versions:
        raise ValidationError("versions: the card needs at least one [[versions]]", field="versions")
    meters = {m.name: m for m in session.scalars(select(Meter))}
    card = _locked_card(session, key, name, at)
    report = CostLoadReport(card_key=key)
    existing = {
        v.effective_from: v
        for v in session.scalars(select(CostCardVersion).where(CostCardVersion.cost_card_id == card.id))
    }
    next_version = int(
        session.scalar(
            select(func.coalesce(func.max(CostCardVersion.version), 0)).where(
                CostCardVersion.cost_card_id == card.id
            )
        )
        or 0
    )
    for index, raw_version in enumerate(versions):
        where = f"versions[{index}]"
        if not isinstance(raw_version, Mapping):
            raise ValidationError(f"{where}: each version is a table", field=where)
        unknown = sorted(str(k) for k in raw_version if k not in VERSION_KEYS)
        if unknown:
            raise ValidationError(
                f"{where}.{unknown[0]}: unknown key (a version has effective_from, notes and costs)",
                field=f"{where}.{unknown[0]}",
            )
        effective_from = _parse_time(raw_version.get("effective_from"), f"{where}.effective_from")
        raw_costs = raw_version.get("costs")
        if not isinstance(raw_costs, list) or not raw_costs:
            raise ValidationError(f"{where}.costs: a version needs at least one cost", field=f"{where}.costs")
        costs = [_parse_cost(raw, f"{where}.costs[{c}]", meters) for c, raw in enumerate(raw_costs)]
        seen: set[tuple[int, str]] = set()
        for c, cost in enumerate(costs):
            if (cost["meter_id"], cost["model"]) in seen:
                raise ValidationError(
                    f"{where}.costs[{c}]: {cost['meter']} {cost['model'] or '(every model)'} is costed twice",
                    field=f"{where}.costs[{c}]",
                )
            seen.add((cost["meter_id"], cost["model"]))
        fingerprint = _fingerprint(costs)
        stored = existing.get(effective_from)
        if stored is not None:
            if stored.source_sha256 != fingerprint:
                raise Conflict(
                    f"{where}: version {stored.version} of cost card {key} already starts at "
                    f"{_when(effective_from)} with other costs; versions are never edited: "
                    "add one with a later date",
                    field=f"{where}.effective_from",
                )
            report.versions_unchanged.append(stored.version)
            continue
        if effective_from < at and not allow_backdated:
            raise ValidationError(
                f"{where}.effective_from: {_when(effective_from)} is in the past; pick a future time "
                "(or --allow-backdated for a cost learned late)",
                code="in_past",
                field=f"{where}.effective_from",
            )
        next_version += 1
        version = CostCardVersion(
            cost_card_id=card.id,
            version=next_version,
            effective_from=effective_from,
            notes=str(raw_version.get("notes", "")),
            source_sha256=fingerprint,
            created_at=at,
        )
        session.add(version)
        session.flush()
        session.add_all(
            CostPrice(
                version_id=version.id,
                meter_id=cost["meter_id"],
                model=cost["model"],
                per_units=cost["per"],
                cost_nanos=cost["cost_nanos"],
            )
            for cost in costs
        )
        existing[effective_from] = version
        report.versions_added.append(next_version)
    session.flush()
    return report


_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.]+)\s*\]\]")
_FIELD_PATH = re.compile(r"^versions\[(\d+)\](?:\.costs\[(\d+)\])?(?:\.([A-Za-z0-9_]+))?")


def toml_line(text: str, where: str) -> int | None:
    """The line of a TOML cost card that ``where`` (``versions[0].costs[2].cost``) points at, or None.

    Best effort for files written in the documented shape (``[[versions]]`` and
    ``[[versions.costs]]`` headers): the key's line inside its table, else the table's header.
    """
    found = _FIELD_PATH.match(where)
    if found is None:
        return None
    target = (int(found[1]), None if found[2] is None else int(found[2]))
    key = re.compile(rf"^\s*{re.escape(found[3])}\s*=") if found[3] else None
    version, cost = -1, -1
    current: tuple[int, int | None] | None = None
    header_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header and header[1] == "versions":
            version, cost = version + 1, -1
            current = (version, None)
        elif header and header[1] == "versions.costs":
            cost += 1
            current = (version, cost)
        elif line.lstrip().startswith("["):
            current = None
        elif current == target and key is not None and key.match(line):
            return number
        if header and current == target:
            header_line = number
    return header_line


def load_cost_card_file(
    session: Session, path: str | Path, *, at: datetime, actor: str, allow_backdated: bool = False
) -> CostLoadReport:
    """Load a cost card file and audit the load (who, when, the file's sha256, the versions added)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{path.name} is not UTF-8 text", code="bad_file", field="file") from None
    try:
        report = load_cost_card(session, parse_card_text(text, path), at=at, allow_backdated=allow_backdated)
    except BillingError as error:
        line = toml_line(text, error.field or "") if path.suffix.lower() == ".toml" else None
        if line is not None:
            error.message = f"{path.name} line {line}: {error.message}"
            error.args = (error.message,)
        raise
    record_operator_action(
        session,
        actor=actor,
        action=LOAD_ACTION,
        target=f"cost_card:{report.card_key}",
        at=at,
        file=path.name,
        sha256=file_sha256(data),
        versions_added=list(report.versions_added),
        versions_unchanged=list(report.versions_unchanged),
        allow_backdated=allow_backdated,
    )
    return report
