"""Every Python block of docs/adapters.md and README's adapter example runs: executed in
order as one module, then each `test_*` coroutine it defines is awaited."""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
import types
from pathlib import Path

from portwright.adapters import AdapterRegistry
from portwright.sdk import Adapter

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _blocks(path: Path, lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(path.read_text()) if kind == lang]


def _module(name: str, code: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module  # pydantic resolves annotations through the module
    exec(compile(code, f"<{name}>", "exec"), module.__dict__)
    return module


async def test_the_guide_runs_and_its_tests_pass() -> None:
    code = "\n\n".join(_blocks(ROOT / "docs/adapters.md", "python"))
    guide = _module("shop_adapters.price", code)
    try:
        tests = [
            fn
            for name, fn in vars(guide).items()
            if name.startswith("test_") and inspect.iscoroutinefunction(fn)
        ]
        assert len(tests) == code.count("\nasync def test_") >= 6  # none shadowed
        for fn in tests:
            await fn()
        # the entry point the guide declares names the guide's adapter class
        (toml,) = _blocks(ROOT / "docs/adapters.md", "toml")
        group = tomllib.loads(toml)["project"]["entry-points"]["portwright.adapters"]
        target = group["shop-price"]
        module_name, attr = target.split(":")
        assert module_name == guide.__name__
        adapter = getattr(sys.modules[module_name], attr)
        registry = AdapterRegistry()
        registry.register(adapter)
        assert registry.get("shop-price") is adapter
    finally:
        sys.modules.pop("shop_adapters.price", None)


def test_the_readme_adapter_example_registers() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Writing an adapter", 1)[1].split("\n## ", 1)[0]
    (code,) = [body for kind, body in BLOCK.findall(section) if kind == "python"]
    try:
        readme = _module("readme_adapter", code)
        adapter = readme.PriceWatch
        assert issubclass(adapter, Adapter)
        registry = AdapterRegistry()
        registry.register(adapter)
        assert registry.names() == ["price-watch"]
        # its entry point: the key is the class's name@version, the value names the class
        (toml,) = [body for kind, body in BLOCK.findall(section) if kind == "toml"]
        [(key, target)] = tomllib.loads(toml)["project"]["entry-points"][
            "portwright.adapters"
        ].items()
        assert key == f"{adapter.name}@{adapter.version}"
        assert target.split(":")[1] == adapter.__name__
    finally:
        sys.modules.pop("readme_adapter", None)


async def test_the_readme_adapter_step_and_run() -> None:
    from portwright.testing import FakeStepContext, check_determinism

    text = (ROOT / "README.md").read_text()
    section = text.split("## Writing an adapter", 1)[1].split("\n## ", 1)[0]
    (code,) = [body for kind, body in BLOCK.findall(section) if kind == "python"]
    try:
        readme = _module("readme_adapter", code)
        url = "https://prices.example/item"
        routes = {url: '<span class="price">9.99</span>'}
        async with FakeStepContext(selectors=readme.PriceWatch.selectors, routes=routes) as sc:
            assert await readme.fetch_price(sc, url) == "9.99"
        trace = await check_determinism(readme.PriceWatch, {"url": url}, steps={"fetch": "9.99"})
        assert ("step", "fetch") in [c[:2] for c in trace]
    finally:
        sys.modules.pop("readme_adapter", None)
