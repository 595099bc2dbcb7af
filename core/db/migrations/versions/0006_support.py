"""Support console: grants awaiting a second agent; indexes the account search reads

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "support_approvals",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("amount_nanos", _ID, nullable=False),
        sa.Column("expires_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=320), nullable=False),
        sa.Column("requested_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("decided_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("grant_id", _ID, nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'rejected')", name=op.f("ck_support_approvals_state_known")
        ),
        sa.CheckConstraint("amount_nanos > 0", name=op.f("ck_support_approvals_amount_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_support_approvals_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["credit_grants.id"], name=op.f("fk_support_approvals_grant_id_credit_grants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_approvals")),
    )
    op.create_index("ix_support_approvals_state", "support_approvals", ["state", "id"], unique=False)
    op.create_index("ix_support_approvals_account", "support_approvals", ["account_id", "id"], unique=False)
    op.create_index(
        "ix_usage_rollup_daily_api_key", "usage_rollup_daily", ["api_key", "account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_usage_rollup_daily_api_key", table_name="usage_rollup_daily")
    op.drop_index("ix_support_approvals_account", table_name="support_approvals")
    op.drop_index("ix_support_approvals_state", table_name="support_approvals")
    op.drop_table("support_approvals")
