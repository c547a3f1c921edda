"""The long-running processes' start-up heap, kept out of the garbage collector's way."""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]


def freeze_startup_heap() -> None:
    """Collect once, then move every object alive (the modules, models, schemas, the app
    and the runtime built at start: a few hundred thousand) out of the collector's reach
    (`gc.freeze`), so a full collection scans only what was made since. Measured
    (benchmarks/accept_cpu.py --gc-freeze): each full collection a 1,000-item batch's
    allocations trigger otherwise takes ~0.2 s of CPU rescanning the start-up objects, a
    third of a batch's acceptance CPU on average. Objects frozen still go when their last
    reference does; only a reference cycle among them that becomes garbage stays (the
    start-up objects live as long as the process anyway). Long-running commands call this
    once they have started; tests and libraries that build stacks in-process do not."""
    gc.collect()
    gc.freeze()
