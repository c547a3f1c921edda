"""The engine ladder: the cheapest engine that works per site, remembered by every worker.

async with Ladder(browsers=pool, proxies=proxies, captcha=solvers,
                  memory=StoreTierMemory(store)) as ladder:
    result = await ladder.fetch(url, wait_for="h1.title", extract=rules)
    result.rung, result.credits, result.extracted
"""

from portwright.engines.ladder._extract import Extracted, ExtractRule, Rule, extract, title_of
from portwright.engines.ladder._guard_proxy import GuardProxy
from portwright.engines.ladder._http import Guard, warm
from portwright.engines.ladder._ladder import Ladder
from portwright.engines.ladder._memory import (
    MemoryTierMemory,
    StoreTierMemory,
    TierMemory,
    choose_start,
)
from portwright.engines.ladder._result import Attempt, FetchResult
from portwright.engines.ladder._rungs import (
    DEFAULT_RUNGS,
    ENGINE_RUNGS,
    EngineKind,
    LadderConfig,
    Rung,
    site_of,
)
from portwright.engines.ladder._session import Session, SessionStore
from portwright.engines.ladder._signals import ChallengeForm, find_challenge, unrendered

__all__ = [
    "DEFAULT_RUNGS",
    "ENGINE_RUNGS",
    "Attempt",
    "ChallengeForm",
    "EngineKind",
    "ExtractRule",
    "Extracted",
    "FetchResult",
    "Guard",
    "GuardProxy",
    "Ladder",
    "LadderConfig",
    "MemoryTierMemory",
    "Rule",
    "Rung",
    "Session",
    "SessionStore",
    "StoreTierMemory",
    "TierMemory",
    "choose_start",
    "extract",
    "find_challenge",
    "site_of",
    "title_of",
    "unrendered",
    "warm",
]
