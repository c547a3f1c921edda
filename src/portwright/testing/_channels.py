"""An in-memory notification channel for unit tests of code that notifies people."""

from __future__ import annotations

from portwright.notifications import ChannelError, OutgoingMessage, PermanentChannelError

__all__ = ["MemoryChannel"]


class MemoryChannel:
    """Records every message it is handed (`sent`). `fail(n)` makes the next `n` sends
    raise `ChannelError` (retried by the sender), `fail(n, permanent=True)` a
    `PermanentChannelError` (not retried)."""

    def __init__(self, name: str = "email") -> None:
        self.name = name
        self.sent: list[OutgoingMessage] = []
        self.attempts = 0
        self._failures: list[bool] = []

    def fail(self, times: int, *, permanent: bool = False) -> None:
        self._failures.extend([permanent] * times)

    async def send(self, message: OutgoingMessage) -> None:
        self.attempts += 1
        if self._failures:
            permanent = self._failures.pop(0)
            if permanent:
                raise PermanentChannelError(f"{self.name}: refused {message.to!r} (scripted)")
            raise ChannelError(f"{self.name}: unavailable (scripted)")
        self.sent.append(message)
