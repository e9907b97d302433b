"""Bench load generator: drives a server under test over real WebSockets; prints JSON.

Run as its own process (``python -m bench.client CONFIG.json``) so that the client never
shares an interpreter, a GIL or an event loop with the servers it measures.  One client for
every server: the hub speaks ``/ws/webchat/`` + ``/ws/console/``; the baselines
(bench.bare_relay, bench.naive_relay) speak ``/customer/<room>`` + ``/operator/<room>`` with
the same frames, so the same code sends, receives and times all of them.

A customer's message text is ``<tag>|<pair>|<seq>|<t_ns>``: the operator side reads the
pair and the send time (``time.monotonic_ns`` of this process, so the same clock) from the
event it receives.  Commands (``cmd`` in the config): ``pair``, ``load``, ``handshake``,
``idle``, ``burst``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.procstat import CpuMeter, raise_nofile, rss_bytes

MESSAGE_CREATED = '"chat.message_created"'


def now_ns() -> int:
    return time.monotonic_ns()


def percentiles(samples_ns: list[int]) -> dict[str, float | None]:
    if not samples_ns:
        return {"p50": None, "p90": None, "p99": None, "max": None, "n": 0}
    data = sorted(samples_ns)

    def pick(q: float) -> float:
        return round(data[min(len(data) - 1, int(q * len(data)))] / 1e6, 3)

    return {
        "p50": pick(0.50),
        "p90": pick(0.90),
        "p99": pick(0.99),
        "max": round(data[-1] / 1e6, 3),
        "n": len(data),
    }


# --- the two protocols -------------------------------------------------------------------
@dataclass
class Target:
    """Where customers and consoles connect.  ``kind`` is ``hub`` or ``relay``."""

    kind: str
    customer_bases: list[str]
    console_bases: list[str]
    operator_tokens: list[str] = field(default_factory=list)
    supervisor_token: str | None = None

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Target:
        return cls(
            kind=spec["kind"],
            customer_bases=spec["customer_bases"],
            console_bases=spec["console_bases"],
            operator_tokens=spec.get("operator_tokens", []),
            supervisor_token=spec.get("supervisor_token"),
        )

    def customer_url(self, slot: int, room: str, visitor_token: str | None = None) -> str:
        base = self.customer_bases[slot % len(self.customer_bases)]
        if self.kind == "relay":
            return f"{base}/customer/{room}"
        return f"{base}/ws/webchat/" + (f"?token={visitor_token}" if visitor_token else "")

    def console_url(self, slot: int, room: str, last_event_id: int | None = None) -> str:
        base = self.console_bases[slot % len(self.console_bases)]
        if self.kind == "relay":
            return f"{base}/operator/{room}"
        return f"{base}/ws/console/" + (
            f"?last_event_id={last_event_id}" if last_event_id is not None else ""
        )

    def console_headers(self, operator: int | None) -> dict[str, str] | None:
        if self.kind == "relay":
            return None
        token = self.supervisor_token if operator is None else self.operator_tokens[operator]
        return {"Authorization": f"Bearer {token}"}


async def ws_connect(url: str, headers: dict[str, str] | None = None) -> ClientConnection:
    return await connect(
        url,
        additional_headers=headers,
        compression=None,  # daphne does not negotiate permessage-deflate; keep all equal
        ping_interval=None,
        open_timeout=60,
        close_timeout=5,
        max_size=2**24,
        proxy=None,
    )


async def recv_json(ws: ClientConnection, wait: float = 30) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), wait))


async def open_console(
    target: Target,
    slot: int,
    *,
    room: str = "",
    operator: int | None = None,
    last_event_id: int | None = None,
    until: str | None = None,
) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect a console and read up to its ``until`` frame (hub: snapshot or resumed)."""
    ws = await ws_connect(
        target.console_url(slot, room, last_event_id), target.console_headers(operator)
    )
    first = await recv_json(ws)
    if first.get("type") == "error" or (target.kind == "hub" and first.get("type") != "hello"):
        raise RuntimeError(f"console refused: {first}")
    if target.kind == "relay":
        return ws, first
    want = until or ("resumed" if last_event_id is not None else "snapshot")
    frame = first
    while frame.get("type") != want:
        frame = await recv_json(ws)
        if frame.get("type") in {"resync"} and want == "resumed":
            raise RuntimeError(f"console resync instead of resume: {frame}")
    return ws, frame


async def open_customer(
    target: Target, slot: int, *, room: str = "", visitor_token: str | None = None
) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await ws_connect(target.customer_url(slot, room, visitor_token))
    first = await recv_json(ws)
    if first.get("type") != "session":
        raise RuntimeError(f"customer got {first}")
    return ws, first


async def gather_limited(factories: list, limit: int) -> list:
    sem = asyncio.Semaphore(limit)

    async def run(factory):
        async with sem:
            return await factory()

    return await asyncio.gather(*(run(f) for f in factories))


async def gather_bounded(factories: list, limit: int, deadline: float) -> tuple[list, list]:
    """Like gather_limited, but gives up after ``deadline`` seconds: returns the results
    that came in time and the errors (timeouts included) of the rest."""
    sem = asyncio.Semaphore(limit)

    async def run(factory):
        async with sem:
            return await factory()

    tasks = [asyncio.ensure_future(run(f)) for f in factories]
    _, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    ok, errors = [], []
    for task in tasks:
        if task in pending:
            errors.append("TimeoutError: not connected before the deadline")
        elif task.exception() is not None:
            exc = task.exception()
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        else:
            ok.append(task.result())
    return ok, errors


async def close_all(sockets: list[ClientConnection]) -> None:
    async def close(ws: ClientConnection) -> None:
        try:
            await asyncio.wait_for(ws.close(), 5)
        except Exception:  # a socket the server already dropped
            pass

    await gather_limited([lambda ws=ws: close(ws) for ws in sockets], 500)


class Drain:
    """Reads and discards what the server sends a customer (acks, echoes, history),
    counting error frames."""

    def __init__(self) -> None:
        self.errors = 0
        self.error_sample: str | None = None
        self.tasks: list[asyncio.Task] = []

    def attach(self, ws: ClientConnection) -> None:
        self.tasks.append(asyncio.ensure_future(self._run(ws)))

    async def _run(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                if '"type":"error"' in raw or '"type": "error"' in raw:
                    self.errors += 1
                    self.error_sample = self.error_sample or raw[:300]
        except Exception:
            pass

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()


def message_text(frame: dict[str, Any]) -> str | None:
    if frame.get("type") != "event" or frame.get("name") != "chat.message_created":
        return None
    message = frame.get("data", {}).get("message", {})
    if message.get("direction", "in") != "in":
        return None
    return message.get("text")


# --- pair: one customer per operator, verified by the routing events -------------------------
async def cmd_pair(cfg: dict[str, Any]) -> dict[str, Any]:
    """Give ``count`` customers one operator each (capacity 1), and know who is whose.

    The first ``routed`` customers are routed the ordinary way, to operators already online
    (timed: ``routed_per_second``).  The rest would make routing slow to set up (it reads
    every online operator), so they queue, and the offline operators come online one by one
    from their consoles: each pulls the oldest queued conversation.  Either way a pair is
    only taken once its operator's console got the ``routing.conversation_assigned`` event.
    """
    target = Target.from_json(cfg["target"])
    count = cfg["count"]
    operators = cfg.get("operators", count)
    online = cfg.get("online", operators)
    routed = min(count, cfg.get("routed", count))
    started = time.monotonic()
    assigned: dict[str, int] = {}  # conversation id -> operator index
    assigned_changed = asyncio.Event()
    sockets: dict[int, ClientConnection] = {}

    async def console(op: int) -> ClientConnection:
        ws, _ = await open_console(target, op, operator=op)
        sockets[op] = ws

        async def reader() -> None:
            try:
                async for raw in ws:
                    if '"routing.conversation_assigned"' in raw:
                        frame = json.loads(raw)
                        if frame.get("name") == "routing.conversation_assigned":
                            assigned[frame["conversation_id"]] = op
                            assigned_changed.set()
            except Exception:
                pass

        readers.append(asyncio.ensure_future(reader()))
        return ws

    readers: list[asyncio.Task] = []
    consoles = await gather_limited([lambda op=op: console(op) for op in range(operators)], 50)
    customers: list[ClientConnection] = []
    found: dict[int, dict[str, Any]] = {}

    async def wait_assigned(conversation_id: str, wait: float) -> int | None:
        deadline = time.monotonic() + wait
        while conversation_id not in assigned and time.monotonic() < deadline:
            assigned_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(assigned_changed.wait(), 0.5)
        return assigned.get(conversation_id)

    async def customer(i: int, wait_for_operator: bool) -> None:
        ws, session = await open_customer(target, i)
        customers.append(ws)
        await ws.send(
            json.dumps({"type": "message.send", "client_id": f"pair-{i}", "text": f"pair|{i}|0|0"})
        )
        frame = await recv_json(ws)
        while frame.get("type") != "ack":
            frame = await recv_json(ws)
        conversation_id = frame["message"]["conversation_id"]
        found[i] = {
            "index": i,
            "visitor_token": session["token"],
            "conversation_id": conversation_id,
        }
        if wait_for_operator and await wait_assigned(conversation_id, 10) is not None:
            routed_done.append(time.monotonic())

    limit = cfg.get("concurrency", 10)
    routed_done: list[float] = []
    routed_started = time.monotonic()
    await gather_limited([lambda i=i: customer(i, True) for i in range(routed)], limit)
    routed_seconds = time.monotonic() - routed_started
    # Routed the ordinary way, yet queued although operators were free (routing gave up).
    queued_while_free = [
        i for i in range(routed) if i in found and found[i]["conversation_id"] not in assigned
    ]
    queued_started = time.monotonic()
    if count > routed or queued_while_free:
        await gather_limited([lambda i=i: customer(i, False) for i in range(routed, count)], 20)

        async def come_online(op: int) -> None:
            await sockets[op].send('{"type":"presence.set","presence":"online"}')

        await gather_limited([lambda op=op: come_online(op) for op in range(online, operators)], 20)
        deadline = time.monotonic() + 60
        for i in range(count):
            if i in found:
                await wait_assigned(
                    found[i]["conversation_id"], max(0.0, deadline - time.monotonic())
                )
    queued_seconds = time.monotonic() - queued_started
    drain = Drain()
    for ws in customers:
        drain.attach(ws)
    pairs = []
    for i in range(count):
        spec = found.get(i)
        if spec and spec["conversation_id"] in assigned:
            pairs.append(
                {**spec, "operator": assigned[spec["conversation_id"]], "assignment_seen": True}
            )
    distinct = len({p["operator"] for p in pairs})
    drain.cancel()
    await close_all(consoles + customers)
    return {
        "pairs": pairs,
        "distinct_operators": distinct,
        "assignment_events_seen": len(pairs),
        "routed": routed,
        "routed_but_queued_while_operators_free": len(queued_while_free),
        "routed_seconds": round(routed_seconds, 2),
        "routed_per_second": round(len(routed_done) / (max(routed_done) - routed_started), 1)
        if routed_done
        else None,
        "operators_online_while_routing": online,
        "queued_then_pulled": count - routed,
        "queued_seconds": round(queued_seconds, 2),
        "seconds": round(time.monotonic() - started, 2),
    }


# --- load: closed loop (one message in flight per pair) or open loop (fixed rate) ----------
class Pair:
    __slots__ = ("customer", "index", "seq", "waiter")

    def __init__(self, index: int, customer: ClientConnection) -> None:
        self.index = index
        self.customer = customer
        self.seq = 0
        self.waiter: asyncio.Future | None = None


async def connect_pairs(cfg: dict[str, Any], target: Target, count: int, tag: str):
    """Consoles first, then their customers; returns pairs, consoles, drain, deliveries."""
    pair_specs = cfg.get("pairs") or [{"index": i, "operator": i} for i in range(count)]
    pair_specs = pair_specs[:count]  # fewer when pairing fell short: the result says so
    stats = {"window": (0, 0), "latencies": [], "delivered": 0, "outside": 0, "late": 0}
    pairs: dict[int, Pair] = {}

    def on_text(text: str) -> None:
        parts = text.split("|")
        if len(parts) != 4 or parts[0] != tag:
            return
        t_recv = now_ns()
        idx, seq, t_sent = int(parts[1]), int(parts[2]), int(parts[3])
        lo, hi = stats["window"]
        if lo <= t_recv <= hi:
            stats["delivered"] += 1
            stats["latencies"].append(t_recv - t_sent)
        else:
            stats["outside"] += 1
        pair = pairs.get(idx)
        if pair and pair.seq == seq and pair.waiter and not pair.waiter.done():
            pair.waiter.set_result(None)

    async def console(spec: dict[str, Any]) -> ClientConnection:
        ws, _ = await open_console(
            target, spec["index"], room=str(spec["index"]), operator=spec.get("operator")
        )

        async def reader() -> None:
            try:
                async for raw in ws:
                    if MESSAGE_CREATED in raw:
                        text = message_text(json.loads(raw))
                        if text:
                            on_text(text)
            except Exception:
                pass

        readers.append(asyncio.ensure_future(reader()))
        return ws

    readers: list[asyncio.Task] = []
    consoles = await gather_limited([lambda s=s: console(s) for s in pair_specs], 50)
    stats["readers"] = readers  # keep the reader tasks referenced
    drain = Drain()

    async def customer(spec: dict[str, Any]) -> None:
        ws, _ = await open_customer(
            target, spec["index"], room=str(spec["index"]), visitor_token=spec.get("visitor_token")
        )
        drain.attach(ws)
        pairs[spec["index"]] = Pair(spec["index"], ws)

    await gather_limited([lambda s=s: customer(s) for s in pair_specs], 50)
    return pairs, consoles, drain, stats


async def cmd_load(cfg: dict[str, Any]) -> dict[str, Any]:
    target = Target.from_json(cfg["target"])
    count, duration = cfg["c"], cfg["duration"]
    warmup = cfg.get("warmup", 1.0)
    mode = cfg.get("mode", "closed")
    tag = "b" + uuid.uuid4().hex[:6]
    setup_started = time.monotonic()
    pairs, consoles, drain, stats = await connect_pairs(cfg, target, count, tag)
    setup_seconds = time.monotonic() - setup_started
    meter = CpuMeter(cfg.get("cpu_pids", {}))
    loop = asyncio.get_running_loop()
    t_start = now_ns()
    t_window = t_start + int(warmup * 1e9)
    t_end = t_window + int(duration * 1e9)
    # Open loop: stragglers delivered during the drain still count (as latency).
    drain_s = cfg.get("drain", 5.0)
    stats["window"] = (t_window, t_end + (int(drain_s * 1e9) if mode == "open" else 0))
    sent = {"n": 0, "timeouts": 0, "in_window": 0}
    timeout = cfg.get("timeout", 10.0)

    async def send(pair: Pair, stamp: int) -> None:
        pair.seq += 1
        text = f"{tag}|{pair.index}|{pair.seq}|{stamp}"
        await pair.customer.send(
            f'{{"type":"message.send","client_id":"{tag}-{pair.seq}","text":"{text}"}}'
        )
        sent["n"] += 1
        if t_window <= stamp <= t_end:
            sent["in_window"] += 1

    async def closed_loop(pair: Pair) -> None:
        while now_ns() < t_end:
            pair.waiter = loop.create_future()
            await send(pair, now_ns())
            try:
                await asyncio.wait_for(pair.waiter, timeout)
            except TimeoutError:
                sent["timeouts"] += 1

    rate = cfg.get("rate", 0)

    async def open_loop(pair: Pair, offset_ns: int, interval_ns: int) -> None:
        k = 0
        while True:
            scheduled = t_window + offset_ns + k * interval_ns
            if scheduled >= t_end:
                return
            delay = (scheduled - now_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            # Latency counts from the scheduled time: a late send is the server's delay too.
            await send(pair, scheduled)
            k += 1

    meter_started = False

    async def start_meter() -> None:
        nonlocal meter_started
        await asyncio.sleep(max(0.0, (t_window - now_ns()) / 1e9))
        meter.start()
        meter_started = True

    meter_task = asyncio.ensure_future(start_meter())
    ordered = sorted(pairs.values(), key=lambda p: p.index)
    if mode == "closed":
        runners = [closed_loop(p) for p in ordered]
    else:
        interval = int(len(ordered) * 1e9 / rate)
        runners = [open_loop(p, int(i * 1e9 / rate), interval) for i, p in enumerate(ordered)]
    await asyncio.gather(*runners)
    await meter_task
    # The window closes at t_end; sample CPU then, not after the drain.
    await asyncio.sleep(max(0.0, (t_end - now_ns()) / 1e9))
    cpu = meter.stop() if meter_started else {}
    # Open loop: wait for stragglers (they count as latency, not as throughput).
    drain_deadline = time.monotonic() + drain_s
    if mode == "open":
        # A counter with a deadline, not an event: polling is simplest.
        while time.monotonic() < drain_deadline and stats["delivered"] < sent["in_window"]:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    window_s = duration
    result = {
        "mode": mode,
        "c": count,
        "pairs_used": len(pairs),
        "duration": duration,
        "sent": sent["n"],
        "sent_in_window": sent["in_window"],
        "delivered": stats["delivered"],
        "throughput": round(stats["delivered"] / window_s, 1) if mode == "closed" else None,
        "offered_rate": rate or None,
        "lost": max(0, sent["in_window"] - stats["delivered"]) if mode == "open" else None,
        "timeouts": sent["timeouts"],
        "errors": drain.errors,
        "error_sample": drain.error_sample,
        "latency_ms": percentiles(stats["latencies"]),
        "cpu": cpu,
        "setup_seconds": round(setup_seconds, 2),
    }
    if mode == "open":
        result["achieved_rate"] = round(stats["delivered"] / duration, 1)
    drain.cancel()
    await close_all(consoles + [p.customer for p in pairs.values()])
    return result


# --- handshake: connect + first frame --------------------------------------------------------
async def cmd_handshake(cfg: dict[str, Any]) -> dict[str, Any]:
    target = Target.from_json(cfg["target"])
    count, limit, side = cfg["count"], cfg.get("concurrency", 100), cfg["side"]
    sockets: list[ClientConnection] = []
    times: list[int] = []
    failures = 0
    meter = CpuMeter(cfg.get("cpu_pids", {}))

    async def one(i: int) -> None:
        nonlocal failures
        t0 = now_ns()
        try:
            if side == "console":
                ws = await ws_connect(
                    target.console_url(i, f"hs{i}"),
                    target.console_headers(i % max(1, len(target.operator_tokens)))
                    if target.kind == "hub"
                    else None,
                )
            else:
                ws = await ws_connect(target.customer_url(i, f"hs{i}"))
            await ws.recv()
        except Exception:
            failures += 1
            return
        times.append(now_ns() - t0)
        sockets.append(ws)

    meter.start()
    started = time.monotonic()
    _, errors = await gather_bounded(
        [lambda i=i: one(i) for i in range(count)], limit, cfg.get("deadline", 120)
    )
    failures += sum(1 for e in errors if e.startswith("TimeoutError"))
    elapsed = time.monotonic() - started
    cpu = meter.stop()
    await close_all(sockets)
    return {
        "side": side,
        "count": count,
        "concurrency": limit,
        "ok": len(times),
        "failures": failures,
        "seconds": round(elapsed, 3),
        "per_second": round(len(times) / elapsed, 1),
        "latency_ms": percentiles(times),
        "cpu": cpu,
    }


# --- idle: RSS per idle connection, idle CPU, then everyone reconnects at once ----------------
async def cmd_idle(cfg: dict[str, Any]) -> dict[str, Any]:
    target = Target.from_json(cfg["target"])
    side = cfg.get("side", "console")
    server_pids = cfg["rss_pids"]
    n_ops = max(1, len(target.operator_tokens))
    out: dict[str, Any] = {"side": side, "sizes": {}}

    async def open_one(i: int, last: int | None = None) -> tuple[ClientConnection, dict]:
        if side == "console":
            return await open_console(
                target,
                i,
                room=f"idle{i}",
                operator=(i % n_ops) if target.kind == "hub" else None,
                last_event_id=last,
            )
        return await open_customer(target, i, room=f"idle{i}")

    # Warm up (imports, first queries, connection pools) before the baseline.
    warm = await gather_limited([lambda i=i: open_one(i) for i in range(20)], 20)
    await close_all([ws for ws, _ in warm])
    await asyncio.sleep(2)
    baseline = rss_bytes(server_pids)
    out["baseline_rss_mb"] = round(baseline / 2**20, 1)
    sockets: list[tuple[ClientConnection, dict]] = []
    # A ramp: the sockets of one size stay open while the next size's are added.
    sockets: list[tuple[ClientConnection, dict]] = []
    for size in cfg["sizes"]:
        started = time.monotonic()
        more, errors = await gather_bounded(
            [lambda i=i: open_one(i) for i in range(len(sockets), size)],
            cfg.get("concurrency", 200),
            cfg.get("connect_deadline", 180),
        )
        sockets += more
        connect_s = time.monotonic() - started
        await asyncio.sleep(cfg.get("settle", 3))
        rss = rss_bytes(server_pids)
        meter = CpuMeter(
            {
                "server": cfg.get("cpu_pids", {}).get("web", server_pids),
                **{k: v for k, v in cfg.get("cpu_pids", {}).items() if k != "web"},
            }
        )
        meter.start()
        await asyncio.sleep(cfg.get("idle_cpu_window", 5))
        idle_cpu = meter.stop()
        out["sizes"][str(size)] = {
            "connected": len(sockets),
            "connect_failures": len(errors),
            "connect_failure_sample": errors[:3],
            "connect_seconds": round(connect_s, 2),
            "rss_mb": round(rss / 2**20, 1),
            "kb_per_connection": round((rss - baseline) / max(1, len(sockets)) / 1024, 1),
            "idle_cpu_seconds_per_second": {
                k: round(v / cfg.get("idle_cpu_window", 5), 3) for k, v in idle_cpu.items()
            },
        }
    if not cfg.get("reconnect"):
        await close_all([ws for ws, _ in sockets])
    if not cfg.get("reconnect"):
        return out

    # Reconnect storm: everybody drops, then comes back at the same moment with the last
    # event id it saw.
    lasts = [frame.get("last_event_id") for _, frame in sockets]
    await close_all([ws for ws, _ in sockets])
    await asyncio.sleep(cfg.get("reconnect_pause", 3))
    size = len(lasts)
    deadline = cfg.get("reconnect_deadline", 15.0)
    done_at: list[float] = []
    failures: list[str] = []
    replayed = 0
    back: list[ClientConnection] = []
    started = time.monotonic()

    give_up = cfg.get("reconnect_give_up", 30)
    attempts = [0]
    retried = set()

    async def again(i: int) -> None:
        """One console coming back, retrying with jittered backoff as the console page
        does, until it is resumed or the client gives up."""
        nonlocal replayed
        last = lasts[i] if (side == "console" and target.kind == "hub") else None
        delay = 0.25
        while True:
            attempts[0] += 1
            try:
                ws, frame = await open_one(i, last)
                break
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}"[:200])
                retried.add(i)
                if time.monotonic() - started + delay > give_up:
                    return
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 2.0)
        done_at.append(time.monotonic() - started)
        replayed += frame.get("replayed", 0) or 0
        back.append(ws)

    meter = CpuMeter({"server": server_pids})
    meter.start()
    tasks = [asyncio.ensure_future(again(i)) for i in range(size)]
    _, pending = await asyncio.wait(tasks, timeout=give_up + 5)
    for task in pending:
        task.cancel()
        failures.append("TimeoutError: not resumed before the client gave up")
    cpu = meter.stop()
    done_at.sort()
    out["reconnect"] = {
        "count": size,
        "resumed": len(done_at),
        "resumed_within_deadline": sum(1 for t in done_at if t <= deadline),
        "deadline_seconds": deadline,
        "all_seconds": round(done_at[-1], 2) if done_at else None,
        "p50_seconds": round(done_at[len(done_at) // 2], 2) if done_at else None,
        "replayed_events": replayed,
        "attempts": attempts[0],
        "sockets_that_retried": len(retried),
        "failures": len(failures),
        "failure_sample": sorted(set(failures))[:3],
        "server_cpu_seconds": cpu.get("server"),
        "frame": "resumed" if target.kind == "hub" and side == "console" else "hello",
    }
    await close_all(back)
    return out


# --- burst: many customers at full speed into one console --------------------------------
async def cmd_burst(cfg: dict[str, Any]) -> dict[str, Any]:
    target = Target.from_json(cfg["target"])
    n_customers, per_customer = cfg["customers"], cfg["messages"]
    expected = n_customers * per_customer
    tag = "x" + uuid.uuid4().hex[:6]
    frames: list[dict[str, Any]] = []
    got = asyncio.Event()
    seen_keys: list[tuple[int, int]] = []
    arrivals: list[float] = []

    ws_console, first = await open_console(target, 0, room="burst", operator=None)

    async def reader() -> None:
        try:
            async for raw in ws_console:
                frame = json.loads(raw)
                if frame.get("type") != "event":
                    continue
                frames.append(frame)
                text = message_text(frame)
                if text and text.startswith(tag + "|"):
                    _, idx, seq, _ = text.split("|")
                    seen_keys.append((int(idx), int(seq)))
                    arrivals.append(time.monotonic())
                    if len(seen_keys) >= expected:
                        got.set()
        except Exception:
            pass

    reader_task = asyncio.ensure_future(reader())
    specs = (cfg.get("pairs") or [{"index": i} for i in range(n_customers)])[:n_customers]
    drain = Drain()
    customers = []
    for spec in specs:
        ws, _ = await open_customer(
            target, spec["index"], room="burst", visitor_token=spec.get("visitor_token")
        )
        drain.attach(ws)
        customers.append((spec["index"], ws))
    meter = CpuMeter(cfg.get("cpu_pids", {}))
    meter.start()
    started = time.monotonic()

    async def blast(idx: int, ws: ClientConnection) -> None:
        for seq in range(1, per_customer + 1):
            text = f"{tag}|{idx}|{seq}|{now_ns()}"
            await ws.send(f'{{"type":"message.send","client_id":"{tag}-{seq}","text":"{text}"}}')

    await asyncio.gather(*(blast(i, ws) for i, ws in customers))
    sent_s = time.monotonic() - started
    # Wait for everything, or until nothing new has come for `stall` seconds.
    hard_deadline = time.monotonic() + cfg.get("timeout", 60)
    last_count, last_change = -1, time.monotonic()
    while not got.is_set() and time.monotonic() < hard_deadline:
        if len(seen_keys) != last_count:
            last_count, last_change = len(seen_keys), time.monotonic()
        elif time.monotonic() - last_change > cfg.get("stall", 5.0):
            break
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.5)  # any duplicate would arrive now
    cpu = meter.stop()
    reader_task.cancel()
    drain.cancel()
    distinct = len(set(seen_keys))
    per_customer_order = all(
        [s for i, s in seen_keys if i == idx] == sorted(s for i, s in seen_keys if i == idx)
        for idx, _ in customers
    )
    result: dict[str, Any] = {
        "expected": expected,
        "received": len(seen_keys),
        "distinct": distinct,
        "lost": expected - distinct,
        "duplicates": len(seen_keys) - distinct,
        "per_customer_in_order": per_customer_order,
        "send_seconds": round(sent_s, 2),
        "first_seconds": round(arrivals[0] - started, 3) if arrivals else None,
        "per_second_timeline": [
            sum(1 for t in arrivals if k <= t - started < k + 1) for k in range(int(elapsed) + 1)
        ],
        "seconds": round(elapsed, 2),
        "errors": drain.errors,
        "error_sample": drain.error_sample,
        "cpu": cpu,
    }
    if target.kind == "hub":
        ids = [f["id"] for f in frames]
        burst_ids = [f["id"] for f in frames if (message_text(f) or "").startswith(tag + "|")]
        chain_breaks = 0
        last = first.get("last_event_id", 0)
        for f in frames:
            if f.get("prev") != last:
                chain_breaks += 1
            last = f["id"]
        result.update(
            {
                "event_ids_distinct": len(set(burst_ids)),
                "ids_strictly_increasing": all(a < b for a, b in itertools.pairwise(ids)),
                "prev_chain_breaks": chain_breaks,
            }
        )
    await close_all([ws_console] + [ws for _, ws in customers])
    return result


COMMANDS = {
    "pair": cmd_pair,
    "load": cmd_load,
    "handshake": cmd_handshake,
    "idle": cmd_idle,
    "burst": cmd_burst,
}


def main() -> None:
    raise_nofile()
    with open(sys.argv[1]) as fh:
        cfg = json.load(fh)
    result = asyncio.run(COMMANDS[cfg["cmd"]](cfg))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
