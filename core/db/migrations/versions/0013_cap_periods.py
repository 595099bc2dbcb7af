"""Spend caps stack: a period per cap (day, week from Monday, month; in the account's zone) and
caps on an API key

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("spend_caps") as batch:
        batch.add_column(sa.Column("period", sa.String(length=8), nullable=False, server_default="month"))
        batch.drop_constraint(op.f("ck_spend_caps_scope_known"), type_="check")
        batch.create_check_constraint(
            "scope_known", "scope IN ('account', 'project', 'meter', 'api_key')"
        )
        batch.create_check_constraint("period_known", "period IN ('day', 'week', 'month')")


def downgrade() -> None:
    new_kinds = "scope = 'api_key' OR period <> 'month'"
    op.execute(f"DELETE FROM alert_firings WHERE cap_id IN (SELECT id FROM spend_caps WHERE {new_kinds})")
    op.execute(f"DELETE FROM spend_caps WHERE {new_kinds}")
    with op.batch_alter_table("spend_caps") as batch:
        batch.drop_constraint(op.f("ck_spend_caps_period_known"), type_="check")
        batch.drop_constraint(op.f("ck_spend_caps_scope_known"), type_="check")
        batch.create_check_constraint("scope_known", "scope IN ('account', 'project', 'meter')")
        batch.drop_column("period")
