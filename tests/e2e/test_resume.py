"""(b) Console resume: the operator's console socket drops while 200 customer messages
arrive, and reconnects with ``?last_event_id=`` the last event it saw.

Two daphne processes on a fresh PostgreSQL database and the local Redis.  Ten customers on
``web1`` send 20 messages each (paced, concurrently); the operator's console starts on
``web2``.  After it has seen 40 of them live, the console is dropped — by closing its socket
(it comes back to web2) or by SIGKILLing web2 (it comes back to web1) — and it reconnects
while the customers are still sending.  Together, what it saw before the drop, the replay and
the live events after it must be every acked message exactly once: event ids strictly
increasing with each ``prev`` naming the event before it, each customer's messages in the
order they were acked.  Then live delivery goes on.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.client import STAFF_PASSWORD, Console, Customer, assert_stream_matches_acks
from tests.e2e.conftest import prepare_hub
from tests.harness import HubProcess, api_token
from tests.services import require_redis

pytestmark = pytest.mark.e2e

CUSTOMERS = 10
BURST_PER_CUSTOMER = 20  # 200 messages; under the default burst of 40 frames per socket
SEEN_BEFORE_DROP = 40
ACKED_BEFORE_RECONNECT = 120


async def _send_burst(customer: Customer) -> None:
    for i in range(BURST_PER_CUSTOMER):
        await customer.send(f"{customer.name} burst {i}")
        await asyncio.sleep(0.02)


def _acked(customers: list[Customer]) -> int:
    return sum(len(c.acked) for c in customers)


async def _scenario(web1: HubProcess, web2: HubProcess, token: str, drop: str) -> None:
    console = await Console.connect(web2.ws, token)
    customers = [await Customer.connect(web1.ws, name=f"c{i}") for i in range(CUSTOMERS)]
    # Each customer's first message opens a conversation, assigned to the one operator.
    for customer in customers:
        await customer.send(f"{customer.name} hello")
    await console.pump(lambda c: len(c.messages()) == CUSTOMERS, what="the opening messages")
    assigned = [e for e in console.events if e["name"] == "routing.conversation_assigned"]
    assert len(assigned) == CUSTOMERS

    senders = asyncio.gather(*(_send_burst(c) for c in customers))
    await console.pump(
        lambda c: len(c.messages()) >= CUSTOMERS + SEEN_BEFORE_DROP, what="40 live messages"
    )
    seen_before_drop = len(console.messages())
    if drop == "close":
        await console.close()
        comeback = web2
    else:
        await asyncio.to_thread(web2.kill)
        comeback = web1

    deadline = time.monotonic() + 20
    while _acked(customers) < CUSTOMERS + ACKED_BEFORE_RECONNECT and not senders.done():
        assert time.monotonic() < deadline, "customers stopped being acked"
        await asyncio.sleep(0.01)
    await console.reconnect(comeback.ws)
    assert console.replayed is not None, f"expected a resume, got {console.opening[-1]}"
    assert console.replayed > 0

    await asyncio.wait_for(senders, 30)
    total = _acked(customers)
    assert total == CUSTOMERS + CUSTOMERS * BURST_PER_CUSTOMER
    await console.pump(lambda c: len(c.messages()) >= total, within=15, what="every message")
    assert len(console.messages()) > seen_before_drop
    assert_stream_matches_acks(console, customers)

    # Live events keep coming on the resumed socket.
    for customer in customers[:3]:
        started = time.perf_counter()
        message = await customer.send(f"{customer.name} after the resume")
        await console.pump(
            lambda c, mid=message["id"]: any(m["id"] == mid for m in c.messages()),
            within=5,
            what="a live message after the resume",
        )
        assert time.perf_counter() - started < 2.0
    assert_stream_matches_acks(console, customers)

    await console.close()
    for customer in customers:
        await customer.close()


@pytest.mark.parametrize("drop", ["close", "sigkill"])
def test_console_resumes_without_loss_or_duplicates(tmp_path, fresh_db, drop):
    env = prepare_hub(fresh_db, require_redis(), {"op": {"online": True, "capacity": 100}})
    with HubProcess(env, log_dir=tmp_path) as web1, HubProcess(env, log_dir=tmp_path) as web2:
        token = api_token(web2.http, "op", STAFF_PASSWORD)
        asyncio.run(asyncio.wait_for(_scenario(web1, web2, token, drop), 50))
