"""The public API's routers, one module per resource."""

from portwright.gateway.routes._account import account_router
from portwright.gateway.routes._escalations import escalations_router
from portwright.gateway.routes._evidence import evidence_router
from portwright.gateway.routes._items import items_router
from portwright.gateway.routes._jobs import jobs_router
from portwright.gateway.routes._portals import portals_router
from portwright.gateway.routes._results import results_router
from portwright.gateway.routes._rollouts import rollouts_router
from portwright.gateway.routes._scrape import scrape_router, submit_scrape

__all__ = [
    "account_router",
    "escalations_router",
    "evidence_router",
    "items_router",
    "jobs_router",
    "portals_router",
    "results_router",
    "rollouts_router",
    "scrape_router",
    "submit_scrape",
]
