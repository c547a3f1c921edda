"""breaker_outcomes: a row counts the calls that ended with its outcome at its time

A chunk's record step wrote one `breaker_outcomes` row per successful item (a thousand
rows, index entries and their WAL for a batch of a thousand) only for the breaker to count
them. `calls` (1 for every row written before, and by a writer that does not set it) says
how many calls a row stands for; `SqlBreakerStorage` writes a sub-chunk's successes as one
row and counts the window as the sum of `calls`. The rows of one append share their time,
so they enter and leave the window together: the counts are those of a row per outcome.

A process of the previous release still running after this migration (docs/operations.md,
"Upgrades") counts rows, not calls: until it is rolled it sees a chunk's successes as one
call, and a breaker it moves judges failures against fewer successes than there were.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"


def upgrade() -> None:
    with op.batch_alter_table("breaker_outcomes") as batch:
        batch.add_column(sa.Column("calls", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    # a row per call again: each row counting n calls gets n - 1 copies (same name,
    # outcome and time), which the window of the previous release counts as n rows
    op.execute(
        "WITH RECURSIVE copies (id, k) AS ("
        "SELECT id, 2 FROM breaker_outcomes WHERE calls > 1 "
        "UNION ALL SELECT c.id, c.k + 1 FROM copies c "
        "JOIN breaker_outcomes b ON b.id = c.id WHERE c.k < b.calls) "
        "INSERT INTO breaker_outcomes (name, ok, at, calls) "
        "SELECT b.name, b.ok, b.at, 1 FROM copies c JOIN breaker_outcomes b ON b.id = c.id"
    )
    with op.batch_alter_table("breaker_outcomes") as batch:
        batch.drop_column("calls")
