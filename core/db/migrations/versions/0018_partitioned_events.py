"""Raw events partitioned by month (PostgreSQL); duplicates found through usage_event_keys

PostgreSQL: ``usage_events`` becomes a table range-partitioned on ``occurred_at``, one
partition per UTC month (``usage_events_pYYYY_MM``, from the oldest stored event's month, or
13 months back when there is none, through two months ahead) and ``usage_events_default``;
primary key ``(account_id, occurred_at, id)``; rows are copied with their ids and the id
sequence is kept. The unique ``(account_id, event_id)`` goes (a unique index of a partitioned
table must hold the partition key): ``usage_event_keys``, partitioned on ``received_month``,
holds the event ids received within the dedupe window, filled here from the stored events.
SQLite: the unique constraint is dropped and ``usage_event_keys`` is one plain table.

The downgrade restores the unique ``(account_id, event_id)``; it refuses, naming a few, when
events of the same id were stored since (possible once their first copy left the window).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

import core.db.types
from core.metering.settings import dedupe_window

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_BACK_WHEN_EMPTY = 13
MONTHS_AHEAD = 2
COLUMNS = (
    "id",
    "account_id",
    "event_id",
    "meter_id",
    "quantity",
    "occurred_at",
    "usage_date",
    "model",
    "project",
    "api_key",
    "dimensions",
    "amount_nanos",
    "rate_card_version_id",
    "content_hash",
    "batch_id",
    "received_at",
)
_COLUMN_DDL = (
    "account_id varchar(64) NOT NULL, event_id varchar(128) NOT NULL, meter_id bigint NOT NULL, "
    "quantity bigint NOT NULL, occurred_at timestamptz NOT NULL, usage_date date NOT NULL, "
    "model varchar(128) NOT NULL, project varchar(128) NOT NULL, api_key varchar(128) NOT NULL, "
    "dimensions json NOT NULL, amount_nanos bigint NOT NULL, rate_card_version_id bigint, "
    "content_hash varchar(32) NOT NULL, batch_id bigint NOT NULL, received_at timestamptz NOT NULL"
)
_KEY_COLUMN_DDL = (
    "account_id varchar(64) NOT NULL, event_id varchar(128) NOT NULL, received_month date NOT NULL, "
    "content_hash varchar(32) NOT NULL, occurred_at timestamptz NOT NULL"
)


def _month(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _months(first: date, last: date) -> list[date]:
    months = []
    while first <= last:
        months.append(first)
        first = _add_months(first, 1)
    return months


def _create_month(parent: str, month: date, *, timestamps: bool) -> None:
    def bound(m: date) -> str:
        return f"'{m.isoformat()} 00:00:00+00'" if timestamps else f"'{m.isoformat()}'"

    op.execute(
        f"CREATE TABLE {parent}_p{month.year:04d}_{month.month:02d} PARTITION OF {parent} "
        f"FOR VALUES FROM ({bound(month)}) TO ({bound(_add_months(month, 1))})"
    )


def _refuse_duplicates() -> None:
    twins = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT account_id, event_id FROM usage_events GROUP BY account_id, event_id "
                "HAVING count(*) > 1 ORDER BY 1, 2 LIMIT 5"
            )
        )
        .all()
    )
    if twins:
        named = ", ".join(f"{a}/{e}" for a, e in twins)
        raise RuntimeError(
            "cannot restore the unique (account_id, event_id) of usage_events: some event ids are "
            f"stored more than once (first ones: {named}); remove the later copies first"
        )


def upgrade() -> None:
    now = datetime.now(UTC)
    received_since = now - dedupe_window()
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgres(now, received_since)
        return
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_usage_events_account_id_event_id", type_="unique")
    op.create_table(
        "usage_event_keys",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("received_month", sa.Date(), nullable=False),
        sa.Column("content_hash", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "event_id", "received_month", name=op.f("pk_usage_event_keys")),
    )
    # SQLite stores datetimes as naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (core.db.types).
    op.get_bind().execute(
        sa.text(
            "INSERT INTO usage_event_keys (account_id, event_id, received_month, content_hash, occurred_at) "
            "SELECT account_id, event_id, substr(received_at, 1, 7) || '-01', content_hash, occurred_at "
            "FROM usage_events WHERE received_at >= :since"
        ),
        {"since": received_since.replace(tzinfo=None).isoformat(" ", "microseconds")},
    )


def _upgrade_postgres(now: datetime, received_since: datetime) -> None:
    bind = op.get_bind()
    sequence = bind.scalar(sa.text("SELECT pg_get_serial_sequence('usage_events', 'id')"))
    op.execute("ALTER TABLE usage_events RENAME TO usage_events_old")
    op.execute("ALTER TABLE usage_events_old RENAME CONSTRAINT pk_usage_events TO pk_usage_events_old")
    op.execute("ALTER TABLE usage_events_old DROP CONSTRAINT uq_usage_events_account_id_event_id")
    op.execute("DROP INDEX ix_usage_events_account_occurred")
    if sequence is None:  # not a serial column: a sequence of its own
        sequence = "usage_events_id_seq"
        op.execute(f"CREATE SEQUENCE {sequence}")
    else:
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY NONE")  # it outlives the old table
    # The primary key comes after the copy: one sorted build per partition instead of an index
    # insert per row (and the copy needs no order).
    op.execute(
        f"CREATE TABLE usage_events (id bigint NOT NULL DEFAULT nextval('{sequence}'::regclass), "
        f"{_COLUMN_DDL}) PARTITION BY RANGE (occurred_at)"
    )
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY usage_events.id")
    oldest = bind.scalar(sa.text("SELECT min(occurred_at) FROM usage_events_old"))
    current = _month(now)
    first = _month(oldest) if oldest is not None else _add_months(current, -MONTHS_BACK_WHEN_EMPTY)
    for month in _months(min(first, current), _add_months(current, MONTHS_AHEAD)):
        _create_month("usage_events", month, timestamps=True)
    op.execute("CREATE TABLE usage_events_default PARTITION OF usage_events DEFAULT")
    columns = ", ".join(COLUMNS)
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    op.execute(f"INSERT INTO usage_events ({columns}) SELECT {columns} FROM usage_events_old")
    op.execute(
        "ALTER TABLE usage_events ADD CONSTRAINT pk_usage_events PRIMARY KEY (account_id, occurred_at, id)"
    )
    op.execute(
        f"SELECT setval('{sequence}', greatest((SELECT max(id) FROM usage_events), "
        f"(SELECT last_value FROM {sequence})))"
    )
    op.execute("DROP TABLE usage_events_old")

    op.execute(
        f"CREATE TABLE usage_event_keys ({_KEY_COLUMN_DDL}, CONSTRAINT pk_usage_event_keys "
        "PRIMARY KEY (account_id, event_id, received_month)) PARTITION BY RANGE (received_month)"
    )
    for month in _months(_month(received_since), _add_months(current, MONTHS_AHEAD)):
        _create_month("usage_event_keys", month, timestamps=False)
    op.execute("CREATE TABLE usage_event_keys_default PARTITION OF usage_event_keys DEFAULT")
    bind.execute(
        sa.text(
            "INSERT INTO usage_event_keys (account_id, event_id, received_month, content_hash, occurred_at) "
            "SELECT account_id, event_id, date_trunc('month', received_at AT TIME ZONE 'UTC')::date, "
            "content_hash, occurred_at FROM usage_events WHERE received_at >= :since"
        ),
        {"since": received_since},
    )
    op.execute("ANALYZE usage_events")
    op.execute("ANALYZE usage_event_keys")


def downgrade() -> None:
    _refuse_duplicates()
    if op.get_bind().dialect.name != "postgresql":
        op.drop_table("usage_event_keys")
        with op.batch_alter_table("usage_events", schema=None) as batch_op:
            batch_op.create_unique_constraint(
                "uq_usage_events_account_id_event_id", ["account_id", "event_id"]
            )
        return
    bind = op.get_bind()
    op.execute("DROP TABLE usage_event_keys")  # its partitions go with it
    sequence = bind.scalar(sa.text("SELECT pg_get_serial_sequence('usage_events', 'id')"))
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    op.execute("ALTER TABLE usage_events RENAME TO usage_events_partitioned")
    op.execute(
        "ALTER TABLE usage_events_partitioned "
        "RENAME CONSTRAINT pk_usage_events TO pk_usage_events_partitioned"
    )
    op.execute(
        f"CREATE TABLE usage_events (id bigint NOT NULL DEFAULT nextval('{sequence}'::regclass), "
        f"{_COLUMN_DDL}, CONSTRAINT pk_usage_events PRIMARY KEY (id), "
        "CONSTRAINT uq_usage_events_account_id_event_id UNIQUE (account_id, event_id))"
    )
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY usage_events.id")
    columns = ", ".join(COLUMNS)
    op.execute(
        f"INSERT INTO usage_events ({columns}) SELECT {columns} FROM usage_events_partitioned ORDER BY id"
    )
    op.execute("DROP TABLE usage_events_partitioned")  # and its partitions
    op.execute("CREATE INDEX ix_usage_events_account_occurred ON usage_events (account_id, occurred_at)")
