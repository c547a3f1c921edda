"""The store facade: one engine, one repository per concern."""

from __future__ import annotations

import sqlalchemy as sa

from portwright.store._accounts import AccountRepository
from portwright.store._batches import BatchRepository
from portwright.store._billing import BillingRepository
from portwright.store._console import ConsoleRepository
from portwright.store._customers import CustomerRepository
from portwright.store._deliveries import DeliveryRepository
from portwright.store._endpoints import EndpointRepository
from portwright.store._engine import create_engine
from portwright.store._escalations import EscalationRepository
from portwright.store._fleet import FleetRepository
from portwright.store._held import HeldBlobRepository
from portwright.store._idempotency import IdempotencyRepository
from portwright.store._inbox import InboxRepository
from portwright.store._intake import IntakeRepository
from portwright.store._jobs import JobRepository
from portwright.store._migrate import migrate
from portwright.store._misc import AuditRepository, IntelRepository, TenantRepository
from portwright.store._outbox import OutboxRepository
from portwright.store._portals import PortalRepository
from portwright.store._retention import RetentionRepository
from portwright.store._rollouts import RolloutRepository
from portwright.store._scope import install_system_scope
from portwright.store._sites import SiteRepository
from portwright.store._usage import UsageRepository
from portwright.store._vault import VaultRepository
from portwright.store._workers import WorkerRepository

__all__ = ["Store"]


class Store:
    """All SQL lives behind this object. `Store.open(url)` creates and migrates."""

    def __init__(self, engine: sa.Engine) -> None:
        install_system_scope(engine)
        self.engine = engine
        self.jobs = JobRepository(engine)
        self.portals = PortalRepository(engine)
        self.sites = SiteRepository(engine)
        self.workers = WorkerRepository(engine)
        self.tenants = TenantRepository(engine)
        self.intel = IntelRepository(engine)
        self.audit = AuditRepository(engine)
        self.accounts = AccountRepository(engine)
        self.idempotency = IdempotencyRepository(engine)
        self.inbox = InboxRepository(engine)
        self.vault = VaultRepository(engine)
        self.usage = UsageRepository(engine)
        self.fleet = FleetRepository(engine)
        self.outbox = OutboxRepository(engine)
        self.endpoints = EndpointRepository(engine)
        self.deliveries = DeliveryRepository(engine)
        self.console = ConsoleRepository(engine)
        self.escalations = EscalationRepository(engine)
        self.batches = BatchRepository(engine)
        self.held = HeldBlobRepository(engine)
        self.retention = RetentionRepository(engine)
        self.rollouts = RolloutRepository(engine)
        self.customers = CustomerRepository(engine)
        self.billing = BillingRepository(engine)
        self.intake = IntakeRepository(engine)

    @classmethod
    def open(cls, url: str, *, run_migrations: bool = True, pool_size: int = 10) -> Store:
        engine = create_engine(url, pool_size=pool_size)
        install_system_scope(engine)  # platform-wide unless a query is made for one tenant
        if run_migrations:
            migrate(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()
