"""Observability: structured logs now; metrics, health and status pages as they land."""

from portwright.observability._logging import configure_logging, redact

__all__ = ["configure_logging", "redact"]
