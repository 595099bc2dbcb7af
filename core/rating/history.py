"""Rate-card history: every load audited, and a rollback that restores an earlier version's prices.

Operators load cards from the command line; each load writes one audit entry in the load's own
transaction (it commits or rolls back with the versions): who (``cli:<name>``: ``--actor``, else
``$USER``, see ``operator_actor``), when, the file's sha256 and the versions it added or found
unchanged. A load that fails writes nothing, as it changes nothing.

A rollback never edits a version: it adds a new one, effective from a future moment, whose prices
are those of the chosen earlier version. It goes through ``load_rate_card``, so it takes turns
with other loads, refuses a start in the past or before usage already rated, and reloads every
process's rate book; run twice with the same ``--from`` it adds nothing the second time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import AuditLog, Meter, RateCard, RateCardVersion, RatePrice
from core.display import format_datetime
from core.errors import Conflict, NotFound, ValidationError
from core.money import nanos_to_credits
from core.rating.cards import LoadReport, load_rate_card, parse_card_text
from core.text import clean_text

OPERATOR_PREFIX = "cli:"
MAX_ACTOR = 200
LOAD_ACTION = "rates.load"
ROLLBACK_ACTION = "rates.rollback"


def _login_name() -> str:
    """The account this process runs as (``$USER`` may be unset, e.g. in a container or cron)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return ""


def print_load_report(added: Sequence[int], unchanged: Sequence[int]) -> None:
    """The versions a card load (rate card or cost card) added and found already loaded, for the CLI."""
    if added:
        print(f"  versions added: {', '.join(str(v) for v in added)}")
    if unchanged:
        print(f"  versions already loaded, unchanged: {', '.join(str(v) for v in unchanged)}")
    if not added:
        print("  nothing new: every version in the file was already loaded")


def operator_actor(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Who runs an operator command, as the audit log records it: ``cli:<name>``, the name from
    ``--actor``, else ``$USER`` (or ``$LOGNAME``, else the process's login name); ``cli`` alone
    when none is known, as other operator commands record it."""
    env = os.environ if env is None else env
    if explicit is not None:
        name = explicit.strip()
        if not name:
            raise ValidationError("--actor needs a name (who runs this, for the audit log)", field="actor")
    else:
        name = (env.get("USER") or env.get("LOGNAME") or _login_name()).strip()
    clean_text(name, field="actor")
    if len(name) > MAX_ACTOR:
        raise ValidationError(f"--actor takes at most {MAX_ACTOR} characters", field="actor")
    if not name:
        return OPERATOR_PREFIX.rstrip(":")
    return name if name.startswith(OPERATOR_PREFIX) else OPERATOR_PREFIX + name


def record_operator_action(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    at: datetime,
    account_id: str | None = None,
    reason: str = "",
    **details: Any,
) -> AuditLog:
    """Add an operator's audit entry to the caller's transaction."""
    entry = AuditLog(
        actor=actor,
        action=action[:64],
        account_id=account_id,
        reason=reason,
        details={"target": target, **details},
        created_at=at,
    )
    session.add(entry)
    session.flush()
    return entry


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _card_account(session: Session, card_key: str) -> str | None:
    return session.scalar(select(RateCard.account_id).where(RateCard.key == card_key))


def load_rate_card_file_audited(
    session: Session, path: str | Path, *, at: datetime, actor: str, allow_backdated: bool = False
) -> LoadReport:
    """Load a rate card file (``core.rating.cards``) and audit the load in the same transaction."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{path.name} is not UTF-8 text", code="bad_file", field="file") from None
    report = load_rate_card(session, parse_card_text(text, path), at=at, allow_backdated=allow_backdated)
    record_operator_action(
        session,
        actor=actor,
        action=LOAD_ACTION,
        target=f"rate_card:{report.card_key}",
        at=at,
        account_id=_card_account(session, report.card_key),
        file=path.name,
        sha256=file_sha256(data),
        versions_added=list(report.versions_added),
        versions_unchanged=list(report.versions_unchanged),
        meters_created=list(report.meters_created),
        allow_backdated=allow_backdated,
    )
    return report


@dataclass(frozen=True)
class RollbackReport:
    card_key: str
    restored_version: int
    version_added: int | None  # None: the same rollback was already loaded (nothing new)
    effective_from: datetime


def _price_document(price: RatePrice, meter: Meter) -> dict[str, Any]:
    document: dict[str, Any] = {"meter": meter.name, "per": price.per_units}
    if price.match_dimension:
        document[price.match_dimension] = price.match_value
    tiers = [
        {**({"up_to": t["up_to"]} if t.get("up_to") is not None else {}), "price": _credits(t["price_nanos"])}
        for t in price.tiers
    ]
    if len(tiers) == 1 and "up_to" not in tiers[0]:
        document["price"] = tiers[0]["price"]
    else:
        document["tiers"] = tiers
    return document


def _credits(nanos: int) -> str:
    return format(nanos_to_credits(int(nanos)), "f")


def rollback_rate_card(
    session: Session, *, card_key: str, to_version: int, effective_from: datetime, at: datetime, actor: str
) -> RollbackReport:
    """Add a version of ``card_key`` with ``to_version``'s prices, in force from ``effective_from``."""
    if effective_from.tzinfo is None:
        raise ValidationError("--from needs a UTC offset (e.g. 2026-12-01T00:00:00Z)", field="from")
    if effective_from <= at:
        raise ValidationError(
            f"--from {format_datetime(effective_from, 'UTC')} is not in the future; a rollback never "
            "changes prices retroactively: pick a later time",
            code="in_past",
            field="from",
        )
    card = session.scalar(select(RateCard).where(RateCard.key == card_key))
    if card is None:
        raise NotFound(f"no rate card {card_key[:64]!r}", field="card")
    target = session.scalar(
        select(RateCardVersion).where(
            RateCardVersion.rate_card_id == card.id, RateCardVersion.version == to_version
        )
    )
    if target is None:
        known = sorted(
            session.scalars(select(RateCardVersion.version).where(RateCardVersion.rate_card_id == card.id))
        )
        raise NotFound(
            f"rate card {card.key!r} has no version {to_version}; its versions are "
            + ", ".join(str(v) for v in known),
            field="to",
        )
    rows = session.execute(
        select(RatePrice, Meter)
        .join(Meter, Meter.id == RatePrice.meter_id)
        .where(RatePrice.version_id == target.id)
    ).all()
    card_doc: dict[str, Any] = {"key": card.key, "name": card.name}
    if card.account_id is not None:
        card_doc["account"] = card.account_id
    document = {
        "card": card_doc,
        "versions": [
            {
                "effective_from": effective_from,
                "notes": f"Prices of version {target.version} restored",
                "prices": [_price_document(price, meter) for price, meter in rows],
            }
        ],
    }
    try:
        report = load_rate_card(session, document, at=at)
    except (ValidationError, Conflict) as error:
        message = error.message.replace("versions[0].effective_from", "--from").replace(
            "versions[0]", "--from"
        )
        raise type(error)(message, code=error.code, field="from") from None
    added = report.versions_added[0] if report.versions_added else None
    record_operator_action(
        session,
        actor=actor,
        action=ROLLBACK_ACTION,
        target=f"rate_card:{card.key}",
        at=at,
        account_id=card.account_id,
        restored_version=target.version,
        version_added=added,
        versions_unchanged=list(report.versions_unchanged),
        effective_from=effective_from.isoformat(),
    )
    return RollbackReport(card.key, target.version, added, effective_from)
