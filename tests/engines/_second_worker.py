"""A second worker process: one fetch per site through a ladder on the shared database.

Usage: python -m tests.engines._second_worker DATABASE_URL SOLVER_URL URL [URL …]
Prints one JSON object per URL: the rung it started on, the rung that worked, whether it climbed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from portwright.engines.browser import BrowserPool, PoolConfig
from portwright.engines.ladder import Ladder, Rule, StoreTierMemory
from portwright.resources import TwoCaptchaSolver
from portwright.store import Store

RULES = {"title": Rule("h1.title")}


async def main(database_url: str, solver_url: str, urls: list[str]) -> None:
    store = Store.open(database_url)
    try:
        async with (
            BrowserPool(config=PoolConfig(max_browsers=1)) as browsers,
            Ladder(
                browsers=browsers,
                captcha=TwoCaptchaSolver(solver_url, "sandbox-key", poll_s=0.05),
                memory=StoreTierMemory(store),
            ) as ladder,
        ):
            for url in urls:
                result = await ladder.fetch(url, extract=RULES, session_id="second-worker")
                line = {
                    "url": url,
                    "started_on": result.started_on,
                    "rung": result.rung,
                    "climbed": result.climbed,
                    "title": result.extracted["title"],
                }
                print(json.dumps(line), flush=True)
    finally:
        store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
