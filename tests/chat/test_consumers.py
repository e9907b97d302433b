"""Console and web chat consumers over Channels' WebsocketCommunicator: frames only (the
rules are tested at the service level)."""

from __future__ import annotations

import itertools
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat.consumers import ConsoleConsumer, WebchatConsumer
from hub.roles import Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def console(user, query: str = "") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), f"/ws/console/{query}")
    communicator.scope["user"] = user
    communicator.scope["query_string"] = query.lstrip("?").encode()
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def webchat(query: str = "") -> tuple[WebsocketCommunicator, dict]:
    communicator = WebsocketCommunicator(WebchatConsumer.as_asgi(), f"/ws/webchat/{query}")
    communicator.scope["query_string"] = query.lstrip("?").encode()
    connected, _ = await communicator.connect()
    assert connected
    session = await communicator.receive_json_from()
    assert session["type"] == "session"
    return communicator, session


async def until(communicator, predicate, wait=5):
    while True:
        frame = await communicator.receive_json_from(timeout=wait)
        if predicate(frame):
            return frame


@pytest.fixture
def astaff(staff):
    return database_sync_to_async(staff)


async def test_unauthenticated_console_is_closed_4401():
    from django.contrib.auth.models import AnonymousUser

    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), "/ws/console/")
    communicator.scope["user"] = AnonymousUser()
    await communicator.connect()
    assert (await communicator.receive_output(timeout=2))["code"] == 4401


async def test_customer_message_reaches_operator_and_reply_reaches_customer(astaff):
    op = await astaff("op", online=True)
    operator = await console(op)
    hello = await operator.receive_json_from()
    assert hello["type"] == "hello" and hello["role"] == "Operator"
    snapshot = await operator.receive_json_from()
    assert snapshot["type"] == "snapshot"

    customer, _ = await webchat()
    await customer.send_json_to(
        {"type": "message.send", "client_id": "c1", "text": "card blocked", "request_id": 7}
    )
    ack = await until(customer, lambda f: f["type"] == "ack")
    assert ack["request_id"] == 7 and ack["created"] is True

    event = await until(operator, lambda f: f.get("name") == "chat.message_created")
    assert event["data"]["message"]["text"] == "card blocked"
    assert event["id"] > snapshot["last_event_id"]

    await operator.send_json_to(
        {
            "type": "message.send",
            "conversation_id": event["conversation_id"],
            "client_id": "r1",
            "text": "Unblocking it now",
            "request_id": "x",
        }
    )
    reply_ack = await until(operator, lambda f: f["type"] == "ack")
    assert reply_ack["request_id"] == "x"
    reply = await until(
        customer, lambda f: f["type"] == "message" and f["message"]["direction"] == "out"
    )
    assert reply["message"]["text"] == "Unblocking it now"
    await operator.disconnect()
    await customer.disconnect()


async def test_reconnect_with_last_event_id_replays_exactly_what_was_missed(astaff):
    op = await astaff("op", online=True)
    operator = await console(op)
    await operator.receive_json_from()
    snapshot = await operator.receive_json_from()
    seen = snapshot["last_event_id"]
    await operator.disconnect()

    customer, _ = await webchat()
    for index in range(5):
        await customer.send_json_to(
            {"type": "message.send", "client_id": f"m{index}", "text": f"n{index}"}
        )
        await until(customer, lambda f: f["type"] == "ack")

    operator = await console(op, f"?last_event_id={seen}")
    await operator.receive_json_from()  # hello
    frames = []
    while True:
        frame = await operator.receive_json_from()
        if frame["type"] == "resumed":
            break
        frames.append(frame)
    texts = [f["data"]["message"]["text"] for f in frames if f["name"] == "chat.message_created"]
    assert texts == [f"n{i}" for i in range(5)]
    ids = [f["id"] for f in frames]
    assert ids == sorted(set(ids))
    assert frames[0]["prev"] <= seen
    assert all(b["prev"] == a["id"] for a, b in itertools.pairwise(frames))
    assert await operator.receive_nothing(timeout=0.3)
    await operator.disconnect()
    await customer.disconnect()


async def test_unknown_event_id_says_resync_then_sends_snapshot(astaff):
    op = await astaff("op", online=True)
    operator = await console(op, "?last_event_id=999999")
    await operator.receive_json_from()
    resync = await operator.receive_json_from()
    assert resync == {"type": "resync", "reason": "unknown_event_id"}
    assert (await operator.receive_json_from())["type"] == "snapshot"
    await operator.disconnect()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ("{}", "missing_field"),
        ('{"type": 5}', "wrong_type"),
        ('{"type": "teleport"}', "unknown_type"),
        (
            '{"type": "message.send", "conversation_id": "x", "client_id": "a", "text": 5}',
            "wrong_type",
        ),
        ('{"type": "message.send", "client_id": "a", "text": "hi"}', "missing_field"),
        (json.dumps({"type": "ping", "pad": "x" * 70_000}), "frame_too_large"),
        (
            '{"type": "conversation.read", "conversation_id": "x", "up_to_message_id": 1e30}',
            "wrong_type",
        ),
        (
            json.dumps(
                {"type": "conversation.read", "conversation_id": "x", "up_to_message_id": 2**64}
            ),
            "invalid_value",
        ),
    ],
)
async def test_bad_frame_gets_error_and_socket_stays_usable(astaff, raw, code):
    op = await astaff("op", online=True)
    operator = await console(op)
    await operator.receive_json_from()
    await operator.receive_json_from()
    await operator.send_to(text_data=raw)
    error = await operator.receive_json_from()
    assert error["type"] == "error" and error["code"] == code and error["message"]
    await operator.send_json_to({"type": "ping", "request_id": 1})
    assert (await operator.receive_json_from())["type"] == "pong"
    await operator.disconnect()


async def test_operator_cannot_act_on_someone_elses_conversation(astaff):
    await astaff("owner", online=True)
    intruder = await astaff("intruder")
    customer, _ = await webchat()
    await customer.send_json_to({"type": "message.send", "client_id": "c", "text": "hi"})
    ack = await until(customer, lambda f: f["type"] == "ack")
    operator = await console(intruder)
    await operator.receive_json_from()
    await operator.receive_json_from()
    await operator.send_json_to(
        {
            "type": "message.send",
            "conversation_id": ack["message"]["conversation_id"],
            "client_id": "evil",
            "text": "hijack",
            "request_id": 3,
        }
    )
    error = await operator.receive_json_from()
    assert (error["type"], error["code"], error["request_id"]) == ("error", "not_found", 3)
    assert await customer.receive_nothing(timeout=0.3)
    await operator.disconnect()
    await customer.disconnect()


async def test_supervisor_watches_every_conversation(astaff):
    await astaff("op", online=True)
    coordinator = await astaff("coord", Role.COORDINATOR)
    watcher = await console(coordinator)
    assert (await watcher.receive_json_from())["supervisor"] is True
    await watcher.receive_json_from()
    customer, _ = await webchat()
    await customer.send_json_to({"type": "message.send", "client_id": "c", "text": "hi"})
    event = await until(watcher, lambda f: f.get("name") == "chat.message_created")
    assert event["data"]["message"]["text"] == "hi"
    await watcher.disconnect()
    await customer.disconnect()


async def test_webchat_visitor_token_resumes_history(astaff):
    await astaff("op", online=True)
    customer, session = await webchat()
    await customer.send_json_to({"type": "message.send", "client_id": "c", "text": "remember me"})
    await until(customer, lambda f: f["type"] == "ack")
    await customer.disconnect()

    again, resumed = await webchat(f"?token={session['token']}")
    assert resumed["resumed"] is True and resumed["visitor_id"] == session["visitor_id"]
    history = await again.receive_json_from()
    assert [m["text"] for m in history["messages"]] == ["remember me"]
    await again.disconnect()

    forged, fresh = await webchat("?token=forged-token")
    assert fresh["resumed"] is False and fresh["visitor_id"] != session["visitor_id"]
    await forged.disconnect()


async def test_flooding_connection_is_rate_limited(astaff, settings):
    settings.HUB_WS_RATE_PER_SECOND = 5
    settings.HUB_WS_RATE_BURST = 5
    op = await astaff("op", online=True)
    operator = await console(op)
    await operator.receive_json_from()
    await operator.receive_json_from()
    for _ in range(30):
        await operator.send_json_to({"type": "ping"})
    frames = []
    while not await operator.receive_nothing(timeout=0.3):
        frames.append(await operator.receive_json_from())
    pongs = [f for f in frames if f["type"] == "pong"]
    limited = [f for f in frames if f.get("code") == "rate_limited"]
    assert len(pongs) <= 7
    assert limited and limited[0]["data"]["dropped"] >= 1
    await operator.disconnect()


@pytest.mark.parametrize("cursor", ["--5", "\u00b2", "12345678901234567890123", "abc"])
async def test_malformed_cursor_in_query_gets_resync_not_a_crash(astaff, cursor):
    from urllib.parse import quote

    op = await astaff("op", online=True)
    operator = await console(op, f"?last_event_id={quote(cursor)}")
    assert (await operator.receive_json_from())["type"] == "hello"
    assert (await operator.receive_json_from()) == {"type": "resync", "reason": "unknown_event_id"}
    assert (await operator.receive_json_from())["type"] == "snapshot"
    await operator.disconnect()
