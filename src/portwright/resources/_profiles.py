"""Persistent browser profiles: a small pool per user, each its own user-data directory.

A job borrows one of its user's profiles (3 by default, 3-5 recommended); a
returned profile rests for `cooldown_s` (30 minutes by default) before it is
lent again, so one account is not seen driving the same browser back to back;
the least recently used free profile is lent first (rotation). A profile the
portal banned is burned: never lent again until an operator resets it.

Profiles live under `root/<user>/<n>/`; the pool's bookkeeping is a JSON file
beside them, and an exclusive `flock` on the directory keeps two processes
on one machine from opening the same profile (Chromium could not anyway).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from portwright.sdk import BlockedError, TransientError

__all__ = ["ProfileLease", "ProfilePool", "ProfilesBurnedError", "ProfilesCoolingError"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class ProfilesCoolingError(TransientError):
    """Every profile of the user is in use or resting; `available_at` says when one frees up."""


class ProfilesBurnedError(BlockedError):
    """Every profile of the user is burned: a person must reset or add one."""


@dataclass(frozen=True, slots=True)
class ProfileLease:
    """One borrowed profile: open a persistent browser context on `path`."""

    user: str
    index: int
    path: Path
    _fd: int

    @property
    def key(self) -> str:
        return f"{self.user}/{self.index}"


class ProfilePool:
    """Thread-safe; `acquire(user)` then `release(lease, burned=…)`."""

    def __init__(
        self,
        root: Path,
        *,
        per_user: int = 3,
        cooldown_s: float = 1800.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= per_user <= 20:
            raise ValueError(f"per_user must be within 1..20, got {per_user}")
        self.root = root
        self.per_user = per_user
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state_file = root / "profiles.json"
        self._state: dict[str, dict[str, float | bool]] = self._load()

    def _dir(self, user: str, index: int) -> Path:
        slug = _SAFE.sub("_", user)[:40]
        digest = hashlib.sha256(user.encode()).hexdigest()[:8]
        return self.root / f"{slug}-{digest}" / str(index)

    def acquire(self, user: str) -> ProfileLease:
        """Lend the least recently used free, rested, unburned profile of `user`."""
        now = self._clock()
        with self._lock:
            soonest: float | None = None
            order = sorted(
                range(self.per_user),
                key=lambda i: float(self._entry(user, i).get("last_used", 0.0)),
            )
            for index in order:
                entry = self._entry(user, index)
                if entry.get("burned"):
                    continue
                rested_at = float(entry.get("last_used", 0.0)) + self.cooldown_s
                if entry.get("last_used") and rested_at > now:
                    soonest = rested_at if soonest is None else min(soonest, rested_at)
                    continue
                path = self._dir(user, index)
                path.mkdir(parents=True, exist_ok=True)
                fd = _try_lock(path)
                if fd is None:
                    continue  # in use by this or another process
                entry["leased_at"] = now
                self._save()
                return ProfileLease(user, index, path, fd)
            if all(self._entry(user, i).get("burned") for i in range(self.per_user)):
                raise ProfilesBurnedError(
                    f"every profile of user {user} is burned", user=user, pool_exhausted=True
                )
        raise ProfilesCoolingError(
            f"every profile of user {user} is in use or resting",
            user=user,
            available_at=soonest,
        )

    def release(self, lease: ProfileLease, *, burned: bool = False) -> None:
        """Return a profile; it rests for the cooldown, or with `burned` is retired."""
        with self._lock:
            entry = self._entry(lease.user, lease.index)
            entry["last_used"] = self._clock()
            entry.pop("leased_at", None)
            if burned:
                entry["burned"] = True
            self._save()
        with contextlib.suppress(OSError):
            fcntl.flock(lease._fd, fcntl.LOCK_UN)
            os.close(lease._fd)

    def reset(self, user: str, index: int | None = None) -> None:
        """An operator's reset: unburn and rest no longer (one profile, or all of the user's)."""
        with self._lock:
            for i in range(self.per_user) if index is None else (index,):
                self._state.pop(f"{user}/{i}", None)
            self._save()

    def status(self, user: str) -> list[dict[str, float | bool]]:
        with self._lock:
            return [dict(self._entry(user, i)) for i in range(self.per_user)]

    def _entry(self, user: str, index: int) -> dict[str, float | bool]:
        return self._state.setdefault(f"{user}/{index}", {})

    def _load(self) -> dict[str, dict[str, float | bool]]:
        try:
            data = json.loads(self._state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, sort_keys=True))
        tmp.replace(self._state_file)


def _try_lock(path: Path) -> int | None:
    fd = os.open(path / ".portwright-lease", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
