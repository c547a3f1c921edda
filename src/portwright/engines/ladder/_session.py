"""Sessions of the ladder: the cookies a session id carries from one fetch to the next.

Cookies are plain rows (name, value, domain, path) so that a pass earned on
one engine (a solved captcha over HTTP) is honoured on another (a browser).
A fetch without a session id gets a fresh, private session.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["Session", "SessionStore"]

CookieRows = list[dict[str, str]]


class Session:
    """The cookie jar of one session (shared by the fetches that name it)."""

    def __init__(self, key: str | None) -> None:
        self.key = key
        self._cookies: dict[tuple[str, str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    def rows(self) -> CookieRows:
        with self._lock:
            return [dict(row) for row in self._cookies.values()]

    def update(self, rows: Iterable[dict[str, str]]) -> None:
        with self._lock:
            for row in rows:
                domain = row.get("domain", "").removesuffix(".local").lstrip(".").lower()
                key = (row["name"], domain, row.get("path") or "/")
                self._cookies[key] = {
                    "name": row["name"],
                    "value": row["value"],
                    "domain": domain,
                    "path": row.get("path") or "/",
                }

    def cookie_header(self, url: str) -> str | None:
        """The `Cookie` header for `url`: the session's cookies whose domain and path match."""
        if not self._cookies:  # most fetches have no session: nothing to match the URL with
            return None
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        path = parts.path or "/"
        pairs = [
            f"{row['name']}={row['value']}"
            for row in self.rows()
            if (host == row["domain"] or host.endswith("." + row["domain"]))
            and path.startswith(row["path"])
        ]
        return "; ".join(pairs) or None


class SessionStore:
    """Named sessions, least recently used evicted past `max_sessions`, expired after `ttl_s`."""

    def __init__(self, *, max_sessions: int = 10_000, ttl_s: float = 3600.0) -> None:
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, tuple[float, Session]] = OrderedDict()

    def get(self, key: str | None) -> Session:
        if key is None:
            return Session(None)
        now = time.monotonic()
        with self._lock:
            held = self._sessions.pop(key, None)
            session = held[1] if held is not None and now - held[0] < self.ttl_s else Session(key)
            self._sessions[key] = (now, session)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
            return session

    def drop(self, key: str) -> None:
        with self._lock:
            self._sessions.pop(key, None)
