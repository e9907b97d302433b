"""A batch derivation under live traffic, across two daphne processes on PostgreSQL.

Operator A holds every customer's conversation; A's console is connected to one process and
B's to the other.  The customers (half on each process) keep writing, one message in flight
each, while an admin derives all of A's conversations to B.  Asserted:

* every message a customer sent was acknowledged and is stored exactly once;
* A's console receives ``routing.conversations_unassigned`` for all of them, and no message
  of theirs after it; B's console receives ``routing.conversations_assigned`` for all;
* each message reaches exactly one console: A's if it was committed before the derivation
  (its event id is below the derivation's — ids are in commit order), B's otherwise; a
  message acknowledged before the admin's request went to A, one sent after the answer to B;
* the conversation summary on every message event names the operator who now holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import psycopg
import pytest
import websockets

from tests.e2e.client import STAFF_PASSWORD, Console, Customer, recv_until
from tests.e2e.conftest import prepare_hub
from tests.e2e.test_routing_race import Admin
from tests.harness import HubProcess, RedisServer, api_token, fresh_postgres, http_json

pytestmark = pytest.mark.e2e

CUSTOMERS = 12
BEFORE_SECONDS = 1.0  # of traffic before the derivation
AFTER_SECONDS = 1.0  # and after it
HUB_ENV = {"HUB_WS_RATE_PER_SECOND": "1000", "HUB_WS_RATE_BURST": "1000"}


async def _listen(console: Console, stop: asyncio.Event) -> None:
    """Record the console's events until ``stop`` (Console.pump returns only on a frame).
    Also ends when cancelled: on 3.11 ``wait_for`` can swallow a cancellation that lands
    as a frame arrives, and the loop must not outlive a failed scenario."""
    while not stop.is_set() and not asyncio.current_task().cancelling():
        with contextlib.suppress(TimeoutError):
            frame = await console._read(0.2)
            if frame is not None:
                console.others.append(frame)


def _conversation_ids(console: Console, name: str) -> set[str]:
    ids: set[str] = set()
    for event in console.events:
        if event["name"] == name:
            data = event["data"]
            ids |= set(data.get("conversation_ids") or [c["id"] for c in data["conversations"]])
    return ids


def test_messages_follow_a_batch_derivation_between_consoles(tmp_path):
    with fresh_postgres() as db_url, RedisServer() as redis:
        staff = {
            "admin": {"role": "Admin"},
            "opa": {"online": True, "capacity": CUSTOMERS},
            "opb": {"capacity": CUSTOMERS},  # offline until A holds every conversation
        }
        env = prepare_hub(db_url, redis.url, staff, **HUB_ENV)
        with HubProcess(env, log_dir=tmp_path) as web1, HubProcess(env, log_dir=tmp_path) as web2:
            admin = Admin(web1, env, "admin")
            token_a = api_token(web1.http, "opa", STAFF_PASSWORD)
            token_b = api_token(web2.http, "opb", STAFF_PASSWORD)
            try:
                result = asyncio.run(_scenario(web1, web2, admin, token_a, token_b))
            finally:
                admin.close()
            logs = web1.log() + web2.log()
        with psycopg.connect(db_url, autocommit=True) as db:
            stored = db.execute(
                "SELECT m.id, m.text, e.id, e.operator_id FROM chat_message m "
                "LEFT JOIN chat_consoleevent e ON e.kind = 'chat.message_created' "
                "AND (e.payload -> 'message' ->> 'id')::bigint = m.id "
                "WHERE m.direction = 'in'"
            ).fetchall()
            users = dict(db.execute("SELECT username, id FROM auth_user").fetchall())
    assert "Traceback" not in logs, logs[-4000:]
    _check(result, stored, users)


async def _scenario(
    web1: HubProcess, web2: HubProcess, admin: Admin, token_a: str, token_b: str
) -> dict[str, Any]:
    console_a = await Console.connect(web2.ws, token_a)
    console_b = await Console.connect(web1.ws, token_b)
    stop_listening = asyncio.Event()
    listeners = [
        asyncio.ensure_future(_listen(console, stop_listening))
        for console in (console_a, console_b)
    ]
    stop_sending = asyncio.Event()
    customers: list[Customer] = []
    try:
        for i in range(CUSTOMERS):
            web = web1 if i % 2 else web2
            ws = await websockets.connect(f"{web.ws}/ws/webchat/", open_timeout=10)
            session = await recv_until(ws, lambda f: f["type"] == "session", what="session")
            customers.append(Customer(ws, session, f"c{i}"))
        for customer in customers:  # all to A, the only operator online
            await customer.send(f"{customer.name} first")
        status, body = await asyncio.to_thread(
            http_json, "POST", f"{web2.http}/api/presence/", {"presence": "online"}, token_b
        )
        assert status == 200, body
        timing: dict[int, tuple[float, float]] = {}  # message id -> (sent, acked)

        async def keep_writing(customer: Customer) -> None:
            seq = 0
            while not stop_sending.is_set():
                seq += 1
                sent = time.monotonic()
                message = await customer.send(f"{customer.name} #{seq}", within=30)
                timing[message["id"]] = (sent, time.monotonic())
                await asyncio.sleep(0.01)

        writers = [asyncio.ensure_future(keep_writing(c)) for c in customers]
        await asyncio.sleep(BEFORE_SECONDS)
        user_a = console_a.opening[0]["user"]["id"]
        user_b = console_b.opening[0]["user"]["id"]
        derive_sent = time.monotonic()
        status, body = await asyncio.to_thread(admin.derive, user_a, user_b)
        derive_done = time.monotonic()
        assert status in (200, 201), body
        await asyncio.sleep(AFTER_SECONDS)
        stop_sending.set()
        await asyncio.gather(*writers)
        acked = [m for c in customers for m in c.acked]
        wanted = {m["id"] for m in acked}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            seen = {m["id"] for m in console_a.messages() + console_b.messages()}
            if wanted <= seen and _conversation_ids(console_b, "routing.conversations_assigned"):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # anything late (and wrong) would arrive now
        stop_listening.set()
        await asyncio.gather(*listeners)
        for socket in [console_a, console_b, *customers]:
            await socket.close()
        return {
            "acked": acked,
            "timing": timing,
            "derive_sent": derive_sent,
            "derive_done": derive_done,
            "console_a": console_a,
            "console_b": console_b,
            "conversations": {c.acked[0]["conversation_id"] for c in customers},
        }
    finally:  # a failed scenario must not leave loops running
        stop_sending.set()
        stop_listening.set()


def _check(result: dict[str, Any], stored: list[tuple], users: dict[str, int]) -> None:
    console_a: Console = result["console_a"]
    console_b: Console = result["console_b"]
    a, b = users["opa"], users["opb"]
    conversations = result["conversations"]
    acked = {m["id"]: m for m in result["acked"]}
    assert len(acked) == len(result["acked"]), "an ack named a message twice"

    # Stored exactly once: one inbound row per acked message and nothing else.
    texts = [text for _, text, _, _ in stored]
    assert len(texts) == len(set(texts)), "a message was stored twice"
    assert {m_id for m_id, _, _, _ in stored} == set(acked)
    event_of = {m_id: (event_id, operator) for m_id, _, event_id, operator in stored}

    # The consoles: A drops them all, B takes them all.
    unassigned = [e for e in console_a.events if e["name"] == "routing.conversations_unassigned"]
    assert _conversation_ids(console_a, "routing.conversations_unassigned") == conversations
    assert _conversation_ids(console_b, "routing.conversations_assigned") == conversations
    cut = unassigned[0]["id"]
    late_on_a = [
        e for e in console_a.events if e["id"] > cut and e["conversation_id"] in conversations
    ]
    assert not late_on_a, f"A's console got events after the derivation: {late_on_a[:3]}"

    # Every message on exactly one console, decided by when it committed.
    on_a = {m["id"] for m in console_a.messages()}
    on_b = {m["id"] for m in console_b.messages()}
    assert not on_a & on_b, f"delivered to both consoles: {sorted(on_a & on_b)[:10]}"
    missing = set(acked) - on_a - on_b
    assert not missing, f"{len(missing)} acked messages reached no console: {sorted(missing)[:10]}"
    for m_id in acked:
        event_id, operator = event_of[m_id]
        if event_id < cut:
            assert operator == a and m_id in on_a, f"message {m_id} committed before, not on A"
        else:
            assert operator == b and m_id in on_b, f"message {m_id} committed after, not on B"
    timing = result["timing"]
    before = [i for i, (_, acked_at) in timing.items() if acked_at < result["derive_sent"]]
    after = [i for i, (sent, _) in timing.items() if sent > result["derive_done"]]
    assert before and after, "the traffic did not straddle the derivation"
    assert set(before) <= on_a, "a message acked before the derivation went to B"
    assert set(after) <= on_b, "a message sent after the derivation went to A"

    # The summary each message event carries names the operator who holds it now.
    for console, user_id, name in ((console_a, a, "opa"), (console_b, b, "opb")):
        for event in console.events:
            if event["name"] != "chat.message_created":
                continue
            summary = event["data"]["conversation"]
            assert summary["operator_id"] == user_id, summary
            assert summary["operator"] == {"id": user_id, "name": name}, (
                f"message {event['data']['message']['id']} names {summary['operator']} "
                f"as its operator on {name}'s console"
            )
