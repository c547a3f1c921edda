"""Fakes and tiny fixtures for testing code built on Portwright (public API)."""

from portwright.testing._cassette import Cassette, CassetteMissError
from portwright.testing._channels import MemoryChannel
from portwright.testing._clock import ManualClock
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
    "Cassette",
    "CassetteMissError",
    "DeterminismError",
    "EchoAdapter",
    "EchoInput",
    "FakeJob",
    "FakeStepContext",
    "InMemoryBlobStore",
    "ListIdentity",
    "ManualClock",
    "MemoryChannel",
    "NotFakedError",
    "RecordingLogger",
    "StepOutcome",
    "StepRecord",
    "check_determinism",
    "wait_until",
    "wait_until_sync",
]
