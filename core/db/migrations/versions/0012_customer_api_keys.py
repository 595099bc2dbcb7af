"""Customer API keys: an account's own keys for the Usage & Cost API, stored as SHA-256 hashes

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = core.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customer_api_keys",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.Column("revoked_by", sa.String(length=320), nullable=True),
        sa.Column("submission_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_customer_api_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_api_keys")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_customer_api_keys_secret_sha256")),
        sa.UniqueConstraint("submission_id", name=op.f("uq_customer_api_keys_submission_id")),
    )
    op.create_index("ix_customer_api_keys_account", "customer_api_keys", ["account_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_customer_api_keys_account", table_name="customer_api_keys")
    op.drop_table("customer_api_keys")
