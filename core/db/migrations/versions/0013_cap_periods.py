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


def _firings_unlinked_on_sqlite() -> bool:
    """SQLite alters ``spend_caps`` by copying it to a new table and dropping the old one, which
    its firings' foreign keys forbid (``PRAGMA foreign_keys`` is on and cannot be turned off inside
    the migration's transaction). So the links are kept aside and the firings unlinked meanwhile;
    ``_relink_firings`` puts them back (the copy keeps the caps' ids)."""
    if op.get_bind().dialect.name != "sqlite":
        return False
    op.execute("CREATE TABLE _cap_firing_links (firing_id INTEGER PRIMARY KEY, cap_id INTEGER NOT NULL)")
    op.execute(
        "INSERT INTO _cap_firing_links (firing_id, cap_id) "
        "SELECT id, cap_id FROM alert_firings WHERE cap_id IS NOT NULL"
    )
    op.execute("UPDATE alert_firings SET cap_id = NULL WHERE cap_id IS NOT NULL")
    return True


def _relink_firings() -> None:
    op.execute(
        "UPDATE alert_firings SET cap_id = "
        "(SELECT cap_id FROM _cap_firing_links WHERE firing_id = alert_firings.id) "
        "WHERE id IN (SELECT firing_id FROM _cap_firing_links)"
    )
    op.execute("DROP TABLE _cap_firing_links")


def upgrade() -> None:
    unlinked = _firings_unlinked_on_sqlite()
    with op.batch_alter_table("spend_caps") as batch:
        batch.add_column(sa.Column("period", sa.String(length=8), nullable=False, server_default="month"))
        batch.drop_constraint(op.f("ck_spend_caps_scope_known"), type_="check")
        batch.create_check_constraint("scope_known", "scope IN ('account', 'project', 'meter', 'api_key')")
        batch.create_check_constraint("period_known", "period IN ('day', 'week', 'month')")
    if unlinked:
        _relink_firings()


def downgrade() -> None:
    new_kinds = "scope = 'api_key' OR period <> 'month'"
    # Firings stay (deliveries and notifications reference them): they only lose their cap.
    removed = f"SELECT id FROM spend_caps WHERE {new_kinds}"
    op.execute(f"UPDATE alert_firings SET cap_id = NULL WHERE cap_id IN ({removed})")
    op.execute(f"DELETE FROM spend_caps WHERE {new_kinds}")
    unlinked = _firings_unlinked_on_sqlite()
    with op.batch_alter_table("spend_caps") as batch:
        batch.drop_constraint(op.f("ck_spend_caps_period_known"), type_="check")
        batch.drop_constraint(op.f("ck_spend_caps_scope_known"), type_="check")
        batch.create_check_constraint("scope_known", "scope IN ('account', 'project', 'meter')")
        batch.drop_column("period")
    if unlinked:
        _relink_firings()
