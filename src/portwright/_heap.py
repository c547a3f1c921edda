"""The long-running processes' garbage collector: start-up heap frozen, young passes rarer."""

from __future__ import annotations

import gc

__all__ = ["tune_collector"]


def tune_collector(young_threshold: int) -> None:
    """Called once by a long-running command (`portwright up`, `api`, `worker`, the relay)
    after it has started; tests and libraries that build stacks in-process do not.

    1. Collect once, then move every object alive (the modules, models, schemas, the app
       and the runtime built at start: a few hundred thousand) out of the collector's
       reach (`gc.freeze`), so a full collection scans only what was made since. Each full
       collection a 1,000-item batch's allocations trigger otherwise took ~0.2 s of CPU
       rescanning them (benchmarks/accept_cpu.py --gc-freeze). Objects frozen still go when
       their last reference does; only a reference cycle among them that becomes garbage
       stays (start-up objects live as long as the process anyway).
    2. With `young_threshold` > 0, the youngest generation is collected every
       `young_threshold` net container allocations instead of Python's 700, and the older
       ones every 20 of the younger's passes instead of 10. A batch allocates dicts and
       lists by the hundred thousand, nearly all freed by their reference counts; at 700
       the collector ran ~1,000 times in a 2,000-URL batch, ~0.85 s of a ~3 s CPU total
       (benchmarks/README.md, "Seventh pass"). What cyclic garbage waits meanwhile is
       bounded by the threshold."""
    gc.collect()
    gc.freeze()
    if young_threshold > 0:
        gc.set_threshold(young_threshold, 20, 20)
