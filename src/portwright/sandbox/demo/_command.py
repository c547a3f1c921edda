"""`portwright demo`: the embedded stack against the sandbox, with chaos, live progress.

Bookings for two tenants run against the sandbox consulate while it throws
429s, 503s, latency and captchas; halfway through, the portal switches its DOM
version and a scripted operator patches the selectors, as a person would in the
console. Then the further scenarios run on the same stack (`--scenarios`):
a directory-submission order fanning out to directories (scenario 3), and
the others as installed (`portwright.demo_scenarios` entry points), in `ORDER`.
`--once` exits with a summary: non-zero if a job was lost, a request booked twice, or
a scenario's check failed.

Without a Chromium on the machine (`find_chromium`: `PORTWRIGHT_CHROMIUM`, then the
known install paths; `PORTWRIGHT_CHROMIUM=none` opts out), what needs a browser is
skipped, said in one line with how to get it, and the rest runs and is judged.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import signal
import sys
import time
from collections import Counter
from typing import Any, TextIO

from portwright.cli import add_settings_flags, settings_from
from portwright.cli.scenarios import BrowserNeed

__all__ = ["register"]

V2_PATCH = {
    "csrf": "meta[name=csrf-token]::attr(content)",
    "slot_ids": "ul.slot-list li.slot-item::attr(data-id)",
}
SETTLED = ("succeeded", "failed", "cancelled")
# The installed scenarios (entry points naming modules with `run(stack, world, progress)`)
# run in this order, any others after them by name.
ORDER = ("scrape", "directories", "jobboard", "dispatch")


def scenario_names() -> list[str]:
    from portwright.plugins import DEMO_SCENARIOS, plugin_names

    names = plugin_names(DEMO_SCENARIOS)
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def _scenario(name: str) -> Any:
    from portwright.plugins import DEMO_SCENARIOS, load_plugin

    return load_plugin(DEMO_SCENARIOS, name)


DEMO_PORTAL = {
    "release_every_s": 6.0,
    "initial_slots": 6,
    "take_mean_s": 60.0,
    "hold_ttl_s": 60.0,
    "payment_delay_s": 0.3,
}


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run sample bookings against the sandbox, with live progress")
    add_settings_flags(p)
    p.add_argument("--once", action="store_true", help="exit with a summary when all jobs settle")
    p.add_argument("--bookings", type=int, default=20, help="how many bookings (default 20)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-chaos", action="store_true", help="a well-behaved portal")
    p.add_argument("--no-dom-switch", action="store_true", help="keep the portal's markup")
    p.add_argument("--timeout", type=float, default=240.0, help="give up after this many seconds")
    p.add_argument(
        "--scenarios",
        default="all",
        help="comma-separated: bookings," + ",".join(scenario_names()) + " (default all)",
    )
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from portwright.observability import configure_logging, configure_tracing

    chosen = _chosen(args.scenarios)
    if isinstance(chosen, str):
        print(f"portwright demo: --scenarios: {chosen}", file=sys.stderr)
        return 2
    args.chosen = chosen
    settings = settings_from(args, log_level="ERROR", log_json=False)
    demo_dir = settings.data_dir / "demo"
    if settings.database_url is None and demo_dir.exists():
        shutil.rmtree(demo_dir)  # each demo starts from a clean embedded database
    settings = settings.model_copy(update={"data_dir": demo_dir})
    configure_tracing(settings)  # PORTWRIGHT_OTEL_EXPORTER; off by default
    configure_logging(settings)
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Any) -> int:
    from portwright.cli import start_stack
    from portwright.sandbox import ChaosKnobs, SandboxWorld, default_services

    chaos = ChaosKnobs() if args.no_chaos else ChaosKnobs(
        rate_429=0.02, retry_after_s=1.5, rate_5xx=0.06, latency_ms=(5, 60), captcha_rate=0.3,
    )  # fmt: skip
    specs = []
    for spec in default_services():
        if spec.name == "consulate":
            options = {**spec.options, **DEMO_PORTAL}
            specs.append(type(spec)(spec.name, spec.build, knobs=chaos, options=options))
        else:
            specs.append(spec)
    out = sys.stdout
    started = time.monotonic()
    with SandboxWorld(specs, seed=args.seed) as world:
        # the world's proxies and solvers are one configuration of resources (sandbox.config)
        stack = await asyncio.to_thread(start_stack, settings, world=world, browser_notice=False)
        try:
            service = stack.service
            print(f"sandbox consulate {world.url('consulate')} · admin {world.admin_url}", file=out)
            print(f"gateway {stack.gateway_url} · data in {settings.data_dir} · "
                  f"database {stack.runtime.store.dialect}", file=out)  # fmt: skip
            browser = _skip_browser_work(args.chosen, _no_browser(settings), out)
            ok = True
            if "bookings" in args.chosen:
                jobs = await _submit(service, world, stack.vault, args.bookings)
                chaos_on = "off" if args.no_chaos else "on"
                print(f"submitted {len(jobs)} bookings for 2 tenants (portal passwords sealed in "
                      f"the vault); chaos {chaos_on}", file=out)  # fmt: skip
                ok = await _watch(service, world, jobs, args, started)
            ok = await _scenarios(stack, world, args.chosen, started, browser=browser) and ok
            if not args.once:
                await asyncio.to_thread(_stay_up, stack)
                await _until_interrupted()
        finally:
            await asyncio.to_thread(stack.stop)
    return 0 if ok or not args.once else 1


def _chosen(spec: str) -> list[str] | str:
    """The scenarios `--scenarios` names, in order, or what is wrong with it."""
    known = ["bookings", *scenario_names()]
    names = known if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        return f"unknown scenario {', '.join(unknown) or '(none)'}; known: {', '.join(known)}"
    return names


def _no_browser(settings: Any) -> str | None:
    """None when this machine has a Chromium; else why not, and how to get one."""
    from portwright.engines import (
        INSTALL_HINT,
        ChromiumDisabledError,
        ChromiumNotFoundError,
        find_chromium,
    )

    try:
        find_chromium(settings.chromium_path)
    except ChromiumDisabledError as exc:
        return str(exc)
    except ChromiumNotFoundError:
        return f"no Chromium found on this machine; to run them, {INSTALL_HINT}"
    return None


def _skip_browser_work(chosen: list[str], no_browser: str | None, out: TextIO) -> bool:
    """Whether there is a browser; if not, one line: what the chosen scenarios skip, why,
    and how to fix it."""
    if no_browser is None:
        return True
    skipped = []
    for name in chosen:
        need = _browser_need(name)
        if need is not None:
            skipped.append(need.what)
    if skipped:
        line = f"skipped (they need a browser): {' and '.join(skipped)} — {no_browser}"
        print(line, file=out, flush=True)
    return False


def _browser_need(name: str) -> BrowserNeed | None:
    """The scenario's `BrowserNeed`, or None (bookings and HTTP-only scenarios)."""
    if name not in scenario_names():
        return None
    need = getattr(_scenario(name), "BROWSER", None)
    return need if isinstance(need, BrowserNeed) else None


async def _scenarios(
    stack: Any, world: Any, chosen: list[str], started: float, *, browser: bool = True
) -> bool:
    """Run the further scenarios one after another; print each one's summary. Without a
    browser, a scenario that needs one throughout is not run; one that needs one in part
    runs with `browser=False`."""
    from portwright.cli.scenarios import ScenarioResult

    out = sys.stdout

    def progress(line: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {line}", file=out, flush=True)

    results: list[ScenarioResult] = []
    for name in chosen:
        if name == "bookings":
            continue
        module = _scenario(name)
        need = _browser_need(name)
        if need is not None and not browser and need.whole:
            continue  # said in the skip line
        extra = {"browser": False} if need is not None and not browser else {}
        progress(f"scenario {name}: starting")
        try:
            result = await module.run(stack, world, progress, **extra)
        except Exception as exc:  # noqa: BLE001 - a crashed scenario is reported, not hidden
            result = ScenarioResult(name, False, [f"crashed: {exc or repr(exc)}"])
        results.append(result)
    for result in results:
        print(f"\nscenario {result.name}", file=out)
        for line in result.lines:
            print(f"  {line}", file=out)
        print("  RESULT: " + ("ok" if result.ok else "PROBLEM"), file=out, flush=True)
    return all(r.ok for r in results)


def _stay_up(stack: Any) -> None:
    """Print how to explore the running stack: the console, the API, its docs."""
    from portwright.console import hash_password
    from portwright.gateway import issue_key

    store = stack.runtime.store
    key = issue_key(store, tenant="acme", name="demo").key
    password = secrets.token_urlsafe(9)
    email = f"operator-{password[:4].lower()}@demo.test"
    store.console.create_operator(
        email=email, password_hash=hash_password(password), role="admin", tenant_id=None
    )
    print("\nthe stack stays up; try:")
    print(f"  the console  {stack.gateway_url}/console  (sign in as {email} / {password})")
    print(f"  the API      curl -H 'Authorization: Bearer {key}' {stack.gateway_url}/v1/jobs")
    print(f"  API docs     {stack.gateway_url}/docs")
    print("Ctrl-C to stop.", flush=True)


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _submit(service: Any, world: Any, vault: Any, count: int) -> list[Any]:
    store = service.store
    tenants = [store.tenants.ensure("acme"), store.tenants.ensure("globex")]
    pairs = [(c, v) for c in ("LON", "MAN", "EDI") for v in ("tourist", "work", "study")]
    jobs = []
    for i in range(count):
        center, visa = pairs[i % len(pairs)]
        tenant = tenants[i % 2]
        email = f"user{i + 1}@example.test"
        await asyncio.to_thread(vault.put, tenant.id, email, f"pw-{i + 1}")  # the user's password
        jobs.append(
            await service.submit(
                tenant_id=tenant.id,
                adapter="consulate",
                actor="demo",
                input={
                    "portal_url": world.url("consulate"),
                    "inbox_url": world.url("inbox"),
                    "account_email": email,
                    "center": center,
                    "visa_type": visa,
                    "otp_source": "inbox" if i % 3 else "user",
                    "scan_interval_s": 1.0,
                    "deadline_s": 180.0,
                    "payment_wait_s": 3.0,
                },
            )
        )
    return jobs


async def _relay_codes(service: Any, world: Any, jobs: list[Any], relayed: dict[str, str]) -> None:
    """Play the users who relay their one-time code through the API."""
    import httpx

    async with httpx.AsyncClient() as client:
        for job in jobs:
            current = await service.get(job.id)
            if current.waiting_for != "otp":
                continue
            email = current.input["account_email"]
            inbox = await client.get(f"{world.url('inbox')}/messages", params={"to": email})
            messages = inbox.json()
            codes = [m["code"] for m in messages if m.get("code")]
            if codes and relayed.get(job.id) != codes[-1]:
                await service.provide_input(job.id, "otp", codes[-1], actor=f"user:{email}")
                relayed[job.id] = codes[-1]


async def _operator(service: Any, patched: list[bool]) -> int:
    """Play the operator: answer each page-changed escalation with the v2 selector patch."""
    answered = 0
    for esc in await service.escalations(status="open"):
        if esc.kind == "page_changed":
            await service.decide(
                esc.id,
                "retry",
                actor="operator:demo",
                selectors=None if patched[0] else V2_PATCH,
                reason="portal switched to DOM v2",
            )
            patched[0] = True
            answered += 1
    return answered


async def _watch(
    service: Any, world: Any, jobs: list[Any], args: argparse.Namespace, started: float
) -> bool:
    out = sys.stdout
    relayed: dict[str, str] = {}
    patched = [False]
    switched = False
    switch_at = 0.35 if not args.no_dom_switch else None
    last_line = ""
    deadline = time.monotonic() + args.timeout
    escalations_answered = 0
    while time.monotonic() < deadline:
        current = [await service.get(j.id) for j in jobs]
        done = sum(1 for j in current if j.status in SETTLED)
        if switch_at is not None and not switched and done >= len(jobs) * switch_at:
            world.chaos("consulate").update({"dom_version": 2})
            switched = True
            print(
                f"[{time.monotonic() - started:5.1f}s] the portal switched to DOM v2: "
                "bookings will stop and ask an operator",
                file=out,
            )
        await _relay_codes(service, world, jobs, relayed)
        answered = await _operator(service, patched)
        if answered:
            escalations_answered += answered
            print(
                f"[{time.monotonic() - started:5.1f}s] operator patched the selectors and retried "
                f"{answered} parked booking(s)",
                file=out,
            )
        counts = Counter(j.state for j in current)
        line = " · ".join(f"{state} {n}" for state, n in sorted(counts.items()))
        if line != last_line:
            print(f"[{time.monotonic() - started:5.1f}s] {line}", file=out, flush=True)
            last_line = line
        if done == len(jobs):
            break
        await asyncio.sleep(0.5)
    return _summary(service, world, jobs, started, escalations_answered)


def _summary(service: Any, world: Any, jobs: list[Any], started: float, escalations: int) -> bool:
    out = sys.stdout
    store = service.store
    final = [store.jobs.get(j.id) for j in jobs]
    names = {t.id: t.name for t in store.tenants.all()}
    print("\nsummary", file=out)
    for tenant_id in sorted({j.tenant_id for j in final}):
        mine = [j for j in final if j.tenant_id == tenant_id]
        counts = Counter(j.state for j in mine)
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        print(f"  {names.get(tenant_id, tenant_id):8} {parts}", file=out)
    for job in final:
        if job.status == "failed":
            print(f"  {job.id} {job.state}: {job.reason}", file=out)
    ledger = world.ledger("consulate")
    doubles = ledger.duplicates("booking")
    booked = len(ledger.entries("booking"))
    replays = [service.replay(j.id).matches for j in final]
    lost = [j.id for j in final if j.status not in SETTLED and j.status != "waiting"]
    events = sum(len(store.jobs.events(j.id)) for j in final)
    print(f"  portal ledger: {booked} bookings, {len(doubles)} booked twice", file=out)
    replayed = f"{sum(replays)}/{len(replays)}"
    print(f"  audit: {events} events; {replayed} jobs replay to their stored state", file=out)
    print(
        f"  operator decisions: {escalations}; lost jobs: {len(lost)}; "
        f"time {time.monotonic() - started:.1f}s",
        file=out,
    )
    ok = not doubles and not lost and all(replays)
    print("  RESULT: " + ("ok" if ok else "PROBLEM"), file=out)
    return ok
