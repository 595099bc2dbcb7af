"""Internal cost cards: versioned, effective-dated costs per meter and model (for margin)

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cost_cards",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_cards")),
        sa.UniqueConstraint("key", name=op.f("uq_cost_cards_key")),
    )
    op.create_table(
        "cost_card_versions",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("cost_card_id", BIGINT, nullable=False),
        sa.Column("version", BIGINT, nullable=False),
        sa.Column("effective_from", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cost_card_id"], ["cost_cards.id"], name=op.f("fk_cost_card_versions_cost_card_id_cost_cards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_card_versions")),
        sa.UniqueConstraint(
            "cost_card_id", "effective_from", name=op.f("uq_cost_card_versions_cost_card_id_effective_from")
        ),
        sa.UniqueConstraint(
            "cost_card_id", "version", name=op.f("uq_cost_card_versions_cost_card_id_version")
        ),
    )
    op.create_table(
        "cost_prices",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("version_id", BIGINT, nullable=False),
        sa.Column("meter_id", BIGINT, nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("per_units", BIGINT, nullable=False),
        sa.Column("cost_nanos", BIGINT, nullable=False),
        sa.CheckConstraint("per_units > 0", name=op.f("ck_cost_prices_per_units_positive")),
        sa.CheckConstraint("cost_nanos >= 0", name=op.f("ck_cost_prices_cost_not_negative")),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_cost_prices_meter_id_meters")),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["cost_card_versions.id"],
            name=op.f("fk_cost_prices_version_id_cost_card_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_prices")),
        sa.UniqueConstraint(
            "version_id", "meter_id", "model", name=op.f("uq_cost_prices_version_id_meter_id_model")
        ),
    )


def downgrade() -> None:
    op.drop_table("cost_prices")
    op.drop_table("cost_card_versions")
    op.drop_table("cost_cards")
