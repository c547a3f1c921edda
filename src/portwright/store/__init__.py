"""Persistence: every SQL statement Portwright runs lives in this package."""

from portwright.store._blobs import BlobStore, LocalBlobStore
from portwright.store._engine import create_engine, is_sqlite
from portwright.store._jobs import JobNotFoundError, StaleStateError
from portwright.store._migrate import current_revision, head_revision, metadata_of, migrate
from portwright.store._portals import BreakerPolicy
from portwright.store._records import (
    AuditRecord,
    BreakerRecord,
    EscalationRecord,
    EventRecord,
    EvidenceRecord,
    JobRecord,
    ObservationRecord,
    PortalRecord,
    SelectorMapRecord,
    TenantRecord,
    WorkerRecord,
)
from portwright.store._store import Store

__all__ = [
    "AuditRecord",
    "BlobStore",
    "BreakerPolicy",
    "BreakerRecord",
    "EscalationRecord",
    "EventRecord",
    "EvidenceRecord",
    "JobNotFoundError",
    "JobRecord",
    "LocalBlobStore",
    "ObservationRecord",
    "PortalRecord",
    "SelectorMapRecord",
    "StaleStateError",
    "Store",
    "TenantRecord",
    "WorkerRecord",
    "create_engine",
    "current_revision",
    "head_revision",
    "is_sqlite",
    "metadata_of",
    "migrate",
]
