"""`portwright demo`: sample work against the sandbox world, with live progress.

The command comes to the `portwright` CLI through the `portwright.commands` entry point
`demo`; the scenarios after the bookings come from the `portwright.demo_scenarios` entry
points (the apps' and the sandbox's own `scrape`).
"""

from portwright.sandbox.demo._command import register

__all__ = ["register"]
