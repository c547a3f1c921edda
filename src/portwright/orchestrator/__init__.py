"""The orchestrator: durable jobs on DBOS. DBOS is imported only inside this package."""

from portwright.orchestrator._runtime import Runtime, migrate_databases, queue_name
from portwright.orchestrator._sealed_input import public_input
from portwright.orchestrator._service import (
    ConflictError,
    Decision,
    JobService,
    Replay,
    replay_events,
)

__all__ = [
    "ConflictError",
    "Decision",
    "JobService",
    "Replay",
    "Runtime",
    "migrate_databases",
    "public_input",
    "queue_name",
    "replay_events",
]
