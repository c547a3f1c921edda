"""Result webhooks: the events a job's end writes when its input names a `webhook`.

In the transaction that ends the job (its own workflow's, or a chunk's record step: both
plan through `outbox_rows`), the job's outbox rows get one more, `job.result`, targeted
at the webhook URL (the relay sends it to the tenant's endpoint there, signed with its
secret, retried and dead-lettered like every delivery). It carries the job's status and
output, with a signed `result_url` on each stored result (the gateway's link, which
serves the bytes wherever they are). When the job belongs to a batch that has a webhook,
`batch_rows` counts it in the batch's row in the same transaction, and the transaction
that ends the batch's last item adds one `batch.completed` event with the counts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa

from portwright.results import ResultLinks, with_links
from portwright.store import BatchRepository, JobRecord

__all__ = ["BATCH_TOPIC", "RESULT_TOPIC", "batch_rows", "result_row", "use_links"]

RESULT_TOPIC = "job.result"
BATCH_TOPIC = "batch.completed"
_links: ResultLinks | None = None


def use_links(links: ResultLinks | None) -> None:
    """The signer of this process's result links (set by the runtime as it starts)."""
    global _links  # noqa: PLW0603 - one runtime per process, like DBOS
    _links = links


def result_row(job: JobRecord, values: dict[str, Any]) -> dict[str, Any] | None:
    """The `job.result` outbox row of a job ending with row `values`, if it has a webhook."""
    data = job.input if isinstance(job.input, dict) else {}
    webhook = data.get("webhook")
    if not isinstance(webhook, str) or not webhook or values.get("finished_at") is None:
        return None
    output = values.get("output", job.output)
    if _links is not None and isinstance(output, dict):
        output = with_links(output, _links, blob_key_of=lambda _id: ("", False), presign=False)
    batch_id = data.get("batch_id")
    return {
        "event_id": f"{job.id}:result",
        "topic": RESULT_TOPIC,
        "tenant_id": job.tenant_id,
        "subject": job.id,
        "platform": job.portal,
        "target": webhook,
        "payload": {
            "job_id": job.id,
            "batch_id": batch_id if isinstance(batch_id, str) else None,
            "adapter": job.adapter,
            "url": data.get("url"),
            "status": values.get("status"),
            "state": values.get("state"),
            "reason": values.get("reason", job.reason),
            "error_class": values.get("error_class", job.error_class),
            "output": output,
        },
    }


def batch_rows(conn: sa.Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Count the batch items these outbox rows end; the `batch.completed` row of each batch
    whose last item this was (exactly one transaction ever sees that)."""
    ended: dict[str, Counter[str]] = {}
    for row in rows:
        if row.get("topic") != RESULT_TOPIC:
            continue
        payload = row["payload"]
        if payload.get("batch_id"):
            ended.setdefault(payload["batch_id"], Counter())[str(payload["status"])] += 1
    out: list[dict[str, Any]] = []
    for batch_id, counts in sorted(ended.items()):
        batch = BatchRepository.count_ended(conn, batch_id, dict(counts))
        if batch is None or not batch.webhook:
            continue
        out.append(
            {
                "event_id": f"{batch.id}:completed",
                "topic": BATCH_TOPIC,
                "tenant_id": batch.tenant_id,
                "subject": batch.id,
                "target": batch.webhook,
                "payload": {
                    "batch_id": batch.id,
                    "total": batch.total,
                    "succeeded": batch.succeeded,
                    "failed": batch.failed,
                    "cancelled": batch.cancelled,
                    "finished_at": batch.finished_at,
                },
            }
        )
    return out
