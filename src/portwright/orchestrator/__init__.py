"""The orchestrator: durable jobs on DBOS. DBOS is imported only inside this package."""

from portwright.orchestrator._decisions import (
    BULK_CAP,
    BulkOutcome,
    DecisionConflictError,
    DecisionOutcome,
    NotApplicableError,
    SelectionTooLargeError,
    actions_for,
    can_patch,
    option_values,
)
from portwright.orchestrator._decisions import claim as claim_escalation
from portwright.orchestrator._decisions import decide as decide_escalation
from portwright.orchestrator._decisions import decide_many as decide_escalations
from portwright.orchestrator._host import DbosHost, JobPorts
from portwright.orchestrator._housekeeping import HOUSEKEEPING_SCHEDULE
from portwright.orchestrator._rollouts import (
    RolloutChange,
    Rollouts,
    ShadowStepContext,
    ShadowWriteRefusedError,
)
from portwright.orchestrator._runtime import Runtime, migrate_databases, queue_name
from portwright.orchestrator._sealed_input import public_input
from portwright.orchestrator._service import (
    ConflictError,
    Decision,
    JobService,
    Replay,
    replay_events,
)
from portwright.orchestrator._step_context import CREDENTIALS_NOTE

__all__ = [
    "BULK_CAP",
    "CREDENTIALS_NOTE",
    "HOUSEKEEPING_SCHEDULE",
    "BulkOutcome",
    "ConflictError",
    "DbosHost",
    "Decision",
    "DecisionConflictError",
    "DecisionOutcome",
    "JobPorts",
    "JobService",
    "NotApplicableError",
    "Replay",
    "RolloutChange",
    "Rollouts",
    "Runtime",
    "SelectionTooLargeError",
    "ShadowStepContext",
    "ShadowWriteRefusedError",
    "actions_for",
    "can_patch",
    "claim_escalation",
    "decide_escalation",
    "decide_escalations",
    "migrate_databases",
    "option_values",
    "public_input",
    "queue_name",
    "replay_events",
]
