"""outbox: the relay's queue is a narrow table of pending ids it deletes from, not a mark

The relay marked each event published (`published_at`) on the outbox row itself: never a
HOT update (the column was in the partial index's predicate), so every event was written
twice, a whole new ~300-byte tuple and its index entries plus their WAL. `outbox_pending`
holds the id of each event not yet published, written with the event and deleted by the
relay's claim; an event is published when it has no row there. `published_at` and the
partial index on it go (nothing else read them; retention now keeps what is pending).

The database queues each event itself, a trigger on `outbox` in the inserting statement
(PostgreSQL: one per statement over its transition table of new rows, as cheap as a
data-modifying CTE in the writer's INSERT; SQLite: one per row), so that every writer
queues: a gateway or worker of the previous release still running while this migration
is applied (docs/operations.md, "Upgrades") writes events without knowing the queue.
SQLite drops a table's triggers with the table: a later batch operation that recreates
`outbox` must create `outbox_queue` again (tests/store/test_outbox_queue.py checks it).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"

_UNPUBLISHED = "published_at IS NULL"
_ON_OUTBOX = {"postgresql": " ON outbox", "sqlite": ""}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # no event committed between the queue's fill and its trigger (a previous release's
        # writers keep running: they wait here until this migration commits)
        op.execute("LOCK TABLE outbox IN SHARE ROW EXCLUSIVE MODE")
    op.create_table(
        "outbox_pending",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_pending")),
    )
    # every tenant's rows: migrations run in the system scope (`portwright.store._migrate`)
    op.execute("INSERT INTO outbox_pending (id) SELECT id FROM outbox WHERE published_at IS NULL")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("published_at")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION outbox_queue() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO outbox_pending (id) SELECT id FROM added; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER outbox_queue AFTER INSERT ON outbox "
            "REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION outbox_queue()"
        )
    else:
        op.execute(
            "CREATE TRIGGER outbox_queue AFTER INSERT ON outbox "
            "BEGIN INSERT INTO outbox_pending (id) VALUES (NEW.id); END"
        )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_queue" + _ON_OUTBOX[op.get_bind().dialect.name])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS outbox_queue()")
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("published_at", sa.Float(), nullable=True))
    # when each was published is not known: its creation time stands in (what retention
    # measured from, give or take the relay's delay)
    op.execute(
        "UPDATE outbox SET published_at = created_at "
        "WHERE id NOT IN (SELECT id FROM outbox_pending)"
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        sqlite_where=sa.text(_UNPUBLISHED),
        postgresql_where=sa.text(_UNPUBLISHED),
    )
    op.drop_table("outbox_pending")
