"""Authorize refusals: per account, UTC minute, reason, project and meter, kept 30 days

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "authorize_refusals",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("minute", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("meter", sa.String(length=64), nullable=False),
        sa.Column("count", _ID, nullable=False),
        sa.Column("last_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_cost_nanos", _ID, nullable=False),
        sa.Column("last_remaining_nanos", _ID, nullable=False),
        sa.CheckConstraint(
            "reason IN ('hard_cap_reached', 'insufficient_credits', 'account_suspended')",
            name=op.f("ck_authorize_refusals_reason_known"),
        ),
        sa.CheckConstraint("count > 0", name=op.f("ck_authorize_refusals_count_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorize_refusals")),
        sa.UniqueConstraint(
            "account_id",
            "minute",
            "reason",
            "project",
            "meter",
            name=op.f("uq_authorize_refusals_account_id_minute_reason_project_meter"),
        ),
    )
    op.create_index("ix_authorize_refusals_minute", "authorize_refusals", ["minute"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_authorize_refusals_minute", table_name="authorize_refusals")
    op.drop_table("authorize_refusals")
