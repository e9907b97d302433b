"""A new web chat customer's first message gets the type menu live, on the same socket.

Two daphne processes on a fresh PostgreSQL database and the local Redis, and the embedded
default (one process, SQLite, the embedded channel layer), the type menu turned on.  The
menu is written in the same transaction as the customer's first message, so its doorbell
rings before the socket has joined the new customer's group; the socket must still show it
right after the ``ack`` — once — without reconnecting.  A customer on each process; then
the first one answers, is routed to the operator (whose console is on the other process)
and gets the reply live, once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.client import STAFF_PASSWORD, Console, Customer, recv_json, send_json
from tests.e2e.conftest import prepare_hub
from tests.harness import HubProcess, api_token, manage
from tests.services import require_redis

pytestmark = pytest.mark.e2e

MENU_ON = """
from routing.models import QueryType
from routing.services import routing_settings_get
QueryType.objects.create(code="payments", name="Payments", menu_position=1)
QueryType.objects.create(code="claims", name="Claims", menu_position=2, is_default=True)
policy = routing_settings_get()
policy.type_menu_enabled = True
policy.save()
"""


async def frames_until_pong(customer: Customer, request_id: str) -> list[dict[str, Any]]:
    """Every frame the socket sends before the answer to a ping (the consumer handles
    frames and doorbells in order: what was queued for it comes out first)."""
    await send_json(customer.ws, {"type": "ping", "request_id": request_id})
    frames = []
    while True:
        frame = await recv_json(customer.ws)
        if frame["type"] == "pong" and frame.get("request_id") == request_id:
            return frames
        frames.append(frame)


async def _sees_the_menu_live(customer: Customer) -> dict[str, Any]:
    first = await customer.send("Good morning")
    frames = await frames_until_pong(customer, "after-first")
    assert [f["type"] for f in frames] == ["message"], frames
    menu = frames[0]["message"]
    assert menu["id"] > first["id"] and menu["conversation_id"] == first["conversation_id"]
    assert (menu["direction"], menu["author"]) == ("out", "Bank")
    assert menu["text"].startswith("How can we help you? Reply with a number:")
    assert "1 Payments" in menu["text"] and "2 Claims" in menu["text"]
    return menu


async def _scenario(web1: HubProcess, web2: HubProcess, token: str) -> None:
    console = await Console.connect(web2.ws, token)
    ana = await Customer.connect(web1.ws, name="ana")
    ben = await Customer.connect(web2.ws, name="ben")
    await _sees_the_menu_live(ana)
    await _sees_the_menu_live(ben)

    # Ana answers on her joined socket: routed to the operator, whose reply comes back live.
    answer = await ana.send("1")
    await console.pump(
        lambda c: any(
            e["name"] == "routing.conversation_assigned"
            and e["conversation_id"] == answer["conversation_id"]
            for e in c.events
        ),
        what="ana's conversation assigned",
    )
    reply = await console.request(
        {
            "type": "message.send",
            "conversation_id": answer["conversation_id"],
            "client_id": "r1",
            "text": "Hello Ana, what is the payment about?",
        }
    )
    assert reply["type"] == "ack", reply
    frames = []
    while not any(f["type"] == "message" and f["message"]["direction"] == "out" for f in frames):
        frames.append(await recv_json(ana.ws))
    frames += await frames_until_pong(ana, "after-reply")
    replies = [f["message"] for f in frames if f["type"] == "message"]
    assert [m["id"] for m in replies if m["direction"] == "out"] == [reply["message"]["id"]]

    await console.close()
    await ana.close()
    await ben.close()


def test_first_message_gets_the_type_menu_live_on_both_processes(tmp_path, fresh_db):
    env = prepare_hub(fresh_db, require_redis(), {"op": {"online": True, "capacity": 100}})
    manage(env, "shell", "-c", MENU_ON)
    with HubProcess(env, log_dir=tmp_path) as web1, HubProcess(env, log_dir=tmp_path) as web2:
        token = api_token(web2.http, "op", STAFF_PASSWORD)
        asyncio.run(asyncio.wait_for(_scenario(web1, web2, token), 60))


def test_first_message_gets_the_type_menu_live_on_the_embedded_default(tmp_path):
    """The shape of ``make run``: one process, SQLite, the embedded channel layer."""
    env = prepare_hub(
        None, None, {"op": {"online": True, "capacity": 100}}, HUB_VAR_DIR=str(tmp_path)
    )
    manage(env, "shell", "-c", MENU_ON)
    with HubProcess(env, log_dir=tmp_path) as web:
        token = api_token(web.http, "op", STAFF_PASSWORD)
        asyncio.run(asyncio.wait_for(_scenario(web, web, token), 60))
