"""Bench routing scenarios: batch derivation and assignment throughput on PostgreSQL + Redis.

Part of ``make bench``; run alone with ``python -m bench.routing`` (or
``BENCH_ONLY=routing python -m bench.run``).  Standalone, it writes
``bench/results/<timestamp>-routing.json`` and ``bench/results/latest-routing.md``.

* **derivation**: operator A holds 10,000 active conversations (seeded in two SQL
  statements); B's console and A's are connected to a daphne process.  A worker process
  (bench.routing_worker) calls ``operator_conversations_derive`` A→B, then B→A, … and the
  clock runs from just before the call until B's console holds a
  ``routing.conversations_assigned`` event for every one of them (end to end: the locks,
  the set-based writes, 101 console events, commit, doorbells through Redis, the
  consoles' sockets).  Target: under 2 s.
* **assignment**: 50 operators online (capacity 25: room for every conversation), their 50
  consoles and 1,000 web chat customers connected, split over two daphne processes; every
  customer sends a first message at the same moment.  Per conversation, arrival → its
  operator's console receiving ``routing.conversation_assigned``; conversations assigned
  per second (first send → last assignment seen); and from the database, whether anything
  waited in the queue although an operator had room, and the largest load vs capacity.

All times are ``time.monotonic_ns()`` on this machine (one clock for every process).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.client import Target, close_all, open_console, open_customer, percentiles
from bench.procstat import raise_nofile
from tests.harness import PYTHON, ROOT, HubProcess, RedisServer, fresh_postgres, hub_env, migrate

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = os.environ.get("BENCH_QUICK", "") not in {"", "0"}
HUB_BENCH_ENV = {"HUB_WS_RATE_PER_SECOND": "1000000", "HUB_WS_RATE_BURST": "1000000"}

DERIVATION_COUNT = 10_000
DERIVATION_RUNS = 3
DERIVATION_TARGET_SECONDS = 2.0
ASSIGN_CONVERSATIONS = 1_000
ASSIGN_OPERATORS = 50
ASSIGN_CAPACITY = 25
ASSIGN_WAIT_SECONDS = 60.0


def log(msg: str) -> None:
    print(f"[bench routing {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _worker(env: dict[str, str], *args: str, timeout: float = 600) -> dict[str, Any]:
    proc = subprocess.run(
        [PYTHON, "-m", "bench.routing_worker", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"routing worker {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


@contextlib.contextmanager
def _hub(tmp: Path, processes: int):
    """A fresh database, a private Redis and ``processes`` daphne processes on them."""
    with fresh_postgres("hub_bench") as db_url, RedisServer() as redis:
        env = hub_env(db_url, redis.url, **HUB_BENCH_ENV)
        migrate(env)
        webs = [HubProcess(env, log_dir=tmp) for _ in range(processes)]
        try:
            for web in webs:
                web.start()
            yield env, db_url, webs
        finally:
            for web in webs:
                web.stop()


# --- (a) batch derivation -----------------------------------------------------------------
class ConsoleIds:
    """One console's reader: per event name, how many conversation ids it has seen since
    ``expect`` and when it reached the number expected."""

    NAMES = ("routing.conversations_assigned", "routing.conversations_unassigned")

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen = dict.fromkeys(self.NAMES, 0)
        self.want: dict[str, int] = {}
        self.reached_ns: dict[str, int] = {}
        self.reached = {name: asyncio.Event() for name in self.NAMES}
        self.task = asyncio.ensure_future(self._run())

    def expect(self, name: str, want: int) -> None:
        self.seen[name], self.want[name] = 0, want
        self.reached_ns.pop(name, None)
        self.reached[name].clear()

    async def _run(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                if '"routing.conversations_' not in raw:
                    continue
                frame = json.loads(raw)
                name = frame.get("name")
                if name not in self.seen:
                    continue
                data = frame.get("data", {})
                self.seen[name] += len(data.get("conversation_ids") or data["conversations"])
                want = self.want.get(name)
                if want and self.seen[name] >= want and name not in self.reached_ns:
                    self.reached_ns[name] = time.monotonic_ns()
                    self.reached[name].set()


async def _derivation_runs(
    web: HubProcess, env: dict[str, str], seeded: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Derive back and forth until DERIVATION_RUNS succeed (or as many fail); a failed
    attempt (the service raised) is recorded and retried."""
    target = Target(
        kind="hub",
        customer_bases=[web.ws],
        console_bases=[web.ws],
        operator_tokens=[seeded["a"]["token"], seeded["b"]["token"]],
    )
    ws_a, _ = await open_console(target, 0, operator=0)
    ws_b, _ = await open_console(target, 1, operator=1)
    consoles = {seeded["a"]["user_id"]: ConsoleIds(ws_a), seeded["b"]["user_id"]: ConsoleIds(ws_b)}
    assigned, unassigned = ConsoleIds.NAMES
    worker = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "bench.routing_worker",
        "derive",
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    runs: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        ready = await asyncio.wait_for(worker.stdout.readline(), 60)
        if ready.strip() != b"ready":
            raise RuntimeError(f"derive worker said {ready!r}")
        source, dest = seeded["a"]["user_id"], seeded["b"]["user_id"]
        while len(runs) < DERIVATION_RUNS and len(failures) < DERIVATION_RUNS:
            run = len(runs)
            to_console, from_console = consoles[dest], consoles[source]
            to_console.expect(assigned, DERIVATION_COUNT)
            from_console.expect(unassigned, DERIVATION_COUNT)
            worker.stdin.write(f"{source} {dest}\n".encode())
            await worker.stdin.drain()
            reply = json.loads(await asyncio.wait_for(worker.stdout.readline(), 120))
            if "error" in reply:  # all or nothing: nothing moved, try again
                failures.append(reply["error"])
                log(f"derivation {run} failed: {reply['error'][:200]}")
                await asyncio.sleep(1.0)
                continue
            await asyncio.wait_for(
                asyncio.gather(
                    to_console.reached[assigned].wait(), from_console.reached[unassigned].wait()
                ),
                60,
            )
            started = reply["started_ns"]
            runs.append(
                {
                    "run": run,
                    "count": reply["count"],
                    "service_seconds": round((reply["finished_ns"] - started) / 1e9, 3),
                    "target_console_seconds": round(
                        (to_console.reached_ns[assigned] - started) / 1e9, 3
                    ),
                    "source_console_seconds": round(
                        (from_console.reached_ns[unassigned] - started) / 1e9, 3
                    ),
                }
            )
            log(f"derivation {run}: {runs[-1]}")
            source, dest = dest, source
            await asyncio.sleep(1.0)  # let the server settle between runs
    finally:
        if worker.returncode is None:
            worker.stdin.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.wait(), 10)
            if worker.returncode is None:
                worker.kill()
        for reader in consoles.values():
            reader.task.cancel()
        await close_all([ws_a, ws_b])
    return runs, failures


def derivation_bench(tmp: Path) -> dict[str, Any]:
    with _hub(tmp, 1) as (env, _, webs):
        seeded = _worker(env, "seed-derivation", str(DERIVATION_COUNT))
        log(f"derivation: seeded {DERIVATION_COUNT} conversations in {seeded['seconds']} s")
        runs, failures = asyncio.run(_derivation_runs(webs[0], env, seeded))
    if not runs:
        raise RuntimeError(f"every derivation failed: {failures}")
    end_to_end = [r["target_console_seconds"] for r in runs]
    return {
        "count": DERIVATION_COUNT,
        "seed_seconds": seeded["seconds"],
        "runs": runs,
        "failed_attempts": failures,
        "service_seconds_median": statistics.median(r["service_seconds"] for r in runs),
        "target_console_seconds_median": statistics.median(end_to_end),
        "target_console_seconds_max": max(end_to_end),
        "source_console_seconds_median": statistics.median(
            r["source_console_seconds"] for r in runs
        ),
        "target_seconds": DERIVATION_TARGET_SECONDS,
    }


# --- (b) assignment throughput --------------------------------------------------------------
async def _assignment_run(webs: list[HubProcess], seeded: dict[str, Any]) -> dict[str, Any]:
    bases = [web.ws for web in webs]
    target = Target(
        kind="hub",
        customer_bases=bases,
        console_bases=bases,
        operator_tokens=[o["token"] for o in seeded["operators"]],
    )
    assigned_at: dict[str, int] = {}
    assigned_to: dict[str, int] = {}
    everything = asyncio.Event()
    readers: list[asyncio.Task] = []

    async def console(op: int) -> Any:
        ws, _ = await open_console(target, op, operator=op)

        async def read() -> None:
            with contextlib.suppress(Exception):
                async for raw in ws:
                    if '"routing.conversation_assigned"' not in raw:
                        continue
                    frame = json.loads(raw)
                    if frame.get("name") == "routing.conversation_assigned":
                        assigned_at.setdefault(frame["conversation_id"], time.monotonic_ns())
                        assigned_to[frame["conversation_id"]] = op
                        if len(assigned_at) >= ASSIGN_CONVERSATIONS:
                            everything.set()

        readers.append(asyncio.ensure_future(read()))
        return ws

    consoles = await asyncio.gather(*(console(op) for op in range(ASSIGN_OPERATORS)))
    sem = asyncio.Semaphore(100)

    async def customer(i: int) -> Any:
        async with sem:
            ws, _ = await open_customer(target, i)
            return ws

    customers = await asyncio.gather(*(customer(i) for i in range(ASSIGN_CONVERSATIONS)))
    log(f"assignment: {len(consoles)} consoles and {len(customers)} customers connected")
    await asyncio.sleep(1.0)
    sent_at: dict[int, int] = {}
    conversation_of: dict[int, str] = {}

    async def ack(i: int, ws: Any) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                if '"ack"' in raw:
                    frame = json.loads(raw)
                    if frame.get("type") == "ack":
                        conversation_of[i] = frame["message"]["conversation_id"]
                        return

    ack_tasks = [asyncio.ensure_future(ack(i, ws)) for i, ws in enumerate(customers)]
    frames = [
        json.dumps({"type": "message.send", "client_id": "first", "text": f"hello {i}"})
        for i in range(ASSIGN_CONVERSATIONS)
    ]
    started = time.monotonic_ns()
    for i, ws in enumerate(customers):  # "at once": one loop, no awaits between sends
        sent_at[i] = time.monotonic_ns()
        await ws.send(frames[i])
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everything.wait(), ASSIGN_WAIT_SECONDS)
    await asyncio.wait(ack_tasks, timeout=10)
    for task in readers + ack_tasks:
        task.cancel()
    await close_all(list(consoles) + list(customers))
    latencies = [
        assigned_at[conversation_of[i]] - sent_at[i]
        for i in sent_at
        if i in conversation_of and conversation_of[i] in assigned_at
    ]
    last = max(assigned_at.values()) if assigned_at else started
    seconds = (last - started) / 1e9
    return {
        "acked": len(conversation_of),
        "assigned_seen": len(assigned_at),
        "operators_used": len(set(assigned_to.values())),
        "seconds": round(seconds, 3),
        "assigned_per_second": round(len(assigned_at) / seconds, 1) if seconds > 0 else None,
        "latency_ms": percentiles(latencies),
    }


def _assignment_db_checks(db_url: str) -> dict[str, Any]:
    with psycopg.connect(db_url, autocommit=True) as db:
        loads = db.execute(
            "SELECT max(n), max(n - capacity) FROM (SELECT count(*) AS n, s.capacity "
            "FROM chat_conversation c JOIN routing_operatorstate s ON s.user_id = c.operator_id "
            "WHERE c.status = 'assigned' GROUP BY c.operator_id, s.capacity) t"
        ).fetchone()
        queued = db.execute(
            "SELECT count(*) FROM chat_conversation WHERE status = 'queued'"
        ).fetchone()[0]
        room = db.execute(
            "SELECT COALESCE(sum(s.capacity - COALESCE(l.n, 0)), 0) FROM routing_operatorstate s "
            "LEFT JOIN (SELECT operator_id, count(*) AS n FROM chat_conversation "
            "WHERE status = 'assigned' GROUP BY operator_id) l ON l.operator_id = s.user_id "
            "WHERE s.presence = 'online'"
        ).fetchone()[0]
        server = db.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY "
            "extract(epoch FROM a.created_at - c.created_at)), "
            "extract(epoch FROM max(a.created_at) - min(c.created_at)) "
            "FROM routing_assignment a JOIN chat_conversation c ON c.id = a.conversation_id "
            "WHERE a.kind = 'routed'"
        ).fetchone()
    return {
        "max_load": loads[0],
        "most_over_capacity": loads[1],
        "queued_at_end": queued,
        "free_slots_at_end": int(room),
        "queued_while_room": min(queued, int(room)),
        "server_routing_ms": {
            "p50": round(server[0][0] * 1000, 2) if server[0] else None,
            "p99": round(server[0][1] * 1000, 2) if server[0] else None,
        },
        "server_first_to_last_seconds": round(float(server[1]), 3) if server[1] else None,
    }


def assignment_bench(tmp: Path) -> dict[str, Any]:
    with _hub(tmp, 2) as (env, db_url, webs):
        seeded = _worker(env, "seed-operators", str(ASSIGN_OPERATORS), str(ASSIGN_CAPACITY))
        log(f"assignment: seeded {ASSIGN_OPERATORS} operators in {seeded['seconds']} s")
        result = asyncio.run(_assignment_run(webs, seeded))
        result.update(_assignment_db_checks(db_url))
    result.update(
        {
            "conversations": ASSIGN_CONVERSATIONS,
            "operators": ASSIGN_OPERATORS,
            "capacity": ASSIGN_CAPACITY,
            "processes": 2,
        }
    )
    return result


def run_routing(tmp: Path) -> dict[str, Any]:
    """Both scenarios; a failing one is recorded and the other still runs."""
    out: dict[str, Any] = {}
    for name, bench in (("derivation", derivation_bench), ("assignment", assignment_bench)):
        sub = tmp / f"routing-{name}"
        sub.mkdir(parents=True, exist_ok=True)
        log(f"== routing {name}")
        started = time.monotonic()
        try:
            out[name] = bench(sub)
        except Exception as exc:
            log(f"routing {name} FAILED: {exc}")
            out[name] = {"error": str(exc)[-3000:]}
            for log_file in sub.glob("*.log"):
                log(f"--- {log_file.name}\n{log_file.read_text(errors='replace')[-3000:]}")
        out[name]["wall_seconds"] = round(time.monotonic() - started, 1)
    return out


def main() -> None:
    """Run the routing scenarios alone; results beside the full run's, never over them."""
    from bench.report import render_routing_markdown

    raise_nofile()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hub-bench-routing-") as tmpdir:
        routing = run_routing(Path(tmpdir))
    meta = {
        "timestamp": stamp,
        "commit": _git_commit(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": load_at_start,
        "loadavg_at_end": os.getloadavg(),
    }
    results = {"meta": meta, "routing": routing}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stamp}-routing.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render_routing_markdown(results)
    (RESULTS / "latest-routing.md").write_text(markdown)
    print(markdown)


def _git_commit() -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    return "?"


if __name__ == "__main__":
    main()
