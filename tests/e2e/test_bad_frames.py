"""(c) Hostile and broken clients against a real daphne process (PostgreSQL + local Redis).

* Every malformed frame, on the console and on the web chat socket, gets an ``error`` frame
  with its stable code and a readable message, and the same socket then works normally.
* A connection flooding frames is rate limited (``rate_limited`` errors) while another
  connection's ping round trip stays fast, and the flooder's socket stays open.
* An operator sending into a conversation that is not assigned to them gets ``not_found``
  and nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import websockets

from tests.e2e.client import (
    STAFF_PASSWORD,
    Console,
    Customer,
    ping_rtt,
    recv_json,
    recv_until,
    send_json,
)
from tests.e2e.conftest import prepare_hub
from tests.harness import HubProcess, api_token, fresh_postgres, http_json
from tests.services import require_redis

pytestmark = pytest.mark.e2e

MAX_FRAME = 64 * 1024  # HUB_WS_MAX_FRAME_BYTES default
DEFAULT_BURST = 40  # HUB_WS_RATE_BURST default
DEFAULT_RATE = 20  # HUB_WS_RATE_PER_SECOND default


@dataclass
class Stack:
    web: HubProcess
    tokens: dict[str, str]
    conversation_id: str  # op1's conversation with the customer below
    customer_token: str  # that customer's web chat session token


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """One daphne process; op1 (online) holds one conversation; op2 is an operator with
    none; coord is a coordinator (watches everything, acts on nothing unassigned)."""
    redis_url = require_redis()
    log_dir = tmp_path_factory.mktemp("bad_frames")
    with fresh_postgres() as db_url:
        env = prepare_hub(
            db_url,
            redis_url,
            {"op1": {"online": True}, "op2": {}, "coord": {"role": "Coordinator"}},
        )
        with HubProcess(env, log_dir=log_dir) as web:
            tokens = {
                name: api_token(web.http, name, STAFF_PASSWORD) for name in ("op1", "op2", "coord")
            }

            async def open_conversation() -> tuple[str, str]:
                customer = await Customer.connect(web.ws, name="first")
                message = await customer.send("I need help with my card")
                await customer.close()
                return message["conversation_id"], customer.session["token"]

            conversation_id, customer_token = asyncio.run(open_conversation())
            yield Stack(web, tokens, conversation_id, customer_token)


def _stored_texts(stack: Stack) -> list[str]:
    status, body = http_json(
        "GET",
        f"{stack.web.http}/api/conversations/{stack.conversation_id}/messages/",
        token=stack.tokens["coord"],
    )
    assert status == 200, body
    return [m["text"] for m in body["messages"]]


def _bad_frames(socket: str, conversation_id: str) -> list[tuple[str, Any, str, str | None]]:
    """(what, frame, expected code, expected data.field); str/bytes frames go out raw."""
    send: dict[str, Any] = {"type": "message.send", "client_id": "bad-1"}
    if socket == "console":
        send["conversation_id"] = conversation_id
    return [
        ("not JSON", "{this is not json", "invalid_json", None),
        ("invalid UTF-8 bytes", b"\xff\xfe\xfd", "invalid_json", None),
        ("a JSON array", "[1, 2, 3]", "invalid_frame", None),
        ("a JSON string", '"ping"', "invalid_frame", None),
        ("no type", {"text": "hello", "request_id": "r-no-type"}, "missing_field", "type"),
        ("type not a string", {"type": 5, "request_id": "r-type-5"}, "wrong_type", "type"),
        (
            "unknown type",
            {"type": "message.delete", "request_id": "r-unknown"},
            "unknown_type",
            None,
        ),
        ("text: 5", {**send, "text": 5, "request_id": "r-text-5"}, "wrong_type", "text"),
        (
            "client_id: list",
            {**send, "client_id": ["x"], "text": "hi", "request_id": "r-cid"},
            "wrong_type",
            "client_id",
        ),
        ("no text", {**send, "request_id": "r-no-text"}, "missing_field", "text"),
        ("70 000 bytes", {"type": "ping", "pad": "x" * 70_000}, "frame_too_large", None),
    ]


async def _open(stack: Stack, socket: str) -> Any:
    if socket == "console":
        return (await Console.connect(stack.web.ws, stack.tokens["op1"])).ws
    customer = await Customer.connect(stack.web.ws, name="bad", token=stack.customer_token)
    return customer.ws


@pytest.mark.parametrize("socket", ["console", "webchat"])
def test_bad_frames_get_coded_errors_and_the_socket_keeps_working(stack, socket):
    async def scenario() -> None:
        ws = await _open(stack, socket)
        for what, frame, code, field in _bad_frames(socket, stack.conversation_id):
            raw = frame if isinstance(frame, str | bytes) else json.dumps(frame)
            await ws.send(raw)
            error = await recv_until(
                ws, lambda f: f["type"] in {"error", "pong", "ack"}, what=f"error for {what}"
            )
            assert error["type"] == "error", (what, error)
            assert error["code"] == code, (what, error)
            assert isinstance(error["message"], str) and len(error["message"]) > 10, error
            if field is not None:
                assert error["data"]["field"] == field, (what, error)
            if isinstance(frame, dict) and "request_id" in frame:
                assert error["request_id"] == frame["request_id"], (what, error)
            if code == "frame_too_large":
                assert error["data"]["max_bytes"] == MAX_FRAME
                assert len(raw) > MAX_FRAME
            # The same socket still answers a good frame.
            assert await ping_rtt(ws, within=5) < 2
        # ...and still does real work: a message is stored and acked.
        good: dict[str, Any] = {
            "type": "message.send",
            "client_id": f"good-{socket}",
            "text": f"good frame after bad ones ({socket})",
            "request_id": "good",
        }
        if socket == "console":
            good["conversation_id"] = stack.conversation_id
        await send_json(ws, good)
        ack = await recv_until(ws, lambda f: f.get("request_id") == "good", what="ack")
        assert ack["type"] == "ack" and ack["created"] is True, ack
        await ws.close()

    asyncio.run(asyncio.wait_for(scenario(), 45))
    texts = _stored_texts(stack)
    assert f"good frame after bad ones ({socket})" in texts
    assert not [t for t in texts if t == "hi"], "a refused frame stored a message"


def test_flooding_connection_is_rate_limited_and_others_stay_fast(stack):
    flood_frames = 300
    max_frames = 3000

    async def scenario() -> None:
        flooder = await Customer.connect(stack.web.ws, name="flooder")
        bystander = await Customer.connect(stack.web.ws, name="bystander")
        console = await Console.connect(stack.web.ws, stack.tokens["op1"])
        received: list[dict[str, Any]] = []

        async def read_flooder() -> None:
            # Until the socket has been quiet for 1 s: every reply to the flood is in.
            while True:
                try:
                    received.append(await recv_json(flooder.ws, 1.0))
                except TimeoutError:
                    return

        measured = asyncio.Event()

        async def flood() -> int:
            # At least 300 frames, and on until the others have measured their pings.
            sent = 0
            while (sent < flood_frames or not measured.is_set()) and sent < max_frames:
                await flooder.ws.send(json.dumps({"type": "ping", "request_id": f"f{sent}"}))
                sent += 1
                if sent % 25 == 0:
                    await asyncio.sleep(0)  # let the other clients' coroutines run
            return sent

        async def measure() -> tuple[list[float], list[float]]:
            web, staff = [], []
            for _ in range(10):
                web.append(await ping_rtt(bystander.ws, within=5))
                staff.append(await ping_rtt(console.ws, within=5))
                await asyncio.sleep(0.02)
            measured.set()
            return web, staff

        reader = asyncio.ensure_future(read_flooder())
        flood_started = time.monotonic()
        sent, (web_rtts, console_rtts) = await asyncio.gather(flood(), measure())
        await asyncio.wait_for(reader, 20)
        elapsed = time.monotonic() - flood_started

        assert max(web_rtts) < 1.0, web_rtts
        assert max(console_rtts) < 1.0, console_rtts
        pongs = [f for f in received if f["type"] == "pong"]
        limited = [f for f in received if f["type"] == "error"]
        assert limited, "the flood was never rate limited"
        assert {f["code"] for f in limited} == {"rate_limited"}, limited
        assert "slow down" in limited[0]["message"].lower()
        assert limited[-1]["data"]["dropped"] > 0
        # The bucket let through its burst plus what refilled meanwhile, and no more.
        assert DEFAULT_BURST <= len(pongs) <= DEFAULT_BURST + DEFAULT_RATE * elapsed + 2, (
            len(pongs),
            elapsed,
        )
        assert len(pongs) < sent
        # Error frames are themselves throttled (at most 5 a second, plus the first).
        assert len(limited) <= 5 * elapsed + 2, (len(limited), elapsed)

        # The flooder was slowed down, not disconnected: once the bucket refills it works.
        await asyncio.sleep(0.5)
        assert await ping_rtt(flooder.ws, within=2) < 1.0
        for ws in (flooder.ws, bystander.ws, console.ws):
            await ws.close()

    asyncio.run(asyncio.wait_for(scenario(), 45))


def test_operator_cannot_send_into_a_conversation_not_assigned_to_them(stack):
    before = _stored_texts(stack)

    async def scenario() -> None:
        customer = await Customer.connect(stack.web.ws, name="owner", token=stack.customer_token)
        for name in ("op2", "coord"):
            console = await Console.connect(stack.web.ws, stack.tokens[name])
            for conversation_id in (
                stack.conversation_id,
                "7d3f2a4c-0000-4000-8000-000000000000",
                "not-a-uuid",
            ):
                reply = await console.request(
                    {
                        "type": "message.send",
                        "conversation_id": conversation_id,
                        "client_id": f"intrude-{name}",
                        "text": f"intrusion by {name}",
                    }
                )
                assert reply["type"] == "error", reply
                assert reply["code"] == "not_found", reply
                assert reply["message"]
            assert (await console.request({"type": "ping"}))["type"] == "pong"
            await console.close()
        # The customer was told nothing: only the pong comes back.
        await send_json(customer.ws, {"type": "ping", "request_id": "after"})
        frames = []
        while True:
            frame = await recv_json(customer.ws, 5)
            if frame.get("request_id") == "after":
                break
            frames.append(frame)
        assert [f for f in frames if f["type"] == "message"] == [], frames
        await customer.close()

    asyncio.run(asyncio.wait_for(scenario(), 45))
    after = _stored_texts(stack)
    assert after == before, "a refused send stored a message"
    assert not [t for t in after if t.startswith("intrusion")]
    # The REST twin refuses alike.
    status, body = http_json(
        "POST",
        f"{stack.web.http}/api/conversations/{stack.conversation_id}/messages/",
        {"client_id": "rest-intrude", "text": "intrusion over REST"},
        token=stack.tokens["op2"],
    )
    assert status == 404 and body["code"] == "not_found", (status, body)
    assert _stored_texts(stack) == before


def test_handshake_survives_garbage_after_close(stack):
    """A socket that sends a bad frame and closes at once does not break the process."""

    async def scenario() -> None:
        for _ in range(5):
            async with websockets.connect(f"{stack.web.ws}/ws/webchat/") as ws:
                await ws.send("{garbage")
        customer = await Customer.connect(stack.web.ws, name="after-garbage")
        assert (await customer.send("still serving"))["text"] == "still serving"
        await customer.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))
