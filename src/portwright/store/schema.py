"""The app database's tables (SQLAlchemy Core), public for read-only queries elsewhere in
the core (health, metrics); writes go through the store's repositories."""

from portwright.store._schema import *  # noqa: F403
from portwright.store._schema import __all__  # noqa: F401  (the same public names)
