"""`portwright demo`: sample work against the sandbox world, with live progress."""
