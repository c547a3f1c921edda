"""docs/tutorial-first-adapter.md runs, every block of it, in order, as a reader would.

Each fenced block is preceded by `<!-- tutorial: ROLE [ARG] -->`:

- `shell`: run in one bash session (its variables and directory carry to the next block);
- `file PATH`: written to PATH, relative to the session's directory;
- `python`: run as a script in the session;
- `install`: `pip install -e .` — done by writing the package's `portwright.adapters` entry
  points into a `.dist-info` on the session's PYTHONPATH (the same entry-point discovery
  `up` and `worker` use, without installing into the shared environment);
- `pyproject-has`: the block is in the scaffold's pyproject.toml as generated;
- `pyproject-set`: the block replaces the pyproject's `portwright.adapters` table;
- `serve`: a long-running command (`portwright up`), started in the background; the next
  `serve` block (or the end) stops the one before.

Then, beyond the blocks: no slot was booked twice in either sandbox world, and with
`up` stopped, the reader's recorded cassette tests pass offline.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from portwright.testing import wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "tutorial-first-adapter.md"
MARKED = re.compile(
    r"^<!-- tutorial: (?P<role>[a-z-]+)(?: (?P<arg>\S+))? -->\n"
    r"```(?P<lang>\w+)\n(?P<body>.*?)^```$",
    re.S | re.M,
)
OPENING_FENCE = re.compile(r"^```\w+$", re.M)
ENTRY_TABLE = re.compile(
    r'^\[project\.entry-points\."portwright\.adapters"\]\n(?:[^\[\n].*\n?)*', re.M
)


@dataclass(frozen=True)
class Block:
    role: str
    arg: str | None
    lang: str
    body: str


def blocks() -> list[Block]:
    return [
        Block(m["role"], m["arg"], m["lang"], m["body"]) for m in MARKED.finditer(DOC.read_text())
    ]


def test_every_block_of_the_tutorial_is_marked() -> None:
    """A block without a marker would not run: every opening fence has one."""
    assert len(blocks()) == len(OPENING_FENCE.findall(DOC.read_text())) >= 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Session:
    """A reader's terminal: one directory, exported variables, and `up` in the background."""

    root: Path
    env: dict[str, str]
    cwd: Path
    site: Path
    served: subprocess.Popen[bytes] | None = None
    worlds: list[dict[str, str]] = field(default_factory=list)
    ran: int = 0

    @property
    def _state(self) -> Path:
        return self.root / "session.env"

    def shell(self, body: str, what: str) -> subprocess.CompletedProcess[str]:
        script = (
            "set -euo pipefail\n"
            f"[ -f {self._state} ] && source {self._state}\n"
            f"cd {self.cwd}\n{body}\n"
            f"export -p > {self._state}\n"
            f"pwd > {self.root / 'session.cwd'}\n"
        )
        done = subprocess.run(
            ["bash", "-c", script], env=self.env, capture_output=True, text=True,
            timeout=600, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, f"{what} failed:\n{body}\n{done.stdout}\n{done.stderr}"
        self.cwd = Path((self.root / "session.cwd").read_text().strip())
        return done

    def install(self) -> None:
        """`pip install -e .`: the project's entry points, visible to importlib.metadata."""
        project = tomllib.loads((self.cwd / "pyproject.toml").read_text())["project"]
        dist = self.site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
        dist.mkdir(parents=True, exist_ok=True)
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
        )
        lines = []
        for group, entries in project["entry-points"].items():
            lines.append(f"[{group}]")
            lines += [f"{name} = {target}" for name, target in entries.items()]
        (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")

    def serve(self, body: str) -> None:
        self.stop()
        log = self.root / f"serve-{len(self.worlds)}.log"
        (self.cwd / "up.log").unlink(missing_ok=True)  # `tee` truncates it, maybe too late
        script = f"source {self._state}\ncd {self.cwd}\nexec {body}"
        with log.open("wb") as out:
            self.served = subprocess.Popen(
                ["bash", "-c", script], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        printed = self.cwd / "up.log"

        def started() -> dict[str, str] | None:
            assert self.served is not None
            if self.served.poll() is not None:
                raise AssertionError(f"`{body}` ended:\n{log.read_text()[-3000:]}")
            lines = printed.read_text().splitlines() if printed.exists() else []
            if not any(line.startswith("gateway ") for line in lines):
                return None
            words = [line.split() for line in lines]
            return {w[1]: w[2] for w in words if len(w) == 3 and w[0] == "sandbox"}

        self.worlds.append(wait_until_sync(started, timeout=180, every=0.2))

    def stop(self, *, check: bool = True) -> None:
        """Stop `up` (as Ctrl-C would), first checking its world booked no slot twice."""
        if self.served is None:
            return
        log = self.root / f"serve-{len(self.worlds) - 1}.log"
        if check and self.served.poll() is not None:
            self.served = None
            raise AssertionError(f"`portwright up` had ended:\n{log.read_text()[-3000:]}")
        if check:
            admin = self.worlds[-1]["admin"]
            url = f"{admin}/services/library/ledger/duplicates?kind=booking"
            twice = httpx.get(url, timeout=10)
            assert twice.json()["duplicates"] == {}, twice.text
        with contextlib.suppress(ProcessLookupError):  # it had ended (and been reaped)
            os.killpg(self.served.pid, signal.SIGINT)
        try:
            self.served.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.served.pid, signal.SIGKILL)
            self.served.wait(timeout=30)
            raise AssertionError("`portwright up` did not stop on SIGINT within 60 s") from None
        finally:
            self.served = None


def _run(session: Session, block: Block, n: int) -> None:
    what = f"block {n} ({block.role} {block.arg or ''})"
    if block.role == "shell":
        session.shell(block.body, what)
    elif block.role == "file":
        assert block.arg, what
        path = session.cwd / block.arg
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.body)
    elif block.role == "python":
        script = session.root / f"block-{n}.py"
        script.write_text(block.body)
        session.shell(f"python {script}", what)
    elif block.role == "install":
        assert block.body.strip() == "pip install -e .", what
        session.install()
    elif block.role == "pyproject-has":
        assert block.body in (session.cwd / "pyproject.toml").read_text(), what
    elif block.role == "pyproject-set":
        pyproject = session.cwd / "pyproject.toml"
        text, count = ENTRY_TABLE.subn(block.body + "\n", pyproject.read_text())
        assert count == 1, what
        pyproject.write_text(text)
        tomllib.loads(text)
    elif block.role == "serve":
        session.serve(block.body.strip())
    else:
        raise AssertionError(f"{what}: unknown role {block.role!r}")
    session.ran += 1


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 16 min seen on a machine at load average 90
def test_the_tutorial_runs_end_to_end(db_url: str, tmp_path: Path) -> None:
    """Scaffold, adapter, entry point, credential, jobs through `portwright up`, the kit's
    tests, a selector patch, the breaker's defaults, a canary version: all as written."""
    work, site = tmp_path / "work", tmp_path / "site"
    work.mkdir()
    site.mkdir()
    project_src = work / "library-rooms" / "src"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": f"{site}{os.pathsep}{project_src}",
        "PORTWRIGHT_DATA_DIR": str(tmp_path / "data"),
        "PORTWRIGHT_DATABASE_URL": db_url,
        "PW_PORT": str(_free_port()),
    }
    session = Session(root=tmp_path, env=env, cwd=work, site=site)
    todo = blocks()
    try:
        for n, block in enumerate(todo, 1):
            _run(session, block, n)
    except BaseException:
        session.stop(check=False)
        raise
    session.stop()
    assert session.ran == len(todo) == len(OPENING_FENCE.findall(DOC.read_text()))

    # the cassettes recorded against the first world replay with no portal running
    first_library = session.worlds[0]["library"]
    offline = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_recorded.py"],
        cwd=work / "library-rooms", env={**env, "LIBRARY": first_library},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "2 passed" in offline.stdout
    recorded = sorted(p.name for p in (work / "library-rooms/tests/cassettes").iterdir())
    assert recorded == [
        "test_recorded.test_a_booking_on_the_real_portal.json",
        "test_recorded.test_a_slot_someone_else_holds.json",
    ]
