"""The process's TLS contexts, each built once: for Portwright's own outbound clients, and
with the system's trust store for job steps' HTTP clients and SMTP.

Building an `ssl.SSLContext` loads the whole CA bundle: ~25 ms of CPU on a 2-core
machine, paid by every `httpx.AsyncClient` or transport built without one. A client made
per call (a robots.txt fetch per site, a notification, a captcha solve, an SSRF-guarded
fetch) paid it each time; they share this one instead (an `SSLContext` may serve many
clients and threads at once). `client_context` trusts what httpx's own default
trusts: certifi's bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set.
"""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["client_context", "system_context"]


@functools.cache
def client_context() -> ssl.SSLContext:
    """The process's TLS context for outbound clients (built on first use)."""
    return httpx.create_ssl_context()


@functools.cache
def system_context() -> ssl.SSLContext:
    """The process's TLS context trusting the system's store (`ssl.create_default_context`):
    job steps' HTTP clients (`portwright.engines.http.new_client`) and SMTP's STARTTLS."""
    return ssl.create_default_context()
