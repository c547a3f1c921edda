"""The operator console: the human in the loop, served by the gateway at `/console`.

Server-rendered pages (Jinja2) with small vanilla scripts; live through
server-sent events. Operators have a role — viewer (read), operator (act on
escalations, jobs; platform-wide operators also patch selectors and pause
portals), admin — and are platform-wide or limited to one tenant. Sessions
are cookies holding a random token (its hash is stored); every POST carries the
session's CSRF token; failed logins are rate limited; passwords use scrypt.
Every action is written to the audit log with its actor and before/after. Apps add
pages through `portwright.console_panels` (`ConsolePanel`), linked in the navigation.

    from portwright.console import mount_console
    mount_console(app, service, settings)      # what the gateway's create_app does
"""

from portwright.console._app import console_app, mount_console
from portwright.console._auth import ROLES, Operator
from portwright.console._panels import (
    ConsolePanel,
    PanelAction,
    PanelActionError,
    PanelTable,
    RowAction,
    installed_panels,
)
from portwright.console._views import mask  # secret-looking fields masked, for the API too
from portwright.webauth import hash_password, verify_password

__all__ = [
    "ROLES",
    "ConsolePanel",
    "Operator",
    "PanelAction",
    "PanelActionError",
    "PanelTable",
    "RowAction",
    "console_app",
    "hash_password",
    "installed_panels",
    "mask",
    "mount_console",
    "verify_password",
]
