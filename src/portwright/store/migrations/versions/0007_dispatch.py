"""(formerly dispatch's drivers table; now a step that changes nothing)

The dispatch app ships its own tables in its own Alembic branch (label `dispatch`,
`portwright.apps.dispatch.tables`). Databases that ran the older form of this revision
already have `dispatch_drivers`; the app's branch adopts it. The revision keeps its id
so that the core chain stays linear and those databases still find their history.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
