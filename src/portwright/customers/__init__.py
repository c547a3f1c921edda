"""The customer side: accounts (owners and members of a tenant, email verification,
password reset, access tokens for the API) and the customer portal at `/app`.

The portal is server-rendered like the operator console and follows its rules (session
cookie holding a random token, CSRF token on every POST, failed logins rate limited,
scrypt passwords). Customers see their own tenant only: jobs with live status, the prompt
when a job asks them for something, API keys, credentials (write-only), members and their
notification preferences.

    from portwright.customers import mount_customers
    side = mount_customers(app, service, settings, vault=vault)   # create_app does this
    await side.start()     # the notification sender (create_app's lifespan does this)
"""

from portwright.customers._accounts import ROLES, AccountError, Accounts, SignedIn
from portwright.customers._api import TOKEN_PATH
from portwright.customers._app import CustomerSide, access_tokens, mount_customers
from portwright.customers._auth import Customer

__all__ = [
    "ROLES",
    "TOKEN_PATH",
    "AccountError",
    "Accounts",
    "Customer",
    "CustomerSide",
    "SignedIn",
    "access_tokens",
    "mount_customers",
]
