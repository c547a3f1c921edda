"""One TLS context per process for Portwright's own outbound HTTPS clients.

Building an `ssl.SSLContext` loads the whole CA bundle: ~25 ms of CPU on a 2-core
machine, paid by every `httpx.AsyncClient` or transport built without one. A client made
per call (a robots.txt fetch per site, a notification, a captcha solve, an SSRF-guarded
fetch) paid it each time; they share this one instead (an `SSLContext` may serve many
clients and threads at once). It trusts what httpx's own default trusts: certifi's
bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set.
"""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["client_context"]


@functools.cache
def client_context() -> ssl.SSLContext:
    """The process's TLS context for outbound clients (built on first use)."""
    return httpx.create_ssl_context()
