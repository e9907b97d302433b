"""Bench micro-benchmark: channels_redis' classic RedisChannelLayer vs RedisPubSubChannelLayer.

Two questions behind the hub's choice of layer (hub.settings.channel_layer_from_url):

* cost: group messages relayed per CPU second (this process plus redis-server), with 50
  groups of one receiver each and one message in flight per group;
* loss: a burst of 5,000 group messages to one receiver that is busy (not reading) at the
  classic layer's default capacity of 100, then read everything that arrives.

The classic layer keeps every consumer of a process in *one* Redis sorted set (the
process-local ``specific.<id>!`` channel) and checks ``capacity`` against that set, so the
100 messages are a budget for the whole process, not per consumer: past it, ``group_send``
drops silently.

Run: ``python -m bench.layers CONFIG.json`` (redis_url, redis_pid, quick); prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import psutil
import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def make_layer(kind: str, url: str) -> Any:
    # The hub's connection options (hub.settings): redis-py's default 5 s socket timeout
    # breaks both layers' blocking reads.  Everything else is each layer's default.
    host = {
        "address": url,
        "socket_timeout": None,
        "socket_connect_timeout": 5,
        "retry_on_timeout": True,
        "max_connections": 10_000,
    }
    if kind == "classic":
        return RedisChannelLayer(hosts=[host])  # defaults: capacity 100, expiry 60
    return RedisPubSubChannelLayer(hosts=[host])


async def relay(
    kind: str, url: str, redis_pid: int, total: int, groups: int = 50, window: int = 1
) -> dict[str, Any]:
    """``groups`` groups of one receiver each; each sender keeps ``window`` messages in
    flight.  50 x 1 stays under the classic layer's capacity, which (see module docs) is
    per *process*, not per consumer."""
    layer = make_layer(kind, url)
    channels = [await layer.new_channel() for _ in range(groups)]
    for g, channel in enumerate(channels):
        await layer.group_add(f"g{g}", channel)
    per_group = total // groups
    slots = [asyncio.Semaphore(window) for _ in range(groups)]
    received = [0] * groups
    sent = [0] * groups
    lost = [0]
    latencies: list[float] = []

    async def receiver(g: int) -> None:
        while True:
            message = await layer.receive(channels[g])
            latencies.append(time.perf_counter() - message["t"])
            received[g] += 1
            slots[g].release()

    async def sender(g: int) -> None:
        for i in range(per_group):
            try:
                await asyncio.wait_for(slots[g].acquire(), 2.0)
            except TimeoutError:
                lost[0] += 1  # a message of this group never arrived: go on without it
            await layer.group_send(f"g{g}", {"type": "m", "i": i, "t": time.perf_counter()})
            sent[g] += 1

    # Receivers wait first, as consumers do; then the senders start.
    receivers = [asyncio.ensure_future(receiver(g)) for g in range(groups)]
    await asyncio.sleep(0.2)
    me, server = psutil.Process(), psutil.Process(redis_pid)
    cpu0, rcpu0, t0 = _cpu(me), _cpu(server), time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(sender(g) for g in range(groups))), 120)
    # Wait for the last messages (or give up on them after 2 s without progress).
    last, idle_since = -1, time.perf_counter()
    while sum(received) < sum(sent) and time.perf_counter() - idle_since < 2.0:
        if sum(received) != last:
            last, idle_since = sum(received), time.perf_counter()
        await asyncio.sleep(0.005)
    wall = time.perf_counter() - t0
    cpu, rcpu = _cpu(me) - cpu0, _cpu(server) - rcpu0
    for task in receivers:
        task.cancel()
    done = sum(received)
    latencies.sort()
    layer = make_layer(kind, url)
    await layer.flush()
    return {
        "messages": done,
        "sent": sum(sent),
        "lost": sum(sent) - done,
        "wall_seconds": round(wall, 3),
        "per_second": round(done / wall, 1),
        "client_cpu_seconds": round(cpu, 3),
        "redis_cpu_seconds": round(rcpu, 3),
        "per_cpu_second_client": round(done / cpu, 1) if cpu else None,
        "per_cpu_second_total": round(done / (cpu + rcpu), 1) if cpu + rcpu else None,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3) if latencies else None,
    }


async def burst(kind: str, url: str, total: int = 5000) -> dict[str, Any]:
    layer = make_layer(kind, url)
    channel = await layer.new_channel()
    await layer.group_add("burst", channel)
    for i in range(total):
        await layer.group_send("burst", {"type": "m", "i": i})
    got: list[int] = []
    while True:
        try:
            message = await asyncio.wait_for(layer.receive(channel), 1.0)
        except TimeoutError:
            break
        got.append(message["i"])
    await layer.group_discard("burst", channel)
    await layer.flush()
    return {
        "sent": total,
        "received": len(got),
        "dropped": total - len(got),
        "in_order": got == sorted(got),
        "capacity": getattr(layer, "capacity", None),
    }


async def main(cfg: dict[str, Any]) -> dict[str, Any]:
    url, pid = cfg["redis_url"], cfg["redis_pid"]
    total = 2000 if cfg.get("quick") else 5000
    out: dict[str, Any] = {}
    for kind in ("classic", "pubsub"):
        await aioredis.from_url(url).flushall()
        # A short warm-up so connection setup is not in the figures.
        await relay(kind, url, pid, 500)
        out[kind] = {
            "relay": await relay(kind, url, pid, total),
            "burst": await burst(kind, url),
        }
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        config = json.load(fh)
    json.dump(asyncio.run(main(config)), sys.stdout)
