"""`portwright jobs list | show | events`: read jobs straight from the store."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from portwright.cli._common import add_settings_flags, settings_from

__all__ = ["register"]


def register(sub: Any) -> None:
    jobs = sub.add_parser("jobs", help="inspect jobs")
    jsub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    p = jsub.add_parser("list", help="newest jobs first")
    add_settings_flags(p)
    p.add_argument(
        "--status", choices=["queued", "running", "waiting", "succeeded", "failed", "cancelled"]
    )
    p.add_argument("--adapter")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_list)

    p = jsub.add_parser("show", help="one job")
    add_settings_flags(p)
    p.add_argument("job_id")
    p.set_defaults(func=_show)

    p = jsub.add_parser("report", help="a fan-out job's report (every item accounted for)")
    add_settings_flags(p)
    p.add_argument("job_id")
    p.add_argument("--format", choices=["csv", "json", "html"], default="json")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.set_defaults(func=_report)

    p = jsub.add_parser("events", help="a job's audit trail, and whether it replays")
    add_settings_flags(p)
    p.add_argument("job_id")
    p.set_defaults(func=_events)


def _store(args: argparse.Namespace) -> Any:
    from portwright.store import Store

    return Store.open(settings_from(args).app_database_url)


def _ts(value: float | None) -> str:
    return "-" if value is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        rows = store.jobs.search(status=args.status, adapter=args.adapter, limit=args.limit)
    finally:
        store.close()
    if args.json:
        for job in rows:
            print(
                json.dumps(
                    {
                        "id": job.id,
                        "adapter": job.adapter,
                        "state": job.state,
                        "status": job.status,
                        "reason": job.reason,
                    }
                )
            )
        return 0
    print(f"{'ID':32} {'ADAPTER':12} {'STATE':26} {'STATUS':10} CREATED")
    for job in rows:
        print(f"{job.id:32} {job.adapter:12} {job.state:26} {job.status:10} {_ts(job.created_at)}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from portwright.orchestrator import public_input
    from portwright.store import JobNotFoundError

    store = _store(args)
    try:
        job = store.jobs.get(args.job_id)
    except JobNotFoundError:
        print(f"no job {args.job_id}")
        return 1
    finally:
        store.close()
    fields = {
        "id": job.id,
        "tenant": job.tenant_id,
        "adapter": f"{job.adapter} v{job.adapter_version}",
        "portal": job.portal,
        "state": job.state,
        "status": job.status,
        "paused": job.paused,
        "waiting_for": job.waiting_for,
        "reason": job.reason,
        "error_class": job.error_class,
        "created": _ts(job.created_at),
        "finished": _ts(job.finished_at),
        "input": json.dumps(public_input(None, job.input)),  # sealed secret fields masked
        "output": json.dumps(job.output),
    }
    for key, value in fields.items():
        print(f"{key:12} {value}")
    return 0


def _events(args: argparse.Namespace) -> int:
    from portwright.orchestrator import replay_events

    store = _store(args)
    try:
        job = store.jobs.get(args.job_id)
        events = store.jobs.events(args.job_id)
    finally:
        store.close()
    for e in events:
        move = (
            f"{e.from_state or '·'} → {e.to_state}"
            if e.kind == "transition"
            else f"[{e.meta.get('action', e.kind)}]"
        )
        print(f"{e.seq:4} {_ts(e.created_at)} {e.actor:24} {move:48} {e.reason}")
    state, _paused, seq, _n = replay_events(events)
    verdict = (
        "replays to the stored state" if (state, seq) == (job.state, job.seq) else "DOES NOT replay"
    )
    print(f"# {len(events)} events; {verdict} ({state})")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from portwright.reports import build_report, to_csv, to_html, to_json
    from portwright.store import JobNotFoundError

    store = _store(args)
    try:
        report = build_report(store, args.job_id)
    except JobNotFoundError:
        print(f"no job {args.job_id}")
        return 1
    finally:
        store.close()
    text = {"csv": to_csv, "json": to_json, "html": to_html}[args.format](report)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({len(report.items)} items)")
    else:
        print(text)
    return 0
