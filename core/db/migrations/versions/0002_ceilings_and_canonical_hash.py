"""Ceilings on stored usage totals; content hashes over a canonical encoding

Rollup rows and late-usage amounts get CHECK constraints that keep them within
0..TOTAL_CEILING (4e18), so that adding one batch can never overflow 64 bits and a
total past the ceiling is refused (ingestion turns that into per-event rejections).

Usage events' content hashes are recomputed over a canonical JSON encoding (orjson; the old
text joined fields with a separator a dimension value could contain).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC

import orjson
import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CEILING = 4 * 10**18  # core.money.TOTAL_CEILING when this migration was written
_ROLLUPS = ("usage_rollup_hourly", "usage_rollup_daily")


def _canonical_hash(account_id: str, meter: str, quantity: int, occurred_at, dims: dict) -> str:  # type: ignore[no-untyped-def]
    """A frozen copy of core.metering.validation.content_hash as of this revision."""
    canonical = orjson.dumps(
        [account_id, meter, quantity, occurred_at.astimezone(UTC).isoformat(), sorted(dims.items())]
    )
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def _rehash(batch_size: int = 5_000) -> None:
    connection = op.get_bind()
    events = sa.table(
        "usage_events",
        sa.column("id", sa.BigInteger()),
        sa.column("account_id", sa.String()),
        sa.column("meter_id", sa.BigInteger()),
        sa.column("quantity", sa.BigInteger()),
        sa.column("occurred_at", core.db.types.UTCDateTime(timezone=True)),
        sa.column("dimensions", sa.JSON()),
        sa.column("content_hash", sa.String()),
    )
    meters = dict(connection.execute(sa.text("SELECT id, name FROM meters")).all())
    last_id = 0
    update = (
        events.update().where(events.c.id == sa.bindparam("event_id")).values(content_hash=sa.bindparam("h"))
    )
    while True:
        rows = connection.execute(
            sa.select(
                events.c.id,
                events.c.account_id,
                events.c.meter_id,
                events.c.quantity,
                events.c.occurred_at,
                events.c.dimensions,
            )
            .where(events.c.id > last_id)
            .order_by(events.c.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        connection.execute(
            update,
            [
                {
                    "event_id": row.id,
                    "h": _canonical_hash(
                        row.account_id,
                        meters[row.meter_id],
                        row.quantity,
                        row.occurred_at,
                        row.dimensions or {},
                    ),
                }
                for row in rows
            ],
        )
        last_id = rows[-1].id


def upgrade() -> None:
    for table in _ROLLUPS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_check_constraint("quantity_within_ceiling", f"quantity BETWEEN 0 AND {CEILING}")
            batch_op.create_check_constraint("amount_within_ceiling", f"amount_nanos BETWEEN 0 AND {CEILING}")
    with op.batch_alter_table("late_usage") as batch_op:
        batch_op.create_check_constraint("amount_within_ceiling", f"amount_nanos BETWEEN 0 AND {CEILING}")
    _rehash()


def downgrade() -> None:
    # Hashes stay canonical: the old encoding could not tell some different events apart.
    with op.batch_alter_table("late_usage") as batch_op:
        batch_op.drop_constraint("amount_within_ceiling", type_="check")
    for table in reversed(_ROLLUPS):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint("amount_within_ceiling", type_="check")
            batch_op.drop_constraint("quantity_within_ceiling", type_="check")
