"""The gateway's web kernel, public for the routers other packages mount on the same app
(delivery's streams and endpoints, apps' routes): who is calling (`Principal`,
`current_principal`), how an error is answered (`ApiError`, `ERROR_RESPONSES`), the
OpenAPI security requirement (`SECURED`), and API-key checks for WebSocket handshakes
(`parse_key`, `verify_secret`).

Import it as `portwright.gateway.kernel`: it loads only these small modules.
"""

from portwright.gateway._context import SECURED
from portwright.gateway._errors import ERROR_RESPONSES, ApiError
from portwright.gateway._principal import Principal, current_principal
from portwright.gateway.auth import parse_key, verify_secret

__all__ = [
    "ERROR_RESPONSES",
    "SECURED",
    "ApiError",
    "Principal",
    "current_principal",
    "parse_key",
    "verify_secret",
]
