"""Fakes and tiny fixtures for testing code built on Portwright (public API)."""

from portwright.testing._channels import MemoryChannel
from portwright.testing._determinism import DeterminismError, FakeJob, check_determinism
from portwright.testing._echo import EchoAdapter, EchoInput
from portwright.testing._fakes import InMemoryBlobStore, ListIdentity
from portwright.testing._step_harness import (
    FakeStepContext,
    NotFakedError,
    RecordingLogger,
    StepOutcome,
    StepRecord,
)
from portwright.testing._wait import wait_until, wait_until_sync

__all__ = [
    "DeterminismError",
    "EchoAdapter",
    "EchoInput",
    "FakeJob",
    "FakeStepContext",
    "InMemoryBlobStore",
    "ListIdentity",
    "MemoryChannel",
    "NotFakedError",
    "RecordingLogger",
    "StepOutcome",
    "StepRecord",
    "check_determinism",
    "wait_until",
    "wait_until_sync",
]
