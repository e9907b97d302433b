"""Bench orchestrator: ``make bench`` (``BENCH_QUICK=1 make bench`` for a short run).

Starts each server under test, drives it with the load generator in a separate process
(bench.client), and writes ``bench/results/<timestamp>.json`` and ``bench/results/latest.md``.

Servers, all on this machine and measured with the same client in the same run:

* ``bare``   a bare ``websockets`` relay (bench.bare_relay): the Python ceiling;
* ``naive``  a stock Channels consumer + classic RedisChannelLayer on daphne
  (bench.naive_relay): what a tutorial gives, nothing persisted;
* ``hub``    the hub, embedded default: one daphne, SQLite, in-memory layer;
* ``hub_pg`` the hub on PostgreSQL + Redis (pub/sub layer) with two daphne processes:
  customers on the first, consoles on the second (idle sockets split evenly).

Then the channel layer micro-benchmark (bench.layers) and the routing scenarios
(bench.routing: batch derivation of 10,000 conversations, 1,000 arrivals at once) and the
knowledge-base search (bench.knowledge_base: p50/p95 over 10,000 replies, both databases),
and the inbound webhooks (bench.webhooks: signed WhatsApp webhooks per second on PostgreSQL +
Redis, webhook → console latency, against a bare aiohttp server).
``BENCH_ONLY=routing`` runs the routing scenarios alone (``python -m bench.routing``),
``BENCH_ONLY=webhooks`` the webhooks alone (``python -m bench.webhooks``), and
``BENCH_ONLY=dashboard`` the analytics dashboard over 100,000 conversations and 1,000,000
messages alone (``python -m bench.dashboard``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.dashboard import main as dashboard_main
from bench.dashboard import run_dashboard
from bench.knowledge_base import run_knowledge_base
from bench.procstat import cpu_by_pid, cpu_delta, raise_nofile
from bench.report import render_markdown
from bench.routing import main as routing_main
from bench.routing import run_routing
from bench.webhooks import main as webhooks_main
from bench.webhooks import run_webhooks
from tests.harness import (
    DAPHNE,
    PYTHON,
    ROOT,
    HubProcess,
    RedisServer,
    free_port,
    fresh_postgres,
    hub_env,
    migrate,
)

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = os.environ.get("BENCH_QUICK", "") not in {"", "0"}

PLAN: dict[str, Any] = (
    {
        "c_points": [1, 50],
        "duration": 3.0,
        "warmup": 0.5,
        "open_rate": 300,
        "open_pairs": 50,
        "open_duration": 3.0,
        "idle_sizes": [1000],
        "idle_customers": 1000,
        "handshakes": 500,
        "burst": (50, 20),
        "reconnect_deadline": 15.0,
        "reconnect_give_up": 20.0,
        "idle_cpu_window": 2.0,
    }
    if QUICK
    else {
        "c_points": [1, 50, 1000],
        "duration": 10.0,
        "warmup": 1.0,
        "open_rate": 300,
        "open_pairs": 50,
        "open_duration": 10.0,
        "idle_sizes": [1000, 5000],
        "idle_customers": 1000,
        "handshakes": 500,
        "burst": (50, 100),
        "reconnect_deadline": 15.0,
        "reconnect_give_up": 25.0,
        "idle_cpu_window": 3.0,
    }
)

# Customers routed the ordinary way while pairing (the rest queue and are pulled by
# operators coming online: routing reads every online operator, see bench.client.cmd_pair).
ROUTED = 100
# The benchmark hub processes must not rate-limit the load generator.
HUB_BENCH_ENV = {"HUB_WS_RATE_PER_SECOND": "1000000", "HUB_WS_RATE_BURST": "1000000"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@dataclass
class Shape:
    """A server under test, as the client sees it."""

    name: str
    kind: str  # "relay" or "hub"
    web_pids: list[int]
    customer_bases: list[str]
    console_bases: list[str]
    cpu_pids: dict[str, Any]
    operator_tokens: list[str] = field(default_factory=list)
    supervisor_token: str | None = None
    pairs: list[dict[str, Any]] | None = None
    tmp: Path = Path("/tmp")
    notes: dict[str, Any] = field(default_factory=dict)
    # Restarts the web processes (same ports) and returns their new pids: memory figures
    # need a fresh process, since freed memory is reused rather than returned.
    restarter: Any = None

    def restart(self) -> None:
        if self.restarter is None:
            return
        old = set(self.web_pids)
        self.web_pids = self.restarter()
        self.cpu_pids["web"] = list(self.web_pids)
        log(f"{self.name}: restarted web processes {sorted(old)} -> {self.web_pids}")

    def target(self, *, split_consoles: bool = False) -> dict[str, Any]:
        consoles = self.console_bases
        if split_consoles:
            consoles = sorted(set(self.customer_bases + self.console_bases))
        return {
            "kind": self.kind,
            "customer_bases": self.customer_bases,
            "console_bases": consoles,
            "operator_tokens": self.operator_tokens,
            "supervisor_token": self.supervisor_token,
        }


def run_client(shape: Shape, cfg: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    """Run one client command in its own process and return its JSON."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=shape.tmp, delete=False) as fh:
        json.dump(cfg, fh)
        path = fh.name
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.monotonic()
    proc = subprocess.run(
        [PYTHON, "-m", "bench.client", path],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"client {cfg['cmd']} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout)
    result["client_wall_seconds"] = round(time.monotonic() - started, 2)
    return result


# --- the servers ---------------------------------------------------------------------------
def _spawn(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=open(log_path, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def _relay_shape(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    port: int,
    tmp: Path,
    extra_pids: dict[str, list[int]] | None = None,
) -> Iterator[Shape]:
    """A baseline relay served by one process on ``port`` (restartable between points)."""
    log = tmp / f"{name}.log"
    procs = [_spawn(cmd, env, log)]

    def restart() -> list[int]:
        _stop(procs[0])
        procs[0] = _spawn(cmd, env, log)
        wait_port(port, procs[0])
        return [procs[0].pid]

    try:
        wait_port(port, procs[0])
        url = f"ws://127.0.0.1:{port}"
        yield Shape(
            name,
            "relay",
            [procs[0].pid],
            [url],
            [url],
            {"web": [procs[0].pid], **(extra_pids or {})},
            tmp=tmp,
            restarter=restart,
        )
    finally:
        _stop(procs[0])


@contextlib.contextmanager
def bare_shape(tmp: Path) -> Iterator[Shape]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [PYTHON, "-m", "bench.bare_relay", "--port", str(port)]
    with _relay_shape("bare", cmd, env, port, tmp) as shape:
        yield shape


@contextlib.contextmanager
def naive_shape(tmp: Path) -> Iterator[Shape]:
    with RedisServer() as redis:
        port = free_port()
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            DJANGO_SETTINGS_MODULE="bench.naive_settings",
            BENCH_REDIS_URL=redis.url,
        )
        cmd = [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "bench.naive_relay:application"]
        with _relay_shape("naive", cmd, env, port, tmp, {"redis": [redis.proc.pid]}) as shape:
            yield shape


def _seed(env: dict[str, str], count: int, online: int) -> dict[str, Any]:
    proc = subprocess.run(
        [PYTHON, "-m", "bench.seed", str(count), str(online)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


@contextlib.contextmanager
def hub_embedded_shape(tmp: Path, operators: int, online: int) -> Iterator[Shape]:
    var = tmp / "hub-var"
    env = hub_env(None, None, HUB_VAR_DIR=str(var), **HUB_BENCH_ENV)
    migrate(env)
    seeded = _seed(env, operators, online)
    log(f"hub: seeded {operators} operators in {seeded['seconds']} s")
    with HubProcess(env, log_dir=tmp) as web:
        yield Shape(
            "hub",
            "hub",
            [web.proc.pid],
            [web.ws],
            [web.ws],
            {"web": [web.proc.pid]},
            operator_tokens=[o["token"] for o in seeded["operators"]],
            supervisor_token=seeded["supervisor"]["token"],
            tmp=tmp,
            notes={"seed_seconds": seeded["seconds"]},
            restarter=lambda: _restart_hub(web),
        )


def _restart_hub(*webs: HubProcess) -> list[int]:
    for web in webs:
        web.stop()
        web.start()
    return [web.proc.pid for web in webs]  # type: ignore[union-attr]


@contextlib.contextmanager
def hub_pg_shape(tmp: Path, operators: int, online: int) -> Iterator[Shape]:
    with fresh_postgres("hub_bench") as db_url, RedisServer() as redis:
        env = hub_env(db_url, redis.url, **HUB_BENCH_ENV)
        migrate(env)
        seeded = _seed(env, operators, online)
        log(f"hub_pg: seeded {operators} operators in {seeded['seconds']} s")
        with HubProcess(env, log_dir=tmp) as web1, HubProcess(env, log_dir=tmp) as web2:
            yield Shape(
                "hub_pg",
                "hub",
                [web1.proc.pid, web2.proc.pid],
                [web1.ws],
                [web2.ws],
                {"web": [web1.proc.pid, web2.proc.pid], "redis": [redis.proc.pid], "pg": "auto"},
                operator_tokens=[o["token"] for o in seeded["operators"]],
                supervisor_token=seeded["supervisor"]["token"],
                tmp=tmp,
                notes={"seed_seconds": seeded["seconds"]},
                restarter=lambda: _restart_hub(web1, web2),
            )


def settle(shape: Shape, quiet: float = 0.05, limit: float = 90.0) -> float:
    """Wait until the servers are idle (a phase that overloaded them leaves a backlog that
    would land in the next phase's figures).  Returns the seconds waited."""
    pids = [p for group in shape.cpu_pids.values() if group != "auto" for p in group]
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = cpu_by_pid(pids)
        time.sleep(0.5)
        if cpu_delta(before, cpu_by_pid(pids)) < quiet * 0.5 * max(1, len(shape.web_pids)):
            break
    return round(time.monotonic() - started, 1)


def wait_for_quiet_machine(limit: float = 20.0) -> float:
    """Other work on this machine skews every figure: wait (bounded) for a quiet moment."""
    started = time.monotonic()
    while time.monotonic() - started < limit and os.getloadavg()[0] > 1.0:
        time.sleep(2)
    return round(time.monotonic() - started, 1)


# --- one suite per server ---------------------------------------------------------------
def run_suite(shape: Shape, out: dict[str, Any]) -> None:
    """Every phase against one server, in an order that keeps each phase's figures clean:
    memory on fresh processes, the supervisor burst before a thousand conversations exist.
    A failing phase is recorded and the suite goes on."""
    out.update({"notes": shape.notes, "settle_seconds": {}, "loadavg": {}})
    hub = shape.kind == "hub"

    def phase(name: str, cfg: dict[str, Any], timeout: float = 600) -> dict[str, Any] | None:
        out["settle_seconds"][name] = settle(shape)
        out["loadavg"][name] = round(os.getloadavg()[0], 2)
        log(f"{shape.name}: {name}")
        try:
            return run_client(shape, cfg, timeout=timeout)
        except Exception as exc:
            log(f"{shape.name}: {name} FAILED: {str(exc)[-1500:]}")
            out.setdefault("errors", {})[name] = str(exc)[-3000:]
            return None

    cpu = shape.cpu_pids
    out["idle_consoles"] = phase(
        "idle_consoles",
        {
            "cmd": "idle",
            "target": shape.target(split_consoles=True),
            "side": "console",
            "sizes": PLAN["idle_sizes"],
            "rss_pids": shape.web_pids,
            "cpu_pids": cpu,
            "reconnect": True,
            "reconnect_deadline": PLAN["reconnect_deadline"],
            "idle_cpu_window": PLAN["idle_cpu_window"],
            "connect_deadline": 180,
            "reconnect_give_up": PLAN["reconnect_give_up"],
        },
    )
    shape.restart()
    cpu = shape.cpu_pids
    out["idle_customers"] = phase(
        "idle_customers",
        {
            "cmd": "idle",
            "target": shape.target(),
            "side": "customer",
            "sizes": [PLAN["idle_customers"]],
            "rss_pids": shape.web_pids,
            "cpu_pids": cpu,
            "idle_cpu_window": PLAN["idle_cpu_window"],
        },
    )
    for side in ("customer", "console"):
        out[f"handshake_{side}"] = phase(
            f"handshake_{side}",
            {
                "cmd": "handshake",
                "target": shape.target(),
                "side": side,
                "count": PLAN["handshakes"],
                "concurrency": 100,
                "cpu_pids": cpu,
            },
        )
    customers, per = PLAN["burst"]
    # Fresh customers into the supervisors' stream (hub) or one operator socket (relays).
    out["burst"] = phase(
        "burst",
        {
            "cmd": "burst",
            "target": shape.target(),
            "pairs": None,
            "customers": customers,
            "messages": per,
            "cpu_pids": cpu,
            "timeout": 150,
            "stall": 15,
        },
    )
    pairs = None
    if hub:
        count = max(PLAN["c_points"])
        paired = phase(
            "pairing",
            {
                "cmd": "pair",
                "target": shape.target(),
                "count": count,
                "operators": len(shape.operator_tokens),
                "concurrency": 10,
                "online": PLAN["burst"][0] + min(ROUTED, count),
                "routed": ROUTED,
            },
            timeout=900,
        )
        if paired is None:
            return
        pairs = paired["pairs"]
        out["pairing"] = {k: v for k, v in paired.items() if k != "pairs"}
        out["pairing"]["count"] = len(pairs)
        if paired["distinct_operators"] != len(pairs) or not pairs:
            out.setdefault("errors", {})["pairing"] = (
                f"{paired['distinct_operators']} operators for {len(pairs)} customers"
            )
            return
    out["load"] = {}
    for c in PLAN["c_points"]:
        out["load"][str(c)] = phase(
            f"closed loop C={c}",
            {
                "cmd": "load",
                "target": shape.target(),
                "pairs": pairs,
                "c": c,
                "mode": "closed",
                "duration": PLAN["duration"],
                "warmup": PLAN["warmup"],
                "cpu_pids": cpu,
            },
        )
    out["open"] = phase(
        f"open loop {PLAN['open_rate']} msg/s",
        {
            "cmd": "load",
            "target": shape.target(),
            "pairs": pairs,
            "c": PLAN["open_pairs"],
            "mode": "open",
            "rate": PLAN["open_rate"],
            "duration": PLAN["open_duration"],
            "warmup": 0.5,
            "cpu_pids": cpu,
        },
    )


def git_commit() -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    return "?"


def main() -> None:
    raise_nofile()
    started = time.monotonic()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict[str, Any] = {
        "meta": {
            "timestamp": stamp,
            "quick": QUICK,
            "commit": git_commit(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg(),
            "plan": PLAN,
        },
        "shapes": {},
    }
    # Pairs for the largest C, plus the operators the burst's fresh customers are routed to.
    # (+50 spare: routing may queue a conversation although operators are free.)
    operators = max(PLAN["c_points"]) + PLAN["burst"][0] + 50
    online = PLAN["burst"][0] + min(ROUTED, max(PLAN["c_points"]))
    results["meta"]["waited_for_quiet_machine_seconds"] = wait_for_quiet_machine()
    shapes = [
        ("bare", lambda tmp: bare_shape(tmp)),
        ("naive", lambda tmp: naive_shape(tmp)),
        ("hub", lambda tmp: hub_embedded_shape(tmp, operators, online)),
        ("hub_pg", lambda tmp: hub_pg_shape(tmp, operators, online)),
    ]
    only = {s for s in os.environ.get("BENCH_ONLY", "").split(",") if s}
    if only == {"routing"}:  # its own files: a partial run must not replace latest.md
        routing_main()
        return
    if only == {"webhooks"}:  # likewise
        webhooks_main()
        return
    if only == {"dashboard"}:  # likewise
        dashboard_main()
        return
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmpdir:
        for name, factory in shapes:
            if only and name not in only:
                continue
            tmp = Path(tmpdir) / name
            tmp.mkdir()
            shape_started = time.monotonic()
            log(f"== {name}")
            out: dict[str, Any] = {}
            results["shapes"][name] = out
            try:
                with factory(tmp) as shape:
                    run_suite(shape, out)
            except Exception as exc:
                log(f"{name} FAILED: {exc}")
                out["error"] = str(exc)[-3000:]
            if out.get("errors") or out.get("error"):
                for log_file in tmp.glob("*.log"):
                    tail = [
                        line
                        for line in log_file.read_text(errors="replace").splitlines()
                        if "WSCONNECT" not in line and "WSDISCONNECT" not in line
                    ][-40:]
                    log(f"--- {log_file.name}\n" + "\n".join(tail))
            out["wall_seconds"] = round(time.monotonic() - shape_started, 1)
        if not only or "layers" in only:
            log("== channel layers micro-benchmark")
            results["layers"] = run_layers(Path(tmpdir))
        if not only or "routing" in only:
            log("== routing: batch derivation and assignment throughput")
            results["routing"] = run_routing(Path(tmpdir))
        if not only or "knowledge_base" in only:
            log("== knowledge base: search over 10,000 replies, both databases")
            results["knowledge_base"] = run_knowledge_base()
        if not only or "webhooks" in only:
            log("== inbound webhooks: signed webhooks/s and webhook → console latency")
            results["webhooks"] = run_webhooks(Path(tmpdir))
        if not only or "dashboard" in only:
            log("== dashboard: 100,000 conversations, 1,000,000 messages on PostgreSQL")
            results["dashboard"] = run_dashboard()
    results["meta"]["wall_seconds"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if QUICK else ""
    (RESULTS / f"{stamp}{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render_markdown(results)
    (RESULTS / ("latest-quick.md" if QUICK else "latest.md")).write_text(markdown)
    print(markdown)


def run_layers(tmp: Path) -> dict[str, Any]:
    with RedisServer() as redis:
        cfg = {"redis_url": redis.url, "redis_pid": redis.proc.pid, "quick": QUICK}
        path = tmp / "layers.json"
        path.write_text(json.dumps(cfg))
        proc = subprocess.run(
            [PYTHON, "-m", "bench.layers", str(path)],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr[-3000:]}
        return json.loads(proc.stdout)


if __name__ == "__main__":
    main()
