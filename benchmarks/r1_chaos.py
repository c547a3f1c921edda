"""The R1 chaos run: jobs across the adapters on a private PostgreSQL cluster, while workers and
gateways are SIGKILLed at random and the database is restarted; then every job is accounted for.

    python benchmarks/r1_chaos.py                                       # the full run
    python benchmarks/r1_chaos.py --jobs 100 --kills 4 --db-restarts 1   # a quick one

What runs (root is needed for the network namespaces; without it, or if `ip netns` fails, the
run says so and everything runs on loopback instead):

* a private PostgreSQL cluster: `initdb` into a temporary directory (Debian's binaries under
  /usr/lib/postgresql/*/bin, run as the `postgres` user when we are root), `pg_ctl start` on a
  free port, listening on the bridge address below. The machine's own cluster is not touched.
* `--hosts` test hosts: network namespaces joined to a bridge in this namespace by veth pairs
  (10.231.N.0/24; the bridge is .1, host i is .10+i). Gateways (`portwright api`) and workers
  (`portwright worker`) run inside them via `ip netns exec`, spread round-robin; the sandbox
  world and PostgreSQL listen on the bridge address, so every request a job makes, every
  database round trip and every API call crosses a (virtual) network.
* the sandbox world with chaos on: the consulate (429s, 503s, latency, captchas on login), the
  static scrape catalogue (503s, latency), the directories (their own flaky/down/gone ones),
  the inbox and the captcha solver.
* `--jobs` jobs submitted through the gateways' `POST /v1/jobs` by two tenants, each with an
  `Idempotency-Key`, retried on another gateway when one is down: 20 % consulate bookings (one
  account each, one-time code from the inbox), 20 % directory-submission items (orders of
  `--order-size` directories each), the rest scrapes (the HTTP engine).
* chaos: `--kills` SIGKILLs of a random worker or gateway and `--db-restarts` restarts of the
  cluster (`pg_ctl stop -m immediate`, i.e. a crash, down for 4-10 s, then started), spaced
  over the run by progress (the i-th action once i/(n+1) of the jobs have ended, or at most
  `--max-gap` s after the previous one). A killed process is started again under the same id
  after 1-4 s. A process that exits on its own is started again too, and counted.

Reported: lost (acknowledged requests without a job; directory orders missing items), doubled
(one request with two jobs; a consulate account booked twice or a directory listing twice, from
the sandbox ledgers), stuck (not ended when the run's time is up), replayable (the job's audit
events fold back to its stored state and sequence, as `JobService.replay` does), the outcome of
every job, and the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENDED = frozenset({"succeeded", "failed", "cancelled"})
CONSULATE_OPTIONS = {  # plenty of slots: the run measures recovery, not scarcity
    "initial_slots": 40,
    "release_every_s": 3.0,
    "release_size": 12,
    "take_mean_s": 900.0,
    "hold_ttl_s": 90.0,
    "payment_delay_s": 0.3,
}
SCRAPE_RULES = {"title": {"selector": "h1.title"}}


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- the private PostgreSQL cluster --------------------------------------------------------------


def pg_bin() -> Path:
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl") if p.parts[4].isdigit()]
    if not found:
        raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    return max(found, key=lambda p: int(p.parts[4])).parent


class Cluster:
    """A throwaway PostgreSQL cluster in `root`, on `port`, listening on `hosts`."""

    def __init__(self, root: Path, hosts: list[str], port: int) -> None:
        self.bin = pg_bin()
        self.root = root
        self.data = root / "pgdata"
        self.port = port
        self.hosts = hosts
        self.log = root / "postgres.log"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *command: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*self.as_user, str(self.bin / command[0]), *command[1:]],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stderr[-1500:] or done.stdout[-1500:]}")

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '{','.join(self.hosts)}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nmax_connections = 500\n"
                "shared_buffers = 128MB\n"
                # no fsync: a killed server loses nothing it acknowledged (the WAL is written
                # to the kernel at commit); only a crash of the machine itself would
                "fsync = off\nfull_page_writes = off\n"
            )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 10.231.0.0/16 trust\nhost all all 127.0.0.1/32 trust\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, host: str, database: str = "postgres") -> str:
        return f"postgresql://postgres@{host}:{self.port}/{database}"


# -- the test hosts ------------------------------------------------------------------------------


class Hosts:
    """`count` network namespaces on a bridge (or, when that fails, loopback for all)."""

    def __init__(self, count: int, use_netns: bool) -> None:
        self.tag = secrets.token_hex(2)
        self.net = random.Random().randrange(0, 250)
        self.count = count
        self.names: list[str] = []
        self.links: list[str] = []
        self.bridge = f"r1b{self.tag}"
        self.fallback: str | None = None if use_netns else "--no-netns given"
        self.server = "127.0.0.1"
        self.addresses = ["127.0.0.1"] * count

    def _ip(self, *args: str) -> None:
        done = subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    def create(self) -> None:
        if self.fallback is not None:
            return
        if os.geteuid() != 0 or shutil.which("ip") is None:
            self.fallback = "not root or no `ip` command"
            return
        base = f"10.231.{self.net}"
        try:
            self._ip("link", "add", self.bridge, "type", "bridge")
            self.links.append(self.bridge)
            self._ip("addr", "add", f"{base}.1/24", "dev", self.bridge)
            self._ip("link", "set", self.bridge, "up")
            addresses = []
            for i in range(self.count):
                name, outer, inner = f"r1h{self.tag}-{i}", f"r1v{self.tag}{i}", f"r1p{self.tag}{i}"
                self._ip("netns", "add", name)
                self.names.append(name)
                self._ip("link", "add", outer, "type", "veth", "peer", "name", inner)
                self.links.append(outer)
                self._ip("link", "set", outer, "master", self.bridge)
                self._ip("link", "set", outer, "up")
                self._ip("link", "set", inner, "netns", name)
                self._ip("-n", name, "addr", "add", f"{base}.{10 + i}/24", "dev", inner)
                self._ip("-n", name, "link", "set", inner, "up")
                self._ip("-n", name, "link", "set", "lo", "up")
                addresses.append(f"{base}.{10 + i}")
            self.server, self.addresses = f"{base}.1", addresses
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            self.fallback = f"network namespaces failed ({exc})"
            self.teardown()
            self.names, self.links = [], []

    def prefix(self, index: int) -> list[str]:
        return ["ip", "netns", "exec", self.names[index]] if self.names else []

    def teardown(self) -> None:
        for name in self.names:
            subprocess.run(
                ["ip", "netns", "del", name], capture_output=True, timeout=30, check=False
            )
        for link in reversed(self.links):
            subprocess.run(
                ["ip", "link", "del", link], capture_output=True, timeout=30, check=False
            )


# -- the platform's processes --------------------------------------------------------------------


@dataclass
class Proc:
    role: str  # "worker" | "gateway"
    ident: str
    host: int
    command: list[str]
    env: dict[str, str]
    log: Path
    url: str = ""
    popen: subprocess.Popen[bytes] | None = None
    down_until: float | None = None  # killed on purpose: start again at this monotonic time
    exits: list[int] = field(default_factory=list)  # exits nobody asked for

    def spawn(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.command, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
        self.down_until = None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _cli() -> list[str]:
    return [sys.executable, "-m", "portwright.cli"]


# -- the requests --------------------------------------------------------------------------------


@dataclass
class Request:
    key: str  # the Idempotency-Key, and what the jobs of this request are recognised by
    kind: str  # booking | scrape | directories
    tenant: str
    body: dict[str, Any]
    items: int  # jobs it makes: 1, or the order's directories
    job_id: str | None = None
    attempts: int = 0
    error: str | None = None


def build_requests(args: argparse.Namespace, world: Any, slugs: list[str]) -> list[Request]:
    bookings = args.jobs // 5
    orders = max(1, (args.jobs // 5) // args.order_size) if args.jobs >= 10 else 0
    scrapes = args.jobs - bookings - orders * args.order_size
    tenants = ("acme", "globex")
    pairs = [(c, v) for c in ("LON", "MAN", "EDI") for v in ("tourist", "work", "study")]
    out: list[Request] = []
    for i in range(bookings):
        center, visa = pairs[i % len(pairs)]
        body = {"adapter": "consulate", "input": {
            "portal_url": world.url("consulate"), "inbox_url": world.url("inbox"),
            "account_email": f"r1user{i + 1}@example.test", "center": center, "visa_type": visa,
            "otp_source": "inbox", "scan_interval_s": 1.0, "deadline_s": 900.0,
            "payment_wait_s": 2.0, "otp_timeout_s": 120.0,
        }}  # fmt: skip
        out.append(Request(f"r1-booking-{i}", "booking", tenants[i % 2], body, 1))
    for i in range(orders):
        chosen = slugs[(i * args.order_size) % len(slugs) :][: args.order_size]
        chosen += slugs[: args.order_size - len(chosen)]
        profile = {
            "name": f"R1 Bakery {i:04d}",
            "address": {"street": f"{i + 1} Quay St", "city": "Bristol", "postcode": "BS1 4DJ",
                        "country": "UK"},
            "phone": f"+44 117 496 {i:04d}", "website": f"https://r1-bakery-{i}.example",
            "category": "bakery", "hours": "Mon-Sat 07:00-17:00",
        }  # fmt: skip
        body = {"adapter": "directory-submission", "input": {
            "profile": profile, "plan": 50, "directories": chosen, "poll_s": 0.5,
            "directories_url": world.url("directories"),
        }}  # fmt: skip
        out.append(Request(f"r1-order-{i}", "directories", tenants[i % 2], body, len(chosen)))
    for i in range(scrapes):
        product, copy = i % 5000 + 1, i // 5000
        url = f"{world.url('scrape-static')}/product/{product}" + (f"?copy={copy}" if copy else "")
        body = {
            "adapter": "scrape",
            "input": {"url": url, "engine": "http", "extract": SCRAPE_RULES},
        }
        out.append(Request(f"r1-scrape-{i}", "scrape", tenants[i % 2], body, 1))
    random.Random(args.seed).shuffle(out)
    return out


async def submit_all(
    requests: list[Request], gateways: list[Proc], keys: dict[str, str], deadline_s: float
) -> None:
    """POST each request to a gateway, with its Idempotency-Key, until one answers 202; a
    transport error, a 5xx, a 409 (the key still claimed by a killed gateway) or a 429 is
    retried on the next gateway, each request within `deadline_s`."""
    import httpx

    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async def submitter(n: int, client: httpx.AsyncClient) -> None:
        while True:
            try:
                request = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            give_up = time.monotonic() + deadline_s
            turn = n
            while time.monotonic() < give_up:
                gateway = gateways[turn % len(gateways)]
                turn += 1
                request.attempts += 1
                try:
                    answer = await client.post(
                        f"{gateway.url}/v1/jobs", json=request.body,
                        headers={"authorization": f"Bearer {keys[request.tenant]}",
                                 "idempotency-key": request.key},
                    )  # fmt: skip
                except httpx.TransportError as exc:
                    request.error = f"{type(exc).__name__}"
                    await asyncio.sleep(0.3)
                    continue
                if answer.status_code == 202:
                    request.job_id, request.error = answer.json()["id"], None
                    break
                request.error = f"{answer.status_code} {answer.text[:200]}"
                if answer.status_code < 500 and answer.status_code not in (409, 429):
                    break  # refused for good: the report shows why
                await asyncio.sleep(0.5 if answer.status_code != 429 else 1.0)

    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0)) as client:
        await asyncio.gather(*(submitter(n, client) for n in range(8)))


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Action:
    at_s: float
    what: str
    in_flight: int


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.procs: list[Proc] = []
        self.actions: list[Action] = []
        self.db_down = False
        self.started = time.monotonic()
        self.progress: Counter[str] = Counter()

    def t(self) -> float:
        return time.monotonic() - self.started

    async def supervise(self, stop: asyncio.Event) -> None:
        """Start again what was killed (once its time is up) and what exited on its own."""
        while not stop.is_set():
            now = time.monotonic()
            for proc in self.procs:
                if proc.alive():
                    continue
                if proc.down_until is not None:
                    if now >= proc.down_until:
                        proc.spawn()
                    continue
                assert proc.popen is not None
                proc.exits.append(int(proc.popen.returncode))
                log(f"{proc.ident} exited by itself ({proc.popen.returncode}); starting it again")
                proc.spawn()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    async def poll_progress(self, engine: Any, stop: asyncio.Event) -> None:
        import sqlalchemy as sa

        while not stop.is_set():
            try:
                with engine.connect() as conn:
                    rows = conn.execute(
                        sa.text("SELECT status, count(*) FROM jobs GROUP BY status")
                    )
                    self.progress = Counter({str(s): int(n) for s, n in rows})
            except sa.exc.SQLAlchemyError:
                pass  # the database is down (on purpose): read again later
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    def ended(self) -> int:
        return sum(n for s, n in self.progress.items() if s in ENDED)

    def in_flight(self) -> int:
        return sum(n for s, n in self.progress.items() if s not in ENDED)

    async def chaos(self, cluster: Cluster, total_jobs: int) -> None:
        args = self.args
        plan = ["kill"] * args.kills + ["db"] * args.db_restarts
        self.rng.shuffle(plan)
        if plan and plan[0] == "db" and "kill" in plan:  # start with a kill: the first gap is short
            plan.remove("kill")
            plan.insert(0, "kill")
        last = time.monotonic()
        for index, action in enumerate(plan):
            threshold = total_jobs * (index + 1) / (len(plan) + 1)
            while True:
                gap = time.monotonic() - last
                if gap >= args.min_gap and (self.ended() >= threshold or gap >= args.max_gap):
                    break
                await asyncio.sleep(0.2)
            if action == "kill":
                candidates = [p for p in self.procs if p.alive()]
                victim = self.rng.choice(candidates)
                victim.down_until = time.monotonic() + self.rng.uniform(1.0, 4.0)
                victim.kill()
                what = f"SIGKILL {victim.ident}"
            else:
                down = self.rng.uniform(4.0, 10.0)
                await asyncio.to_thread(cluster.stop, "immediate")
                self.db_down = True
                what = f"database stopped (immediate) for {down:.1f}s"
                self.actions.append(Action(self.t(), what, self.in_flight()))
                log(f"{what}; {self.ended()} ended, {self.in_flight()} in flight")
                await asyncio.sleep(down)
                await asyncio.to_thread(cluster.start)
                self.db_down = False
                what = "database started again"
            self.actions.append(Action(self.t(), what, self.in_flight()))
            log(f"{what}; {self.ended()} ended, {self.in_flight()} in flight")
            last = time.monotonic()


def _env(args: argparse.Namespace, db_url: str, data_dir: Path, config: Path,
         allow: list[str], key: str) -> dict[str, str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
    env.update(
        PORTWRIGHT_DATABASE_URL=db_url,
        PORTWRIGHT_DATA_DIR=str(data_dir),
        PORTWRIGHT_CONFIG=str(config),
        PORTWRIGHT_URL_ALLOWLIST=json.dumps(allow),
        PORTWRIGHT_MASTER_KEY=key,
        PORTWRIGHT_CHROMIUM="none",
        PORTWRIGHT_WORKER_CONCURRENCY=str(args.worker_concurrency),
        PORTWRIGHT_HEARTBEAT_INTERVAL_S="1",
        PORTWRIGHT_DEAD_WORKER_AFTER_S="6",
        PORTWRIGHT_DRAIN_TIMEOUT_S="0",
        PORTWRIGHT_LOG_LEVEL="WARNING",
        # the run is about recovery, not the per-key rate limit (120 POSTs a minute by default)
        PORTWRIGHT_RATE_LIMIT_WRITE="100000/minute",
        PORTWRIGHT_RATE_LIMIT_DEFAULT="100000/minute",
        PORTWRIGHT_LOG_JSON="true",
    )
    return env


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from portwright.sandbox import ChaosKnobs, SandboxWorld, captcha, consulate, directories, inbox
    from portwright.sandbox.config import world_toml

    sys.path.insert(0, str(HERE))
    from benchlib import static_site

    load_before = os.getloadavg()
    hosts = Hosts(args.hosts, use_netns=not args.no_netns)
    hosts.create()
    if hosts.fallback:
        log(f"no network namespaces: {hosts.fallback}; every process runs on loopback")
    tmp = _workdir()
    server = hosts.server
    cluster = Cluster(tmp / "pg", sorted({server, "127.0.0.1"}), free_port("127.0.0.1"))
    run_ = Run(args)
    result: dict[str, Any] = {"fallback": hosts.fallback, "load_before": load_before}
    world_ctx = None
    try:
        await asyncio.to_thread(cluster.init)
        await asyncio.to_thread(cluster.start)
        log(f"private PostgreSQL on {server}:{cluster.port} ({cluster.bin.parent.name}) in {tmp}")
        chaos = ChaosKnobs(rate_429=0.01, retry_after_s=1.0, rate_5xx=0.05, latency_ms=(5, 60),
                           captcha_rate=0.2)  # fmt: skip
        scrape_chaos = ChaosKnobs(rate_5xx=0.03, latency_ms=(5, 40))
        bookings = args.jobs // 5
        accounts = [{"email": f"r1user{n}@example.test", "password": f"pw-{n}"}
                    for n in range(1, bookings + 1)]  # fmt: skip
        specs = [
            *inbox.specs(),
            *captcha.specs(),
            *consulate.specs({**CONSULATE_OPTIONS, "accounts": accounts}, knobs=chaos),
            *[
                type(s)(s.name, s.build, knobs=scrape_chaos, options=s.options)
                for s in static_site()
            ],
            *directories.specs(),
        ]
        world_ctx = SandboxWorld(specs, seed=args.seed, host=server)
        world = world_ctx.start()
        config = tmp / "portwright.toml"
        config.write_text(world_toml(world))
        allow = [url.removeprefix("http://") for url in world.urls().values()]
        key = "r1-chaos-master-key-" + secrets.token_hex(16)
        db_url = cluster.url(server, "portwright")
        createdb = [*cluster.as_user, str(cluster.bin / "createdb"), "-h", str(cluster.root),
                    "-p", str(cluster.port), "-U", "postgres", "portwright"]  # fmt: skip
        await asyncio.to_thread(subprocess.run, createdb, check=True, capture_output=True,
                                timeout=60)  # fmt: skip
        env = _env(args, db_url, tmp / "data", config, allow, key)
        migrated = await asyncio.to_thread(
            subprocess.run, [*_cli(), "migrate"], env=env, cwd=ROOT, capture_output=True,
            text=True, timeout=300, check=False,
        )  # fmt: skip
        if migrated.returncode != 0:
            raise RuntimeError(f"portwright migrate failed: {migrated.stderr[-2000:]}")

        from portwright.gateway import issue_key
        from portwright.resources.vault import Vault
        from portwright.settings import Settings
        from portwright.store import Store

        settings = Settings(data_dir=tmp / "data", database_url=db_url, log_level="WARNING",
                            log_json=False, master_key=key)  # fmt: skip
        store = Store.open(settings.app_database_url)
        vault = Vault.from_settings(settings, store=store)
        keys, tenant_ids = {}, {}
        for tenant in ("acme", "globex"):
            issued = issue_key(store, tenant=tenant, name="r1", plan="enterprise")
            keys[tenant], tenant_ids[tenant] = issued.key, issued.record.tenant_id
        slugs = [
            d["slug"]
            for d in json.loads(
                (Path(directories.__file__).parent / "directories.json").read_text()
            )["directories"]
        ]
        requests = build_requests(args, world, slugs)
        for request in requests:
            if request.kind == "booking":
                email = request.body["input"]["account_email"]
                password = "pw-" + email.removeprefix("r1user").split("@")[0]
                vault.put(tenant_ids[request.tenant], email, password)

        logs = tmp / "logs"
        logs.mkdir()
        for i in range(args.gateways):
            host = i % args.hosts
            address = hosts.addresses[host]
            port = free_port("127.0.0.1") if hosts.fallback else 8080 + i
            command = [*hosts.prefix(host), *_cli(), "api", "--host", address, "--port", str(port)]
            proc = Proc("gateway", f"gateway-{i}", host, command, env, logs / f"gateway-{i}.log",
                        url=f"http://{address}:{port}")  # fmt: skip
            run_.procs.append(proc)
        for i in range(args.workers):
            host = (i + args.gateways) % args.hosts
            command = [*hosts.prefix(host), *_cli(), "worker", "--worker-id", f"r1-worker-{i}"]
            run_.procs.append(Proc("worker", f"r1-worker-{i}", host, command, env,
                                   logs / f"worker-{i}.log"))  # fmt: skip
        for proc in run_.procs:
            proc.spawn()
        await _wait_ready(run_, store, timeout_s=args.ready_timeout)
        log(f"{args.gateways} gateways and {args.workers} workers up on {args.hosts} hosts "
            f"({'namespaces' if not hosts.fallback else 'loopback'}); submitting "
            f"{len(requests)} requests ({sum(r.items for r in requests)} jobs)")  # fmt: skip

        gateways = [p for p in run_.procs if p.role == "gateway"]
        stop = asyncio.Event()
        total = sum(r.items for r in requests) + sum(1 for r in requests if r.kind == "directories")
        run_.started = time.monotonic()
        background = [
            asyncio.create_task(run_.supervise(stop)),
            asyncio.create_task(run_.poll_progress(store.engine, stop)),
        ]
        chaos_task = asyncio.create_task(run_.chaos(cluster, total))
        await submit_all(requests, gateways, keys, deadline_s=args.submit_deadline)
        submitted_s = run_.t()
        log(f"submitted in {submitted_s:.0f}s: "
            f"{sum(1 for r in requests if r.job_id)} acknowledged")  # fmt: skip
        deadline = time.monotonic() + args.timeout
        last_line = ""
        while time.monotonic() < deadline:
            line = " · ".join(f"{s} {n}" for s, n in sorted(run_.progress.items()))
            if line != last_line:
                log(line)
                last_line = line
            acknowledged = sum(r.items + (r.kind == "directories") for r in requests if r.job_id)
            settled = run_.progress and run_.in_flight() == 0
            if chaos_task.done() and settled and sum(run_.progress.values()) >= acknowledged:
                break
            await asyncio.sleep(1.0)
        finished_s = run_.t()
        if not chaos_task.done():
            chaos_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chaos_task
        if run_.db_down:
            await asyncio.to_thread(cluster.start)
        elif chaos_task.exception() is not None:
            raise chaos_task.exception()  # type: ignore[misc]
        stop.set()
        await asyncio.gather(*background)
        result.update(
            account(args, requests, store, world, run_, tenant_ids)
            | {"submitted_s": submitted_s, "finished_s": finished_s, "load_after": os.getloadavg(),
               "logs": str(logs)}
        )  # fmt: skip
        for proc in run_.procs:
            proc.stop()
        store.close()
        return result
    finally:
        for proc in run_.procs:
            with contextlib.suppress(Exception):
                proc.kill()
        if world_ctx is not None:
            world_ctx.stop()
        with contextlib.suppress(Exception):
            cluster.stop("fast")
        hosts.teardown()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")


def _workdir() -> Path:
    """A temporary directory the `postgres` user can enter (its cluster lives inside)."""
    tmp = Path(tempfile.mkdtemp(prefix="pw-r1-"))
    tmp.chmod(0o755)
    return tmp


async def _wait_ready(run_: Run, store: Any, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    workers = {p.ident for p in run_.procs if p.role == "worker"}
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            for proc in run_.procs:
                if not proc.alive():
                    tail = proc.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{proc.ident} exited during start-up:\n{tail}")
            alive = {w.id for w in store.workers.all() if w.status == "alive"}
            ready = workers <= alive
            for proc in run_.procs:
                if proc.role == "gateway" and ready:
                    try:
                        ready = (await client.get(f"{proc.url}/readyz")).status_code == 200
                    except httpx.TransportError:
                        ready = False
            if ready:
                return
            await asyncio.sleep(0.5)
    raise TimeoutError(f"the stack was not ready within {timeout_s:g}s")


def account(
    args: argparse.Namespace, requests: list[Request], store: Any, world: Any, run_: Run,
    tenant_ids: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """Every request and job accounted for: lost, doubled, stuck, replayable, outcomes."""
    from portwright.orchestrator import replay_events

    rows = []
    for tenant_id in tenant_ids.values():
        rows += store.jobs.search(tenant_id=tenant_id, limit=1_000_000)
    by_id = {job.id: job for job in rows}
    top = [job for job in rows if job.parent_id is None]
    marker = {
        "consulate": lambda j: j.input.get("account_email"),
        "scrape": lambda j: j.input.get("url"),
        "directory-submission": lambda j: (j.input.get("profile") or {}).get("name"),
    }
    per_marker = Counter((j.adapter, marker[j.adapter](j)) for j in top if j.adapter in marker)
    doubled_jobs = {k: n for k, n in per_marker.items() if n > 1}
    unsubmitted = [r for r in requests if r.job_id is None]
    markers = {"booking": "account_email", "scrape": "url"}
    for request in unsubmitted:  # an answer lost with its gateway: is the job there anyway?
        data = request.body["input"]
        want = (
            data["profile"]["name"]
            if request.kind == "directories"
            else data[markers[request.kind]]
        )
        found = [j.id for j in top if marker.get(j.adapter, lambda _j: None)(j) == want]
        request.error = f"{request.error}; jobs for it in the database: {found or 'none'}"
    lost: list[str] = [f"{r.key}: acknowledged as {r.job_id}, no such job"
                       for r in requests if r.job_id and r.job_id not in by_id]  # fmt: skip
    for request in requests:
        if request.kind == "directories" and request.job_id in by_id:
            items = store.jobs.children(request.job_id)
            if len(items) != request.items:
                lost.append(f"{request.key}: {len(items)} of {request.items} directory items")
    stuck = [j for j in rows if j.status not in ENDED]
    replay_ok, replay_bad = 0, []
    for job in rows:
        state, paused, seq, _ = replay_events(store.jobs.events(job.id))
        if state == job.state and paused == job.paused and seq == job.seq:
            replay_ok += 1
        else:
            replay_bad.append(f"{job.id} ({job.adapter}): row {job.state}/{job.seq}, "
                              f"events {state}/{seq}")  # fmt: skip
    bookings = world.ledger("consulate").entries("booking")
    per_account = Counter(e.actor for e in bookings)
    booked_twice = {a: n for a, n in per_account.items() if n > 1}
    listed_twice = world.ledger("directories").duplicates("listing")
    outcomes: dict[str, Counter[str]] = {}
    for job in rows:
        kind = job.adapter if job.parent_id is None else "directory item"
        outcomes.setdefault(kind, Counter())[f"{job.status}:{job.state}"] += 1
    reasons = Counter(f"{j.adapter}: {(j.reason or '')[:90]}" for j in rows if j.status == "failed")
    return {
        "requests": len(requests),
        "jobs_expected": sum(r.items for r in requests),
        "jobs_in_db": len(rows),
        "unsubmitted": [f"{r.key}: {r.error}" for r in unsubmitted],
        "submit_attempts": sum(r.attempts for r in requests),
        "lost": lost,
        "doubled_jobs": [f"{a} {m}: {n} jobs" for (a, m), n in doubled_jobs.items()],
        "booked_twice": booked_twice,
        "listed_twice": listed_twice,
        "bookings_in_ledger": len(bookings),
        "listings_in_ledger": len(world.ledger("directories").entries("listing")),
        "stuck": [
            f"{j.id} ({j.adapter}) {j.status}/{j.state} waiting_for={j.waiting_for}" for j in stuck
        ],
        "replayable": replay_ok,
        "replay_bad": replay_bad,
        "outcomes": {k: dict(v) for k, v in outcomes.items()},
        "failure_reasons": dict(reasons.most_common(12)),
        "actions": [a.__dict__ for a in run_.actions],
        "kills": sum(1 for a in run_.actions if a.what.startswith("SIGKILL")),
        "db_restarts": sum(1 for a in run_.actions if a.what.startswith("database stopped")),
        "unplanned_exits": {p.ident: p.exits for p in run_.procs if p.exits},
    }


def render(args: argparse.Namespace, r: dict[str, Any]) -> str:
    where = ("network namespaces on a bridge" if not r["fallback"]
             else f"loopback ({r['fallback']})")  # fmt: skip
    doubled = len(r["doubled_jobs"]) + len(r["booked_twice"]) + len(r["listed_twice"])
    lines = [
        f"R1 chaos run: {r['jobs_expected']} jobs from {r['requests']} requests, "
        f"{args.gateways} gateways + {args.workers} workers (concurrency "
        f"{args.worker_concurrency}) on {args.hosts} test hosts ({where}), private PostgreSQL",
        f"chaos: {r['kills']} SIGKILLs, {r['db_restarts']} database restarts; "
        f"seed {args.seed}; {os.cpu_count()} cores",
        f"submitted in {r['submitted_s']:.0f}s ({r['submit_attempts']} POSTs); all ended after "
        f"{r['finished_s']:.0f}s; load average before {r['load_before'][0]:.2f} "
        f"{r['load_before'][1]:.2f} {r['load_before'][2]:.2f}, after "
        f"{r['load_after'][0]:.2f} {r['load_after'][1]:.2f} {r['load_after'][2]:.2f}",
        "",
        f"lost        {len(r['lost'])}",
        f"doubled     {doubled}  (jobs per request {len(r['doubled_jobs'])}; consulate accounts "
        f"booked twice {len(r['booked_twice'])} of {r['bookings_in_ledger']} bookings; "
        f"directory listings twice {len(r['listed_twice'])} of {r['listings_in_ledger']})",
        f"stuck       {len(r['stuck'])}",
        f"replayable  {r['replayable']}/{r['jobs_in_db']}",
        f"unsubmitted {len(r['unsubmitted'])}  (requests no gateway acknowledged in time)",
        "",
        "outcomes (status:state x jobs):",
    ]
    for kind, counts in sorted(r["outcomes"].items()):
        spread = ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        lines.append(f"  {kind}: {spread}")
    if r["failure_reasons"]:
        lines.append("failure reasons:")
        lines += [f"  {n} x {reason}" for reason, n in r["failure_reasons"].items()]
    lines.append("chaos actions (s since submit, in flight):")
    lines += [f"  {a['at_s']:6.1f}s {a['what']} ({a['in_flight']})" for a in r["actions"]]
    if r["unplanned_exits"]:
        lines.append(f"processes that exited by themselves: {r['unplanned_exits']}")
    for title in ("lost", "doubled_jobs", "stuck", "replay_bad", "unsubmitted"):
        for entry in r[title][:15]:
            lines.append(f"{title.upper()}: {entry}")
    for account_, n in list(r["booked_twice"].items())[:15]:
        lines.append(f"BOOKED TWICE: {account_} x{n}")
    for listing, n in list(r["listed_twice"].items())[:15]:
        lines.append(f"LISTED TWICE: {listing} x{n}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--jobs", type=int, default=1000, help="jobs in all (1000)")
    add("--kills", type=int, default=20, help="SIGKILLs of workers and gateways (20)")
    add("--db-restarts", type=int, default=2, help="database restarts (2)")
    add("--hosts", type=int, default=3, help="test hosts (network namespaces) (3)")
    add("--workers", type=int, default=4, help="worker processes (4)")
    add("--gateways", type=int, default=2, help="gateway processes (2)")
    add("--worker-concurrency", type=int, default=16, help="jobs one worker runs at once (16)")
    add("--order-size", type=int, default=10, help="directories per directory order (10)")
    add("--min-gap", type=float, default=3.0, help="seconds at least between chaos actions")
    add("--max-gap", type=float, default=20.0, help="seconds at most between chaos actions")
    add("--timeout", type=float, default=1800.0, help="seconds for every job to end")
    add("--submit-deadline", type=float, default=180.0, help="seconds to get one request in")
    add("--ready-timeout", type=float, default=600.0, help="seconds for the stack to start")
    add("--seed", type=int, default=21)
    add("--no-netns", action="store_true", help="run everything on loopback")
    add("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    add("--json", metavar="FILE", help="also write the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.jobs < 10 or min(args.hosts, args.workers, args.gateways, args.order_size) < 1:
        raise SystemExit("--jobs >= 10; --hosts, --workers, --gateways, --order-size >= 1")
    if args.kills < 0 or args.db_restarts < 0 or args.order_size > 50:
        raise SystemExit("--kills and --db-restarts >= 0; --order-size <= 50")
    from portwright.observability import configure_logging
    from portwright.settings import Settings

    configure_logging(Settings(log_level="WARNING", log_json=False))
    result = asyncio.run(run(args))
    print(render(args, result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    bad = (
        result["lost"] or result["doubled_jobs"] or result["booked_twice"] or result["listed_twice"]
    )
    bad = bad or result["stuck"] or result["replay_bad"] or result["unsubmitted"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
