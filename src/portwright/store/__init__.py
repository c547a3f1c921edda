"""Persistence: every SQL statement Portwright runs lives in this package."""

from portwright.store._accounts import ApiKeyRecord
from portwright.store._batches import BatchRecord, BatchRepository
from portwright.store._billing import BillingAccount, BillingRepository
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
from portwright.store._held import HeldBlob, StoredResult
from portwright.store._idempotency import IdempotencyClaim
from portwright.store._inbox import FinishedNote, InboxRecord, NewInboxEvent
from portwright.store._jobs import JobIdTakenError, JobNotFoundError, NewJob, StaleStateError
from portwright.store._migrate import (
    NAMING_CONVENTION,
    AppSchema,
    app_schemas,
    current_revision,
    current_revisions,
    head_revision,
    head_revisions,
    metadata_of,
    migrate,
)
from portwright.store._outage import OutageBackoff, is_database_unavailable
from portwright.store._outbox import OutboxHead, OutboxRecord
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
    SlotRunRecord,
    TenantRecord,
    WorkerRecord,
)
from portwright.store._retention import EVIDENCE_KINDS, Purged
from portwright.store._rollouts import BREAK_CLASSES, ProbeRecord, RolloutRecord, ShadowStat
from portwright.store._rows import to_record
from portwright.store._scope import tenant_transaction
from portwright.store._sites import SiteRecord, site_name
from portwright.store._slots import SlotFilter
from portwright.store._store import Store
from portwright.store._usage import UsageSummary, UsageTotals
from portwright.store._vault import CredentialRecord, DataKeyRecord

__all__ = [
    "BREAK_CLASSES",
    "EVIDENCE_KINDS",
    "NAMING_CONVENTION",
    "PG_CONNECT_ARGS",
    "ApiKeyRecord",
    "AppSchema",
    "AttemptRecord",
    "AuditNote",
    "AuditRecord",
    "BatchRecord",
    "BatchRepository",
    "BillingAccount",
    "BillingRepository",
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
    "HeldBlob",
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
    "OutboxHead",
    "OutboxRecord",
    "PortalRecord",
    "ProbeRecord",
    "ProxyBurnRecord",
    "Purged",
    "RolloutRecord",
    "S3BlobStore",
    "SelectorMapRecord",
    "ShadowStat",
    "SiteRecord",
    "SlotFilter",
    "SlotRunRecord",
    "SqlBreakerStorage",
    "StaleStateError",
    "Store",
    "StoredResult",
    "TenantRecord",
    "TierStatRecord",
    "UsageSummary",
    "UsageTotals",
    "WorkerRecord",
    "app_schemas",
    "blob_store_from",
    "create_engine",
    "current_revision",
    "current_revisions",
    "head_revision",
    "head_revisions",
    "is_database_unavailable",
    "is_sqlite",
    "metadata_of",
    "migrate",
    "site_name",
    "tenant_transaction",
    "to_record",
]
