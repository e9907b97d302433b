"""Bench inbound webhooks (issue 5): signed WhatsApp webhooks per second on PostgreSQL + Redis.

Part of ``make bench``; run alone with ``python -m bench.webhooks`` (or
``BENCH_ONLY=webhooks python -m bench.run``), which writes
``bench/results/<timestamp>-webhooks.json`` and ``bench/results/latest-webhooks.md``.

* **hub**: a fresh PostgreSQL database, a private Redis, two daphne processes with the
  WhatsApp channel configured, ``OPERATORS`` operators online (one default query type, no
  type menu, room for every conversation, so each conversation is assigned at once and
  the hub sends nothing to the provider), each with a console WebSocket open.  The load
  generator (its own process: ``python -m bench.webhooks load CONFIG``) signs every
  webhook as the provider does (compact JSON, ``X-Hub-Signature-256`` = HMAC-SHA256 of the
  raw bytes) and spreads them over both processes:

  - ``first``: one message per customer (``CUSTOMERS`` wa_ids) opens its conversation;
  - ``hot``: ``HOT_MESSAGES`` more, closed loop at concurrency ``CONCURRENCY`` (a known
    customer writing on an open conversation: the hot path);
  - ``open``: ``OPEN_RATE`` webhooks a second for ``OPEN_SECONDS``, timed from the
    scheduled send (a slow server cannot hide its backlog).

  Per message: the HTTP answer, and the first ``chat.message_created`` carrying its text on
  any console (webhook send → console receipt, one machine clock).  Lost = answered 2xx
  but never seen on a console within ``DRAIN_SECONDS`` of the phase's last send.  At the
  end the database must hold exactly one inbound message per accepted webhook.
* **bare**: the baseline measured in the same run: as many processes of a bare aiohttp
  server that checks the signature and answers 200 (the ceiling of HTTP + HMAC here),
  driven by the same generator with the same ``hot`` and ``open`` phases.

The bench never runs Django in this process: seeding is bench.routing_worker's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = os.environ.get("BENCH_QUICK", "") not in {"", "0"}

PROCESSES = 2
OPERATORS = 20
CUSTOMERS = 100 if QUICK else 500
CAPACITY = 100  # room for every conversation: nobody queues, no queue-position message
CONCURRENCY = 50
# Conversations open at a lower concurrency than the operators' count: each router locks the
# operator row it picks (SKIP LOCKED), and with more routers in flight than operators a
# conversation finds every row held and queues although operators have room (seen while the
# webhook view was sync: 52 of 100 queued at C=50 with 20 operators; the view now runs on
# the bounded database threads, 2 x 8 routers at most, and C=50 queued none).
FIRST_CONCURRENCY = 10
# A closed loop stops taking new messages after this long (a slow server must not stretch
# the bench past its budget); the figures say how many were sent.
MAX_PHASE_SECONDS = 30.0
HOT_MESSAGES = 1_000 if QUICK else 5_000
# Below the hub's closed-loop capacity on the 2-CPU machine it was written on (~60/s): an
# open loop above capacity measures a growing backlog, not latency.
OPEN_RATE = 30
OPEN_SECONDS = 3.0 if QUICK else 10.0
DRAIN_SECONDS = 15.0
PHONE_NUMBER_ID = "100200300"
DISPLAY_PHONE = "15550001111"
HUB_BENCH_ENV = {"HUB_WS_RATE_PER_SECOND": "1000000", "HUB_WS_RATE_BURST": "1000000"}
TAG = "wh|"


def log(msg: str) -> None:
    print(f"[bench webhooks {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def plan() -> dict[str, Any]:
    """The figures that shape this run (stored with the results)."""
    return {
        "quick": QUICK,
        "processes": PROCESSES,
        "operators": OPERATORS,
        "capacity": CAPACITY,
        "customers": CUSTOMERS,
        "concurrency": CONCURRENCY,
        "first_concurrency": FIRST_CONCURRENCY,
        "max_phase_seconds": MAX_PHASE_SECONDS,
        "hot_messages": HOT_MESSAGES,
        "open_rate": OPEN_RATE,
        "open_seconds": OPEN_SECONDS,
        "drain_seconds": DRAIN_SECONDS,
    }


# --- the provider's side: bodies and signatures -------------------------------------------
def signature(secret: bytes, body: bytes) -> str:
    """``X-Hub-Signature-256`` as the provider computes it: over the exact raw bytes."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def webhook_body(*, wa_id: str, name: str, wamid: str, text: str) -> bytes:
    """One inbound text message, compact JSON as the Cloud API sends it."""
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA_BENCH",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": DISPLAY_PHONE,
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": wamid,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def spread(samples_ns: list[int]) -> dict[str, float | int | None]:
    """p50/p95/p99/max in milliseconds (nearest rank)."""
    if not samples_ns:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    data = sorted(samples_ns)

    def pick(q: float) -> float:
        return round(data[min(len(data) - 1, int(q * len(data)))] / 1e6, 2)

    return {
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(data[-1] / 1e6, 2),
        "n": len(data),
    }


# --- the bare baseline server ---------------------------------------------------------------
def serve_bare(port: int, secret: str) -> None:
    """A bare aiohttp server: read the body, check the signature in constant time, 200."""
    from aiohttp import web

    key = secret.encode()

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        given = request.headers.get("X-Hub-Signature-256", "")
        if not hmac.compare_digest(given, signature(key, body)):
            return web.json_response({"error": "bad signature"}, status=403)
        return web.json_response({"ok": True})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/channels/whatsapp/webhook", webhook)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- the load generator (its own process) ---------------------------------------------------
class Consoles:
    """Operators' console sockets: when each bench message was first seen, and repeats."""

    def __init__(self) -> None:
        self.first_seen: dict[str, int] = {}
        self.duplicates = 0
        self.sockets: list[Any] = []
        self.tasks: list[asyncio.Task] = []

    async def open(self, bases: list[str], tokens: list[str]) -> None:
        from bench.client import Target, open_console

        target = Target(kind="hub", customer_bases=[], console_bases=bases, operator_tokens=tokens)
        for op in range(len(tokens)):
            ws, _ = await open_console(target, op, operator=op)
            self.sockets.append(ws)
            self.tasks.append(asyncio.ensure_future(self._read(ws)))

    async def _read(self, ws: Any) -> None:
        from bench.client import MESSAGE_CREATED, message_text

        with contextlib.suppress(Exception):
            async for raw in ws:
                if MESSAGE_CREATED not in raw:
                    continue
                seen = time.monotonic_ns()
                text = message_text(json.loads(raw))
                if not text or not text.startswith(TAG):
                    continue
                if text in self.first_seen:
                    self.duplicates += 1
                else:
                    self.first_seen[text] = seen

    async def close(self) -> None:
        from bench.client import close_all

        for task in self.tasks:
            task.cancel()
        await close_all(self.sockets)


class Phase:
    """One phase's sends: per message the send time, the HTTP answer and its status."""

    def __init__(self, name: str, cfg: dict[str, Any], secret: bytes) -> None:
        self.name = name
        self.cfg = cfg
        self.secret = secret
        self.sent: dict[str, int] = {}
        self.accepted: set[str] = set()
        self.http_ns: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.error_sample: str | None = None
        self.last_answer_ns = 0
        self.capped = False

    async def send(self, session: Any, i: int, scheduled_ns: int | None = None) -> None:
        customers = self.cfg["customers"]
        k = i % customers
        text = f"{TAG}{self.name}|{i}"
        body = webhook_body(
            wa_id=f"3460{k:07d}", name=f"Bench {k}", wamid=f"wamid.bench.{self.name}.{i}", text=text
        )
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(self.secret, body),
        }
        bases = self.cfg["bases"]
        url = f"{bases[i % len(bases)]}/channels/whatsapp/webhook"
        started = scheduled_ns or time.monotonic_ns()
        self.sent[text] = started
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                status = resp.status
        except Exception as exc:  # counted, the phase goes on
            self.errors += 1
            self.error_sample = self.error_sample or f"{type(exc).__name__}: {exc}"[:300]
            return
        answered = time.monotonic_ns()
        self.last_answer_ns = max(self.last_answer_ns, answered)
        self.http_ns.append(answered - started)
        self.statuses[status] += 1
        if 200 <= status < 300:
            self.accepted.add(text)


async def _closed(
    phase: Phase, session: Any, count: int, concurrency: int, max_seconds: float
) -> None:
    order = iter(range(count))
    stop_at = time.monotonic() + max_seconds

    async def worker() -> None:
        for i in order:  # shared: each worker takes the next message when its last is answered
            await phase.send(session, i)
            if time.monotonic() > stop_at:
                phase.capped = True
                return

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _open(phase: Phase, session: Any, rate: float, seconds: float) -> None:
    count = int(rate * seconds)
    start = time.monotonic_ns() + 50_000_000
    tasks = []
    for i in range(count):
        due = start + int(i * 1e9 / rate)
        delay = (due - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(phase.send(session, i, scheduled_ns=due)))
    await asyncio.gather(*tasks)


async def _run_phase(
    spec: dict[str, Any], cfg: dict[str, Any], consoles: Consoles | None
) -> dict[str, Any]:
    import aiohttp

    from bench.procstat import CpuMeter

    phase = Phase(spec["name"], cfg, cfg["secret"].encode())
    limit = spec.get("c") or cfg.get("open_connections", 256)
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    meter = CpuMeter(cfg["cpu_pids"])
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        meter.start()
        started = time.monotonic_ns()
        if spec["mode"] == "closed":
            await _closed(phase, session, spec["count"], spec["c"], cfg["max_phase_seconds"])
        else:
            await _open(phase, session, spec["rate"], spec["seconds"])
        sent_done = time.monotonic_ns()
        cpu = meter.stop()
    seconds = (max(phase.last_answer_ns, sent_done) - started) / 1e9
    accepted = len(phase.accepted)
    out: dict[str, Any] = {
        "mode": spec["mode"],
        "sent": len(phase.sent),
        "accepted": accepted,
        "non_2xx": {str(s): n for s, n in sorted(phase.statuses.items()) if not 200 <= s < 300},
        "errors": phase.errors,
        "error_sample": phase.error_sample,
        "seconds": round(seconds, 3),
        "accepted_per_second": round(accepted / seconds, 1) if seconds > 0 else None,
        "http_ms": spread(phase.http_ns),
        "cpu_seconds": cpu,
    }
    if spec["mode"] == "closed":
        out["c"] = spec["c"]
        out["stopped_at_time_cap"] = phase.capped
    else:
        out["rate"] = spec["rate"]
        out["duration"] = spec["seconds"]
    if consoles is None:
        return out
    # Wait (bounded) until every accepted message reached a console.
    deadline = time.monotonic() + cfg["drain_seconds"]
    while time.monotonic() < deadline:
        if all(key in consoles.first_seen for key in phase.accepted):
            break
        await asyncio.sleep(0.05)
    latencies = [
        consoles.first_seen[key] - phase.sent[key]
        for key in phase.accepted
        if key in consoles.first_seen
    ]
    seen = [key for key in phase.sent if key in consoles.first_seen]
    last_seen = max((consoles.first_seen[k] for k in seen), default=started)
    out.update(
        {
            "console_ms": spread(latencies),
            "seen": len(seen),
            "lost": sum(1 for key in phase.accepted if key not in consoles.first_seen),
            "seen_not_accepted": sum(1 for key in seen if key not in phase.accepted),
            "delivered_per_second": (
                round(len(seen) / ((last_seen - started) / 1e9), 1) if seen else None
            ),
            "drain_seconds": round((time.monotonic_ns() - sent_done) / 1e9, 2),
        }
    )
    return out


async def generate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Open the consoles (if any), run each phase in turn, and return their figures."""
    from bench.procstat import raise_nofile

    raise_nofile()
    consoles = None
    if cfg.get("consoles"):
        consoles = Consoles()
        await consoles.open(cfg["consoles"], cfg["tokens"])
    results: dict[str, Any] = {"phases": {}}
    try:
        for spec in cfg["phases"]:
            log(f"{cfg['label']}: phase {spec['name']}")
            results["phases"][spec["name"]] = await _run_phase(spec, cfg, consoles)
            log(f"{cfg['label']}: {spec['name']}: {_short(results['phases'][spec['name']])}")
            await asyncio.sleep(cfg.get("pause_seconds", 1.0))
    finally:
        if consoles is not None:
            results["duplicates"] = consoles.duplicates
            await consoles.close()
    return results


def _short(phase: dict[str, Any]) -> str:
    text = (
        f"{phase['accepted']}/{phase['sent']} accepted, {phase['accepted_per_second']}/s, "
        f"http p99 {phase['http_ms']['p99']} ms"
    )
    if "console_ms" in phase:
        text += f", console p50/p99 {phase['console_ms']['p50']}/{phase['console_ms']['p99']} ms"
        text += f", lost {phase['lost']}"
    return text


# --- the orchestrator -----------------------------------------------------------------------
def _phases(*, first: bool) -> list[dict[str, Any]]:
    phases = []
    if first:
        phases.append(
            {"name": "first", "mode": "closed", "count": CUSTOMERS, "c": FIRST_CONCURRENCY}
        )
    phases.append({"name": "hot", "mode": "closed", "count": HOT_MESSAGES, "c": CONCURRENCY})
    phases.append({"name": "open", "mode": "open", "rate": OPEN_RATE, "seconds": OPEN_SECONDS})
    return phases


def _generator(cfg: dict[str, Any], tmp: Path, timeout: float = 240) -> dict[str, Any]:
    """Run the load generator in its own process (never sharing a GIL with a server)."""
    from tests.harness import PYTHON, ROOT

    path = tmp / f"webhooks-{cfg['label']}.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.run(
        [PYTHON, "-m", "bench.webhooks", "load", str(path)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=None,  # the generator's progress lines go straight to ours
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"webhook generator ({cfg['label']}) exited {proc.returncode}")
    return json.loads(proc.stdout)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def bare_bench(tmp: Path, secret: str) -> dict[str, Any]:
    """The ceiling: bare aiohttp servers (as many as the hub's processes), same load."""
    from tests.harness import PYTHON, ROOT, free_port

    procs: list[subprocess.Popen] = []
    try:
        ports = []
        for _ in range(PROCESSES):
            port = free_port()
            with open(tmp / f"bare-{port}.log", "w") as log_file:  # the child keeps its copy
                procs.append(
                    subprocess.Popen(
                        [PYTHON, "-m", "bench.webhooks", "bare", "--port", str(port)],
                        cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=str(ROOT), BENCH_WEBHOOK_SECRET=secret),
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            ports.append(port)
        for port, proc in zip(ports, procs, strict=True):
            _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        cfg = {
            "label": "bare",
            "bases": [f"http://127.0.0.1:{port}" for port in ports],
            "secret": secret,
            "customers": CUSTOMERS,
            "phases": _phases(first=False),
            "cpu_pids": {"web": [p.pid for p in procs]},
            "drain_seconds": DRAIN_SECONDS,
            "max_phase_seconds": MAX_PHASE_SECONDS,
        }
        result = _generator(cfg, tmp)
    finally:
        for proc in procs:
            _terminate(proc)
    return {"processes": PROCESSES, **result["phases"]}


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _seed(env: dict[str, str]) -> dict[str, Any]:
    """Online operators with API tokens and one default query type (bench.routing_worker):
    every first message is assigned at once, no type menu, no queue-position message."""
    from tests.harness import PYTHON, ROOT

    proc = subprocess.run(
        [PYTHON, "-m", "bench.routing_worker", "seed-operators", str(OPERATORS), str(CAPACITY)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def _db_checks(db_url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as db:
        inbound, outbound = db.execute(
            "SELECT count(*) FILTER (WHERE direction = 'in' AND channel = 'whatsapp'), "
            "count(*) FILTER (WHERE direction = 'out') FROM chat_message"
        ).fetchone()
        conversations, operators, queued = db.execute(
            "SELECT count(*), count(DISTINCT operator_id), "
            "count(*) FILTER (WHERE status = 'queued') FROM chat_conversation"
        ).fetchone()
    return {
        "inbound_messages": inbound,
        "outbound_messages": outbound,
        "conversations": conversations,
        "operators_holding": operators,
        "queued": queued,
    }


class ConnectionWatch:
    """Samples how many PostgreSQL connections the bench database has (a thread, twice a
    second) while the load runs: the hub's connection use under load."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.samples: list[int] = []
        self.machine: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        name = self.db_url.rsplit("/", 1)[-1]
        with contextlib.suppress(Exception), psycopg.connect(self.db_url, autocommit=True) as db:
            while not self._stop.wait(0.5):
                row = db.execute(
                    "SELECT count(*) FILTER (WHERE datname = %s), "
                    "count(*) FILTER (WHERE backend_type = 'client backend') "
                    "FROM pg_stat_activity",
                    [name],
                ).fetchone()
                self.samples.append(row[0] - 1)  # not this one
                self.machine.append(row[1])

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def summary(self) -> dict[str, Any]:
        return {
            "max": max(self.samples, default=None),
            "last": self.samples[-1] if self.samples else None,
            # Every database on the server: other work shares max_connections.
            "server_max": max(self.machine, default=None),
        }


_PROBLEM = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|WARNING")


def _log_problems(paths: list[Path]) -> dict[str, Any]:
    """Errors and warnings the hub processes logged while measured (count and a sample)."""
    lines = []
    for path in paths:
        if path.exists():
            lines += [
                line
                for line in path.read_text(errors="replace").splitlines()
                if _PROBLEM.search(line)
            ]
    return {"count": len(lines), "sample": lines[:5]}


def hub_bench(tmp: Path, secret: str, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """The hub on PostgreSQL + Redis, two daphne processes, consoles open."""
    from tests.harness import HubProcess, RedisServer, free_port, fresh_postgres, hub_env, manage

    with fresh_postgres("hub_bench") as db_url, RedisServer() as redis:
        env = hub_env(
            db_url,
            redis.url,
            **HUB_BENCH_ENV,
            WHATSAPP_APP_SECRET=secret,
            WHATSAPP_VERIFY_TOKEN="bench-verify",
            WHATSAPP_ACCESS_TOKEN="bench-token",
            WHATSAPP_PHONE_NUMBER_ID=PHONE_NUMBER_ID,
            # Nothing listens: the hub must not send anything in this bench (checked below).
            WHATSAPP_API_BASE_URL=f"http://127.0.0.1:{free_port()}",
            WHATSAPP_SEND_ATTEMPTS="1",
            **(extra_env or {}),
        )
        migrated = manage(env, "migrate", "--noinput", "-v0", check=False)
        if migrated.returncode != 0:  # say why: the bench's report is all a reader gets
            raise RuntimeError(f"migrate failed:\n{migrated.stderr[-2000:]}")
        seeded = _seed(env)
        log(f"hub: seeded {OPERATORS} operators in {seeded['seconds']} s")
        webs = [HubProcess(env, log_dir=tmp) for _ in range(PROCESSES)]
        try:
            for web in webs:
                web.start()
            cfg = {
                "label": "hub",
                "bases": [web.http for web in webs],
                "consoles": [web.ws for web in webs],
                "tokens": [o["token"] for o in seeded["operators"]],
                "secret": secret,
                "customers": CUSTOMERS,
                "phases": _phases(first=True),
                "cpu_pids": {
                    "web": [web.proc.pid for web in webs],  # type: ignore[union-attr]
                    "redis": [redis.proc.pid],  # type: ignore[union-attr]
                    "pg": "auto",
                },
                "drain_seconds": DRAIN_SECONDS,
                "max_phase_seconds": MAX_PHASE_SECONDS,
            }
            with ConnectionWatch(db_url) as watch:
                result = _generator(cfg, tmp)
        finally:
            for web in webs:
                web.stop()
        db = _db_checks(db_url)
        db["connections"] = watch.summary()
    phases = result["phases"]
    accepted = sum(p["accepted"] for p in phases.values())
    db["accepted_webhooks"] = accepted
    db["stored_equals_accepted"] = db["inbound_messages"] == accepted
    return {
        "processes": PROCESSES,
        "operators": OPERATORS,
        "capacity": CAPACITY,
        "customers": CUSTOMERS,
        "seed_seconds": seeded["seconds"],
        "env": extra_env or {},
        **phases,
        "duplicates": result.get("duplicates"),
        "db": db,
        "log_problems": _log_problems([web.log_path for web in webs]),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def run_webhooks(tmp: Path) -> dict[str, Any]:
    """The baseline then the hub; a failing side is recorded and the other still runs."""
    started = time.monotonic()
    secret = secrets.token_hex(16)
    out: dict[str, Any] = {"plan": plan(), "loadavg_at_start": os.getloadavg()}
    for name, bench in (("bare", bare_bench), ("hub", hub_bench)):
        sub = tmp / f"webhooks-{name}"
        sub.mkdir(parents=True, exist_ok=True)
        log(f"== webhooks {name}")
        part_started = time.monotonic()
        try:
            out[name] = bench(sub, secret)
        except Exception as exc:
            log(f"webhooks {name} FAILED: {exc}")
            out[name] = {"error": str(exc)[-3000:]}
            for log_file in sub.glob("*.log"):
                log(f"--- {log_file.name}\n{log_file.read_text(errors='replace')[-3000:]}")
        out[name]["wall_seconds"] = round(time.monotonic() - part_started, 1)
    hub, bare = out["hub"], out["bare"]

    def get(side: dict[str, Any], phase: str, *path: str) -> Any:
        value: Any = side.get(phase)
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    out["ratios"] = {
        "hot_accepted_per_second": _ratio(
            get(hub, "hot", "accepted_per_second"), get(bare, "hot", "accepted_per_second")
        ),
        "hot_http_p99": _ratio(
            get(hub, "hot", "http_ms", "p99"), get(bare, "hot", "http_ms", "p99")
        ),
        "open_http_p99": _ratio(
            get(hub, "open", "http_ms", "p99"), get(bare, "open", "http_ms", "p99")
        ),
        "open_accepted_per_second": _ratio(
            get(hub, "open", "accepted_per_second"), get(bare, "open", "accepted_per_second")
        ),
    }
    out["loadavg_at_end"] = os.getloadavg()
    out["wall_seconds"] = round(time.monotonic() - started, 1)
    return out


def _git_commit() -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
        ).stdout.strip()
    return "?"


def main() -> None:
    """Run the webhook bench alone; results beside the full run's, never over them."""
    from bench.procstat import raise_nofile
    from bench.report import render_webhooks_markdown

    raise_nofile()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(prefix="hub-bench-webhooks-") as tmpdir:
        webhooks = run_webhooks(Path(tmpdir))
    meta = {
        "timestamp": stamp,
        "commit": _git_commit(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": webhooks["loadavg_at_start"],
    }
    results = {"meta": meta, "webhooks": webhooks}
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if QUICK else ""
    (RESULTS / f"{stamp}-webhooks{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render_webhooks_markdown(results)
    (RESULTS / f"latest-webhooks{suffix}.md").write_text(markdown)
    print(markdown)


def _cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks")
    sub = parser.add_subparsers(dest="command")
    bare = sub.add_parser("bare", help="serve the bare baseline")
    bare.add_argument("--port", type=int, required=True)
    load = sub.add_parser("load", help="the load generator (prints JSON)")
    load.add_argument("config")
    args = parser.parse_args()
    if args.command == "bare":
        serve_bare(args.port, os.environ["BENCH_WEBHOOK_SECRET"])
    elif args.command == "load":
        cfg = json.loads(Path(args.config).read_text())
        json.dump(asyncio.run(generate(cfg)), sys.stdout)
    else:
        main()


if __name__ == "__main__":
    _cli()
