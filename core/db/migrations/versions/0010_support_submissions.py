"""Support submissions: one row per console form submission, so a retry or double click acts once

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "support_submissions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("fields_hash", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('started', 'done')", name=op.f("ck_support_submissions_state_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_submissions")),
    )
    op.create_index("ix_support_submissions_target", "support_submissions", ["target", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_support_submissions_target", table_name="support_submissions")
    op.drop_table("support_submissions")
