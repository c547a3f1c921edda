"""Persistence: every SQL statement Portwright runs lives in this package."""

from portwright.store._accounts import ApiKeyRecord
from portwright.store._blobs import (
    BlobStore,
    BlobStoreConfigError,
    LocalBlobStore,
    S3BlobStore,
    blob_store_from,
)
from portwright.store._breakers import SqlBreakerStorage
from portwright.store._console import OperatorRecord, OperatorSession
from portwright.store._customers import (
    CustomerRecord,
    CustomerSession,
    EmailTakenError,
    NewNotification,
    NotificationRecord,
)
from portwright.store._deliveries import AttemptRecord, DeliveryFilter, DeliveryRecord
from portwright.store._endpoints import EndpointRecord
from portwright.store._engine import PG_CONNECT_ARGS, create_engine, is_sqlite
from portwright.store._escalations import AuditNote, CasOutcome, EscalationPage
from portwright.store._fleet import ProxyBurnRecord, TierStatRecord
from portwright.store._idempotency import IdempotencyClaim
from portwright.store._inbox import FinishedNote, InboxRecord, NewInboxEvent
from portwright.store._jobs import JobIdTakenError, JobNotFoundError, NewJob, StaleStateError
from portwright.store._migrate import current_revision, head_revision, metadata_of, migrate
from portwright.store._outage import OutageBackoff, is_database_unavailable
from portwright.store._outbox import OutboxRecord
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
from portwright.store._rows import to_record
from portwright.store._scope import tenant_transaction
from portwright.store._store import Store
from portwright.store._usage import UsageSummary, UsageTotals
from portwright.store._vault import CredentialRecord, DataKeyRecord

__all__ = [
    "PG_CONNECT_ARGS",
    "ApiKeyRecord",
    "AttemptRecord",
    "AuditNote",
    "AuditRecord",
    "BlobStore",
    "BlobStoreConfigError",
    "BreakerPolicy",
    "BreakerRecord",
    "CasOutcome",
    "CredentialRecord",
    "CustomerRecord",
    "CustomerSession",
    "DataKeyRecord",
    "DeliveryFilter",
    "DeliveryRecord",
    "EmailTakenError",
    "EndpointRecord",
    "EscalationPage",
    "EscalationRecord",
    "EventRecord",
    "EvidenceRecord",
    "FinishedNote",
    "IdempotencyClaim",
    "InboxRecord",
    "JobIdTakenError",
    "JobNotFoundError",
    "JobRecord",
    "LocalBlobStore",
    "NewInboxEvent",
    "NewJob",
    "NewNotification",
    "NotificationRecord",
    "ObservationRecord",
    "OperatorRecord",
    "OperatorSession",
    "OutageBackoff",
    "OutboxRecord",
    "PortalRecord",
    "ProxyBurnRecord",
    "S3BlobStore",
    "SelectorMapRecord",
    "SqlBreakerStorage",
    "StaleStateError",
    "Store",
    "TenantRecord",
    "TierStatRecord",
    "UsageSummary",
    "UsageTotals",
    "WorkerRecord",
    "blob_store_from",
    "create_engine",
    "current_revision",
    "head_revision",
    "is_database_unavailable",
    "is_sqlite",
    "metadata_of",
    "migrate",
    "tenant_transaction",
    "to_record",
]
