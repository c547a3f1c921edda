"""The browser processes under this one, and their memory (Linux `/proc`; empty elsewhere).

Used to report a pool's memory and to prove that closing a pool leaves no
Chromium behind. A process tree's memory is summed as PSS (proportional set
size: shared pages split between the processes sharing them), since Chromium's
many processes share most of their pages and a sum of RSS would count those
pages once per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProcessInfo",
    "browser_processes",
    "descendants",
    "pss_bytes",
    "tree_pss_bytes",
    "tree_rss_bytes",
]

_PROC = Path("/proc")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    ppid: int
    name: str
    rss_bytes: int


def _read(pid: int) -> ProcessInfo | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
        statm = (_PROC / str(pid) / "statm").read_text().split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    state, ppid = fields[0], int(fields[1])
    if state == "Z":
        return None  # a zombie holds no memory; its parent just has not reaped it yet
    return ProcessInfo(pid, ppid, name, int(statm[1]) * _PAGE)


def descendants(root: int | None = None) -> list[ProcessInfo]:
    """Every live process below `root` (default: this process)."""
    root = os.getpid() if root is None else root
    if not _PROC.is_dir():
        return []
    table: dict[int, ProcessInfo] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            info = _read(int(entry.name))
            if info is not None:
                table[info.pid] = info
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found: list[ProcessInfo] = []
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        found.append(table[pid])
        stack.extend(children.get(pid, []))
    return found


def browser_processes(root: int | None = None) -> list[ProcessInfo]:
    """Chromium (and headless shell) processes below `root`."""
    return [p for p in descendants(root) if "chrom" in p.name.lower() or "headless" in p.name]


def tree_rss_bytes(root: int | None = None) -> int:
    """Resident memory of `root` and everything below it (shared pages counted per process)."""
    root = os.getpid() if root is None else root
    own = _read(root)
    return (own.rss_bytes if own else 0) + sum(p.rss_bytes for p in descendants(root))


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process (falls back to RSS where smaps is unreadable)."""
    try:
        for line in (_PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
        pass
    info = _read(pid)
    return info.rss_bytes if info else 0


def tree_pss_bytes(root: int | None = None) -> int:
    """Memory of `root` and everything below it, shared pages counted once overall."""
    root = os.getpid() if root is None else root
    return pss_bytes(root) + sum(pss_bytes(p.pid) for p in descendants(root))
