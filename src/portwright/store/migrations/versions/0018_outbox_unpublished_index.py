"""outbox: the relay's queue is a partial index on the unpublished ids, not (published_at, id)

Marking an event published wrote a second entry into the (published_at, id) index and
left the old NULL entry there until vacuum, so the relay's `published_at IS NULL` scan
walked every recently published row's dead entry. The partial index holds unpublished
rows only: a published row's new version gets no entry in it.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"

_UNPUBLISHED = "published_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        sqlite_where=sa.text(_UNPUBLISHED),
        postgresql_where=sa.text(_UNPUBLISHED),
    )
    op.drop_index("ix_outbox_published_at_id", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_published_at_id", "outbox", ["published_at", "id"])
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
