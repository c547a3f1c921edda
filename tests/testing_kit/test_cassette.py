"""Record a portal's answers once and replay them offline: `Cassette` and its pytest plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from portwright.sdk import StepContext
from portwright.testing import Cassette, CassetteMissError, FakeStepContext
from tests.support import Listener

PAGE = '<span class="status">shipped</span>'
SELECTORS = {"status": "span.status::text"}


async def read_status(sc: StepContext, url: str) -> str:
    return sc.page(await sc.http.get(url, params={"item": "a1"})).value("status")


async def test_a_cassette_replays_what_it_recorded_without_the_server(tmp_path: Path) -> None:
    """Recorded against a live server, the step reads the same page from the file once the
    server is gone; a request the cassette lacks fails naming it."""
    path = tmp_path / "c.json"
    with Listener("127.0.0.1", body=PAGE) as site:
        url = f"http://127.0.0.1:{site.port}/items"
        recording = Cassette(path, record=True)
        async with FakeStepContext(selectors=SELECTORS, transport=recording.transport) as sc:
            assert await read_status(sc, url) == "shipped"
        recording.save()
        assert len(site.hits) == 1
    replay = Cassette(path, record=False)
    async with FakeStepContext(selectors=SELECTORS, transport=replay.transport) as sc:
        assert await read_status(sc, url) == "shipped"
        with pytest.raises(CassetteMissError, match=r"no answer for GET .*/other"):
            await sc.http.get(url.replace("/items", "/other"))
    assert len(site.hits) == 1, "the replay never connected"


def test_the_pytest_plugin_records_on_the_first_run_and_replays_offline(tmp_path: Path) -> None:
    """A suite using the `cassette` fixture records its cassette on the first run and passes
    on the second with the portal down."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["portwright.testing.cassettes"]\n')
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\nasyncio_mode = "auto"\n')
    (tmp_path / "test_portal.py").write_text(
        textwrap.dedent(
            """
            import os

            from portwright.testing import FakeStepContext


            async def test_read(cassette):
                url = os.environ["PORTAL_URL"]
                selectors = {"status": "span.status::text"}
                async with FakeStepContext(selectors=selectors, transport=cassette.transport) as sc:
                    page = sc.page(await sc.http.get(url))
                    assert page.value("status") == "shipped"
            """
        )
    )

    def suite(url: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PORTAL_URL": url}
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    with Listener("127.0.0.1", body=PAGE) as site:
        url = f"http://127.0.0.1:{site.port}/items"
        first = suite(url)
        assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "cassettes" / "test_portal.test_read.json").is_file()
    second = suite(url)  # the portal is down now
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(site.hits) == 1
