"""The adapter SDK: the public, small, typed surface adapters are written against."""

from portwright.sdk._adapter import (
    Adapter,
    IntakeForm,
    Job,
    Logger,
    RetryPolicy,
    Site,
    StepContext,
)
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
from portwright.sdk._extract import ExtractRule
from portwright.sdk._machine import EngineStates, Outcome, StateMachine, linear_machine
from portwright.sdk._secret_input import (
    SECRET_MASK,
    dump_with_secrets,
    map_secret_fields,
    mask_secret_fields,
)
from portwright.sdk._selectors import Page, SelectorMap
from portwright.sdk._tolerance import ShadowTolerance, outputs_agree

__all__ = [
    "SECRET_MASK",
    "Adapter",
    "BlockedError",
    "ChallengeError",
    "EngineStates",
    "ExtractRule",
    "IllegalTransitionError",
    "InputTimeoutError",
    "IntakeForm",
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
    "ShadowTolerance",
    "Site",
    "StateMachine",
    "StepContext",
    "TransientError",
    "UnknownAdapterError",
    "dump_with_secrets",
    "linear_machine",
    "map_secret_fields",
    "mask_secret_fields",
    "outputs_agree",
]
