"""outbox: the relay's queue is a narrow table of pending ids it deletes from, not a mark

The relay marked each event published (`published_at`) on the outbox row itself: never a
HOT update (the column was in the partial index's predicate), so every event was written
twice, a whole new ~300-byte tuple and its index entries plus their WAL. `outbox_pending`
holds the id of each event not yet published, written with the event and deleted by the
relay's claim; an event is published when it has no row there. `published_at` and the
partial index on it go (nothing else read them; retention now keeps what is pending).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"

_UNPUBLISHED = "published_at IS NULL"


def upgrade() -> None:
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


def downgrade() -> None:
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
