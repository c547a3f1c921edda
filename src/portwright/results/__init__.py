"""Scrape results delivered: signed links to stored results, the result and batch
webhook events, retention and the move of results held in the database.

- `ResultLinks`: signed, expiring `result_url`s (the gateway's own, or S3 presigned).
- `with_links(output, …)`: a job's output with a `result_url` on each stored result.
- `Housekeeper`: retention purge per data kind in bounded batches, and the move of
  results kept in the database while the blob store was down. The orchestrator runs it
  as a scheduled durable workflow.
"""

from portwright.results._housekeeping import Housekeeper, PurgeReport
from portwright.results._links import LINK_PATH, LinkError, ResultLink, ResultLinks
from portwright.results._output import link_key, links_from, with_links

__all__ = [
    "LINK_PATH",
    "Housekeeper",
    "LinkError",
    "PurgeReport",
    "ResultLink",
    "ResultLinks",
    "link_key",
    "links_from",
    "with_links",
]
