"""Which tables Citus would distribute by account, which it would copy to every node, which stay local.

The plan past one PostgreSQL primary is Citus with ``account_id`` as the distribution column
(docs/scaling.md, "Ready to distribute"). Citus needs three things of the schema, which
``distribution_problems`` checks on the SQLAlchemy metadata (tests/core/db/test_distribution_ready.py):

- every primary key and every unique constraint or unique index of a distributed table contains
  the distribution column (a shard can only enforce uniqueness among its own rows);
- a foreign key between two distributed tables contains the distribution column on both sides,
  matched to each other (both rows live on the same shard); ``account_id -> accounts.id`` is such a
  key, since ``accounts`` is distributed by its ``id``;
- a reference table (copied whole to every node) refers only to reference tables, and nothing
  distributed or reference refers to a local table (one kept on the coordinator).

Every table of the metadata is classified here, by name: a new table that is not fails the test.
"""

from __future__ import annotations

from sqlalchemy import ForeignKeyConstraint, MetaData, Table, UniqueConstraint

DISTRIBUTION_COLUMN = "account_id"

# The accounts themselves: distributed by their id, colocated with every account_id table.
ACCOUNTS_TABLE = "accounts"
DISTRIBUTION_COLUMNS = {ACCOUNTS_TABLE: "id"}

# Distributed by account_id (accounts by id), all colocated with accounts.
DISTRIBUTED_TABLES: tuple[str, ...] = (
    "accounts",
    # money
    "credit_grants",
    "ledger_entries",
    "top_ups",
    "payment_facts",
    "payment_alerts",
    "payment_customers",
    "payment_cards",
    "auto_recharges",
    # usage
    "usage_events",
    "usage_event_keys",  # the dedupe window (core.metering.dedupe)
    "usage_rollup_hourly",
    "usage_rollup_daily",
    "late_usage",
    "archived_event_totals",  # archived months' totals per account and month
    # spend control
    "spend_caps",
    "spend_settings",
    "alert_rules",
    "alert_webhooks",
    "alert_slack_webhooks",
    "alert_firings",
    "alert_deliveries",
    "notifications",
    "notification_reads",
    "credit_expiry_notices",
    "authorize_refusals",
    # people and access of one account
    "memberships",
    "invitations",
    "customer_api_keys",
    "portal_sessions",
    "support_approvals",
)

# Copied to every node: small catalogues read by every account's rows, written rarely.
REFERENCE_TABLES: dict[str, str] = {
    "meters": "the meter catalogue: every event and price names a meter",
    "rate_cards": (
        "shared price lists; an override card carries the account_id of the account it was made for, "
        "but it is still a catalogue row that accounts.rate_card_id/override_rate_card_id point at"
    ),
    "rate_card_versions": "versions of the rate cards (immutable once in force)",
    "rate_prices": "prices of the rate card versions (immutable)",
    "cost_cards": "internal cost catalogue (margin), never per account",
    "cost_card_versions": "versions of the cost cards",
    "cost_prices": "costs per meter and model of a cost card version",
    "users": (
        "a person can belong to many accounts (memberships.user_id refers to it, which Citus allows "
        "only towards a reference table); written on sign-up and once per portal session start"
    ),
}

# Kept on the coordinator (Citus local tables): rows that belong to no single account.
LOCAL_TABLES: dict[str, str] = {
    "ingest_batches": (
        "one batch holds events of many accounts; nothing has a foreign key to it "
        "(usage_events.batch_id, accounts.last_batch_id and ledger references are plain values)"
    ),
    "audit_log": "operator actions without an account too (account_id is nullable); append-only",
    "support_submissions": "console form submissions, some without an account (account_id is nullable)",
    "payment_events": (
        "provider webhook events, recorded by the provider's event id before the account is known"
    ),
    "payment_sandbox_objects": "the sandbox provider's own records (stand-in for Stripe's side)",
    "settings": "server-wide key/value settings",
    "usage_archives": "one row per archived month file, for all accounts",
}


def distribution_column(table_name: str) -> str:
    return DISTRIBUTION_COLUMNS.get(table_name, DISTRIBUTION_COLUMN)


def classified_tables() -> set[str]:
    return set(DISTRIBUTED_TABLES) | set(REFERENCE_TABLES) | set(LOCAL_TABLES)


def unclassified_tables(metadata: MetaData) -> list[str]:
    """Tables of ``metadata`` that are neither distributed, reference nor local (sorted)."""
    return sorted(set(metadata.tables) - classified_tables())


def _kind(name: str) -> str:
    if name in DISTRIBUTED_TABLES:
        return "distributed"
    if name in REFERENCE_TABLES:
        return "reference"
    if name in LOCAL_TABLES:
        return "local"
    return "unclassified"


def _columns(names: list[str]) -> str:
    return "(" + ", ".join(names) + ")"


def _distributed_table_problems(table: Table) -> list[str]:
    problems: list[str] = []
    column = distribution_column(table.name)
    if column not in table.c:
        return [f"{table.name}: distributed table without the distribution column {column}"]
    if table.c[column].nullable:
        problems.append(f"{table.name}: distribution column {column} is nullable")
    pk = [c.name for c in table.primary_key.columns]
    if column not in pk:
        problems.append(f"{table.name}: primary key {_columns(pk)} does not contain {column}")
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            names = [c.name for c in constraint.columns]
            if column not in names:
                problems.append(
                    f"{table.name}: unique constraint {_columns(names)} does not contain {column}"
                )
    for index in table.indexes:
        names = [c.name for c in index.columns]
        if index.unique and column not in names:
            problems.append(
                f"{table.name}: unique index {index.name} {_columns(names)} does not contain {column}"
            )
    return problems


def _foreign_key_problems(table: Table, kinds: dict[str, str]) -> list[str]:
    problems: list[str] = []
    kind = kinds[table.name]
    for fk in sorted(
        (c for c in table.constraints if isinstance(c, ForeignKeyConstraint)), key=lambda c: c.column_keys
    ):
        target = fk.elements[0].column.table.name
        target_kind = kinds.get(target, "unclassified")
        pairs = [(element.parent.name, element.column.name) for element in fk.elements]
        shown = f"{table.name}{_columns([p for p, _ in pairs])} -> {target}{_columns([t for _, t in pairs])}"
        if target_kind == "unclassified":
            problems.append(f"{shown}: {target} is not classified")
        elif kind == "reference" and target_kind != "reference":
            problems.append(
                f"{shown}: a reference table may refer only to reference tables ({target} is {target_kind})"
            )
        elif kind == "distributed" and target_kind == "local":
            problems.append(f"{shown}: a distributed table may not refer to a local table")
        elif kind == "distributed" and target_kind == "distributed":
            wanted = (distribution_column(table.name), distribution_column(target))
            if wanted not in pairs:
                problems.append(
                    f"{shown}: a foreign key between distributed tables must match {wanted[0]} "
                    f"to {target}.{wanted[1]}"
                )
        elif kind == "local" and target_kind == "distributed":
            problems.append(f"{shown}: a local table may not refer to a distributed table")
    return problems


def distribution_problems(metadata: MetaData) -> list[str]:
    """What keeps ``metadata`` from being distributed by account with Citus, one sentence each.

    Empty when every table is classified, every distributed table has its distribution column
    (not nullable, of one type everywhere) in its primary key and unique constraints/indexes, and
    no foreign key crosses the classes in a way Citus refuses.
    """
    problems = [f"{name}: not classified (core/db/distribution.py)" for name in unclassified_tables(metadata)]
    kinds = {name: _kind(name) for name in metadata.tables}
    types: dict[str, list[str]] = {}
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        if kinds[table.name] == "distributed":
            problems.extend(_distributed_table_problems(table))
            column = distribution_column(table.name)
            if column in table.c:
                types.setdefault(repr(table.c[column].type), []).append(table.name)
        if kinds[table.name] != "unclassified":
            problems.extend(_foreign_key_problems(table, kinds))
    if len(types) > 1:
        shown = "; ".join(f"{t}: {', '.join(names)}" for t, names in sorted(types.items()))
        problems.append(f"the distribution columns are not all of one type ({shown})")
    return problems
