"""The browser engine: Playwright over the machine's Chromium (or any CDP browser).

- `BrowserPool`: browsers x isolated contexts, recycled, reaped when idle,
  replaced when they crash; a context per job with a `Fingerprint` that
  agrees with its proxy's country.
- Providers: `LocalChromium`, `RemoteCdp` (any CDP endpoint), and the
  sandbox's `ChromiumFarm` handing out CDP URLs of local instances.
- Evidence: `capture_page` / `record_page` (screenshot, DOM, URL, timings,
  secrets masked), one Playwright trace per job (`merge_trace`), and
  `StepBrowser`, the browser side of an orchestrated step.
"""

from portwright.engines.browser._artifacts import JobArtifacts
from portwright.engines.browser._chain import BrowserProviderChain, ChainedProvider
from portwright.engines.browser._evidence import (
    MASK,
    EvidenceSink,
    Masker,
    PageEvidence,
    capture_page,
    record_page,
)
from portwright.engines.browser._farm import ChromiumFarm
from portwright.engines.browser._fingerprint import Fingerprint, fingerprint_for, user_agent_for
from portwright.engines.browser._lease import BrowserLease, StorageState
from portwright.engines.browser._live import (
    CONTROL_NOTE,
    LIVE_NOTE,
    CdpError,
    CdpSession,
    LivePage,
    LiveTarget,
    Notes,
    control_of,
    websocket_url,
)
from portwright.engines.browser._persistent import persistent_context
from portwright.engines.browser._pool import BrowserPool, PoolConfig, PoolStats
from portwright.engines.browser._procs import (
    ProcessInfo,
    browser_processes,
    descendants,
    pss_bytes,
    tree_pss_bytes,
    tree_rss_bytes,
)
from portwright.engines.browser._providers import (
    HARDENED_ARGS,
    HARDENING_SCRIPT,
    BrowserProvider,
    LocalChromium,
    RemoteCdp,
    cdp_endpoint,
    is_remote,
)
from portwright.engines.browser._route_guard import GuardedIdentity, RouteGuard
from portwright.engines.browser._step import StepBrowser
from portwright.engines.browser._trace import merge_trace, trace_ordinals

__all__ = [
    "CONTROL_NOTE",
    "HARDENED_ARGS",
    "HARDENING_SCRIPT",
    "LIVE_NOTE",
    "MASK",
    "BrowserLease",
    "BrowserPool",
    "BrowserProvider",
    "BrowserProviderChain",
    "CdpError",
    "CdpSession",
    "ChainedProvider",
    "ChromiumFarm",
    "EvidenceSink",
    "Fingerprint",
    "GuardedIdentity",
    "JobArtifacts",
    "LivePage",
    "LiveTarget",
    "LocalChromium",
    "Masker",
    "Notes",
    "PageEvidence",
    "PoolConfig",
    "PoolStats",
    "ProcessInfo",
    "RemoteCdp",
    "RouteGuard",
    "StepBrowser",
    "StorageState",
    "browser_processes",
    "capture_page",
    "cdp_endpoint",
    "control_of",
    "descendants",
    "fingerprint_for",
    "is_remote",
    "merge_trace",
    "persistent_context",
    "pss_bytes",
    "record_page",
    "trace_ordinals",
    "tree_pss_bytes",
    "tree_rss_bytes",
    "user_agent_for",
    "websocket_url",
]
