"""Apps: domain packages built on the SDK and the core's plugin seams.

Each app plugs in through entry points declared in pyproject.toml (adapters, webhook
handlers, API routers, demo scenarios); the core never imports an app.

- `portwright.apps.consulate` — the consulate appointment booking.
- `portwright.apps.directories` — directory submissions and listings.
- `portwright.apps.jobboard` — job-board applications.
- `portwright.apps.dispatch` — shop orders to drivers (scenario 5).
"""
