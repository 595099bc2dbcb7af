"""Ready to distribute by account (Citus): account_id in every primary key, unique constraint and
foreign key between two account tables

Primary keys (account_id, id) on PostgreSQL; foreign keys from one account table to another carry
account_id on both sides, e.g. ledger_entries (account_id, grant_id) -> credit_grants (account_id, id);
unique constraints gain account_id (after the looked-up column, so the index still finds a token or
a provider id alone); payment_facts gains account_id (its top-up's). core.db.distribution checks it.

SQLite keeps ``id INTEGER PRIMARY KEY`` (only the rowid autoincrements; Alembic does not compare
primary keys), and each referenced table gets an unnamed UNIQUE (account_id, id) for the composite
foreign keys (SQLite wants a unique parent key). A downgrade leaves that unnamed UNIQUE in place on
SQLite: id is unique there on its own, so it constrains nothing more (and an upgrade does not add it
twice).

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables other account tables refer to: on SQLite they need a UNIQUE (account_id, id).
PARENTS = (
    "credit_grants",
    "top_ups",
    "alert_webhooks",
    "alert_slack_webhooks",
    "alert_rules",
    "spend_caps",
    "alert_firings",
)

# Primary key before -> after (PostgreSQL).
PRIMARY_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{
        table: (("id",), ("account_id", "id"))
        for table in (
            *PARENTS,
            "ledger_entries",
            "payment_facts",
            "payment_cards",
            "alert_deliveries",
            "notifications",
            "authorize_refusals",
            "invitations",
            "customer_api_keys",
            "portal_sessions",
            "support_approvals",
        )
    },
    "payment_alerts": (("top_up_id", "alert"), ("account_id", "top_up_id", "alert")),
}

# (table, column, referenced table): column -> table.id becomes (account_id, column) -> (account_id, id).
FOREIGN_KEYS = (
    ("ledger_entries", "grant_id", "credit_grants"),
    ("top_ups", "grant_id", "credit_grants"),
    ("support_approvals", "grant_id", "credit_grants"),
    ("credit_expiry_notices", "grant_id", "credit_grants"),
    ("credit_expiry_notices", "rule_id", "alert_rules"),
    ("credit_expiry_notices", "firing_id", "alert_firings"),
    ("auto_recharges", "in_flight_top_up_id", "top_ups"),
    ("payment_alerts", "top_up_id", "top_ups"),
    ("payment_facts", "top_up_id", "top_ups"),
    ("alert_rules", "webhook_id", "alert_webhooks"),
    ("alert_rules", "slack_webhook_id", "alert_slack_webhooks"),
    ("alert_firings", "rule_id", "alert_rules"),
    ("alert_firings", "cap_id", "spend_caps"),
    ("alert_deliveries", "firing_id", "alert_firings"),
    ("alert_deliveries", "webhook_id", "alert_webhooks"),
    ("alert_deliveries", "slack_webhook_id", "alert_slack_webhooks"),
    ("notifications", "firing_id", "alert_firings"),
)

# (table, columns before, columns after)
UNIQUES = (
    ("credit_grants", ("idempotency_key",), ("account_id", "idempotency_key")),
    ("invitations", ("token_hash",), ("token_hash", "account_id")),
    ("top_ups", ("checkout_session_id",), ("checkout_session_id", "account_id")),
    ("top_ups", ("payment_intent_id",), ("payment_intent_id", "account_id")),
    ("payment_facts", ("top_up_id", "kind", "object_id"), ("top_up_id", "kind", "object_id", "account_id")),
    ("customer_api_keys", ("secret_sha256",), ("secret_sha256", "account_id")),
    ("customer_api_keys", ("submission_id",), ("submission_id", "account_id")),
    ("portal_sessions", ("token_hash",), ("token_hash", "account_id")),
)

TABLES = sorted(
    set(PRIMARY_KEYS) | {t for t, _, _ in FOREIGN_KEYS} | {t for t, _, _ in UNIQUES},
    # Referenced tables first (SQLite checks the parent key's uniqueness at the end anyway).
    key=lambda t: (t not in PARENTS, PARENTS.index(t) if t in PARENTS else 0, t),
)


def _uq_name(table: str, columns: Sequence[str]) -> str:
    return f"uq_{table}_{'_'.join(columns)}"


def _fk_name(table: str, column: str, target: str) -> str:
    return f"fk_{table}_{column}_{target}"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _has_unnamed_account_unique(table: str) -> bool:
    inspector = sa.inspect(op.get_bind())
    return any(
        uq["name"] is None and list(uq["column_names"]) == ["account_id", "id"]
        for uq in inspector.get_unique_constraints(table)
    )


def _add_payment_fact_accounts() -> None:
    op.add_column("payment_facts", sa.Column("account_id", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE payment_facts SET account_id = "
        "(SELECT top_ups.account_id FROM top_ups WHERE top_ups.id = payment_facts.top_up_id)"
    )


def upgrade() -> None:
    _add_payment_fact_accounts()
    if _sqlite():
        _upgrade_sqlite()
    else:
        _upgrade_postgres()


def _upgrade_postgres() -> None:
    op.alter_column("payment_facts", "account_id", existing_type=sa.String(length=64), nullable=False)
    for table, column, target in FOREIGN_KEYS:
        op.drop_constraint(_fk_name(table, column, target), table, type_="foreignkey")
    for table, before, _ in UNIQUES:
        op.drop_constraint(_uq_name(table, before), table, type_="unique")
    for table, (_, after) in PRIMARY_KEYS.items():
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, list(after))
    for table, _, after in UNIQUES:
        op.create_unique_constraint(_uq_name(table, after), table, list(after))
    for table, column, target in FOREIGN_KEYS:
        op.create_foreign_key(
            _fk_name(table, "account_id", target), table, target, ["account_id", column], ["account_id", "id"]
        )


def _upgrade_sqlite() -> None:
    for table in TABLES:
        extra = ()
        if table in PARENTS and not _has_unnamed_account_unique(table):
            extra = (sa.UniqueConstraint("account_id", "id"),)
        with op.batch_alter_table(table, recreate="always", table_args=extra) as batch:
            if table == "payment_facts":
                batch.alter_column("account_id", existing_type=sa.String(length=64), nullable=False)
            for t, column, target in FOREIGN_KEYS:
                if t == table:
                    batch.drop_constraint(_fk_name(table, column, target), type_="foreignkey")
                    batch.create_foreign_key(
                        _fk_name(table, "account_id", target),
                        target,
                        ["account_id", column],
                        ["account_id", "id"],
                    )
            for t, before, after in UNIQUES:
                if t == table:
                    batch.drop_constraint(_uq_name(table, before), type_="unique")
                    batch.create_unique_constraint(_uq_name(table, after), list(after))


def downgrade() -> None:
    if _sqlite():
        _downgrade_sqlite()
    else:
        _downgrade_postgres()


def _downgrade_postgres() -> None:
    for table, _, target in FOREIGN_KEYS:
        op.drop_constraint(_fk_name(table, "account_id", target), table, type_="foreignkey")
    for table, _, after in UNIQUES:
        op.drop_constraint(_uq_name(table, after), table, type_="unique")
    for table, (before, _) in PRIMARY_KEYS.items():
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, list(before))
    for table, before, _ in UNIQUES:
        op.create_unique_constraint(_uq_name(table, before), table, list(before))
    for table, column, target in FOREIGN_KEYS:
        op.create_foreign_key(_fk_name(table, column, target), table, target, [column], ["id"])
    op.drop_column("payment_facts", "account_id")


def _downgrade_sqlite() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always") as batch:
            for t, column, target in FOREIGN_KEYS:
                if t == table:
                    batch.drop_constraint(_fk_name(table, "account_id", target), type_="foreignkey")
                    batch.create_foreign_key(_fk_name(table, column, target), target, [column], ["id"])
            for t, before, after in UNIQUES:
                if t == table:
                    batch.drop_constraint(_uq_name(table, after), type_="unique")
                    batch.create_unique_constraint(_uq_name(table, before), list(before))
            if table == "payment_facts":
                batch.drop_column("account_id")
