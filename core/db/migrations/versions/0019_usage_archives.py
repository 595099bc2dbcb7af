"""Archived months of raw usage events (Parquet files) and their per-batch totals

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage_archives",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("row_count", BIGINT, nullable=False),
        sa.Column("amount_nanos", BIGINT, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", BIGINT, nullable=False),
        sa.Column("archived_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_usage_archives")),
    )
    op.create_table(
        "archived_event_totals",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("batch_id", BIGINT, nullable=False),
        sa.Column("meter_id", BIGINT, nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("event_count", BIGINT, nullable=False),
        sa.Column("quantity", BIGINT, nullable=False),
        sa.Column("amount_nanos", BIGINT, nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "month", "batch_id", "meter_id", "model", name=op.f("pk_archived_event_totals")
        ),
    )


def downgrade() -> None:
    op.drop_table("archived_event_totals")
    op.drop_table("usage_archives")
