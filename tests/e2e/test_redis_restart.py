"""(d) Redis restarts under live traffic: the database is the record, Redis only the doorbell.

Two daphne processes share a private redis-server; customers are on ``web1``, the operator's
console on ``web2`` (HUB_CONSOLE_SAFETY_POLL_SECONDS=1).  Redis is killed for a few seconds
while customers keep writing — including one whose socket was open but who sends their first
message during the outage — and every message is still stored and acked.  Meanwhile the
console keeps receiving them from the log (safety poll).  Redis is started again on the same
port; the console ends up with every acked message exactly once and in order, and live
delivery comes back by itself in both directions: customer messages reach the console in far
less than the poll period (doorbells again), and operator replies reach the customers (whose
sockets have no poll at all).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.e2e.client import (
    STAFF_PASSWORD,
    Console,
    Customer,
    assert_stream_matches_acks,
    recv_until,
)
from tests.e2e.conftest import prepare_hub
from tests.harness import HubProcess, RedisServer, api_token, http_json

pytestmark = pytest.mark.e2e

CUSTOMERS = 5
OUTAGE_SECONDS = 4.0
SEND_EVERY = 0.5
# Doorbell delivery takes milliseconds; the safety poll runs at most every
# max(HUB_WS_REVALIDATE_SECONDS=2, HUB_CONSOLE_SAFETY_POLL_SECONDS=1) seconds.
LIVE_LATENCY = 0.5


def _health(web: HubProcess) -> tuple[int, dict]:
    return http_json("GET", f"{web.http}/healthz")


async def _wait_healthy(web: HubProcess, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while True:
        status, body = await asyncio.to_thread(_health, web)
        if status == 200:
            return
        assert time.monotonic() < deadline, f"{web.http} not healthy again: {body}"
        await asyncio.sleep(0.2)


async def _live_latency(console: Console, customer: Customer, text: str) -> float:
    started = time.perf_counter()
    message = await customer.send(text)
    await console.pump(
        lambda c: any(m["id"] == message["id"] for m in c.messages()),
        within=5,
        what=f"delivery of {text!r}",
    )
    return time.perf_counter() - started


async def _reply_reaches(console: Console, customer: Customer, text: str, within: float) -> bool:
    reply = await console.request(
        {
            "type": "message.send",
            "conversation_id": customer.acked[0]["conversation_id"],
            "client_id": f"reply-{text}",
            "text": text,
        }
    )
    assert reply["type"] == "ack", reply
    try:
        await recv_until(
            customer.ws,
            lambda f: f["type"] == "message" and f["message"]["text"] == text,
            within,
            what=f"reply {text!r}",
        )
    except TimeoutError:
        return False
    return True


async def _scenario(
    redis: RedisServer, web1: HubProcess, web2: HubProcess, token: str, report: dict[str, Any]
) -> None:
    console = await Console.connect(web2.ws, token)
    customers = [await Customer.connect(web1.ws, name=f"c{i}") for i in range(CUSTOMERS)]
    quiet = await Customer.connect(web1.ws, name="quiet")  # first message during the outage
    for customer in customers:
        await customer.send(f"{customer.name} before the outage")
    await console.pump(lambda c: len(c.messages()) == CUSTOMERS, what="messages before")
    before = [await _live_latency(console, customers[0], f"live before {i}") for i in range(3)]
    assert max(before) < LIVE_LATENCY, before

    # --- Redis down -------------------------------------------------------------------
    await asyncio.to_thread(redis.stop)
    status, health = await asyncio.to_thread(_health, web1)
    assert status == 503 and health["down"] == ["channel_layer"], health

    ack_times: list[float] = []

    async def keep_sending(customer: Customer) -> None:
        stop_at = time.monotonic() + OUTAGE_SECONDS
        i = 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            await customer.send(f"{customer.name} during the outage {i}", within=10)
            ack_times.append(time.perf_counter() - started)
            i += 1
            await asyncio.sleep(SEND_EVERY)

    async def first_message_of_quiet() -> None:
        await asyncio.sleep(1.0)
        await quiet.send("quiet: my first message, during the outage", within=10)

    senders = asyncio.gather(*(keep_sending(c) for c in customers), first_message_of_quiet())
    # Sockets opened during the outage still open: their subscriptions are retried
    # (hub.layers.ResilientPubSubChannelLayer) instead of failing the handshake.
    late_console = await Console.connect(web2.ws, token)
    late_customer = await Customer.connect(web1.ws, name="late")
    everyone = [*customers, quiet]
    # The console keeps reading while the customers write: the safety poll serves it from
    # the log although no doorbell rings.
    await console.pump(lambda c: senders.done(), within=OUTAGE_SECONDS + 15, what="the outage")
    await senders
    during = sum(len(c.acked) for c in everyone) - CUSTOMERS - 3
    served_by_poll = len(console.messages()) - CUSTOMERS - 3
    report.update(
        outage_messages=during,
        outage_max_ack_s=round(max(ack_times), 3),
        console_had_during_outage=served_by_poll,
    )
    assert max(ack_times) < 2.0, ack_times
    assert served_by_poll > 0, "the safety poll did not serve the console during the outage"

    # --- Redis back on the same port --------------------------------------------------
    await asyncio.to_thread(redis.start)
    restarted = time.perf_counter()
    total = sum(len(c.acked) for c in everyone)
    await console.pump(
        lambda c: len(c.messages()) >= total,
        within=15,
        what="every message committed during the outage",
    )
    report["all_seen_after_restart_s"] = round(time.perf_counter() - restarted, 2)
    assert_stream_matches_acks(console, everyone)
    await _wait_healthy(web1)
    await _wait_healthy(web2)

    # Live delivery customer → console returns by itself (doorbells, not the poll).
    latencies: list[float] = []
    while not latencies or latencies[-1] >= LIVE_LATENCY:
        assert time.perf_counter() - restarted < 15, f"live delivery did not return {latencies}"
        latencies.append(
            await _live_latency(console, customers[1], f"after restart {len(latencies)}")
        )
    report["live_back_after_restart_s"] = round(time.perf_counter() - restarted, 2)
    again = [await _live_latency(console, customers[1], f"live again {i}") for i in range(5)]
    assert max(again) < LIVE_LATENCY, again
    report["live_latencies_s"] = [round(x, 3) for x in again]

    # ...and console → customer: web1 re-subscribed the customers' groups.
    for customer in customers:
        started = time.perf_counter()
        assert await _reply_reaches(console, customer, f"answer to {customer.name}", 5)
        assert time.perf_counter() - started < 2.0
    # The quiet customer's socket joined its group in the background once Redis was back.
    for attempt in range(5):
        if await _reply_reaches(console, quiet, f"answer to quiet {attempt}", 1.0):
            break
    else:
        raise AssertionError("the quiet customer never received a live reply")

    # The sockets opened during the outage are live too once Redis is back.
    late_message = await late_customer.send("late: opened during the outage")
    for watcher in (console, late_console):
        await watcher.pump(
            lambda c: any(m["id"] == late_message["id"] for m in c.messages()),
            within=LIVE_LATENCY * 4,
            what="the late customer's message, live",
        )
    everyone.append(late_customer)
    for attempt in range(5):
        if await _reply_reaches(console, late_customer, f"answer to late {attempt}", 1.0):
            break
    else:
        raise AssertionError("the customer who connected during the outage never got a reply")

    assert_stream_matches_acks(console, everyone)
    await console.close()
    await late_console.close()
    for customer in everyone:
        await customer.close()


def test_console_catches_up_and_live_delivery_returns_after_redis_restart(tmp_path, fresh_db):
    report: dict[str, Any] = {}
    with RedisServer() as redis:
        env = prepare_hub(
            fresh_db,
            redis.url,
            {"op": {"online": True, "capacity": 100}},
            HUB_CONSOLE_SAFETY_POLL_SECONDS="1",
        )
        with HubProcess(env, log_dir=tmp_path) as web1, HubProcess(env, log_dir=tmp_path) as web2:
            token = api_token(web2.http, "op", STAFF_PASSWORD)
            try:
                asyncio.run(asyncio.wait_for(_scenario(redis, web1, web2, token, report), 55))
            finally:
                print("redis restart report:", report)
