"""The adapter SDK: the public, small, typed surface adapters are written against."""

from portwright.sdk._adapter import Adapter, Job, Logger, RetryPolicy, StepContext
from portwright.sdk._errors import (
    BlockedError,
    ChallengeError,
    IllegalTransitionError,
    InputTimeoutError,
    JobError,
    JobFinishedError,
    PageChangedError,
    PermanentError,
    PortwrightError,
    RateLimitedError,
    TransientError,
    UnknownAdapterError,
)
from portwright.sdk._machine import EngineStates, Outcome, StateMachine, linear_machine
from portwright.sdk._selectors import Page, SelectorMap

__all__ = [
    "Adapter",
    "BlockedError",
    "ChallengeError",
    "EngineStates",
    "IllegalTransitionError",
    "InputTimeoutError",
    "Job",
    "JobError",
    "JobFinishedError",
    "Logger",
    "Outcome",
    "Page",
    "PageChangedError",
    "PermanentError",
    "PortwrightError",
    "RateLimitedError",
    "RetryPolicy",
    "SelectorMap",
    "StateMachine",
    "StepContext",
    "TransientError",
    "UnknownAdapterError",
    "linear_machine",
]
