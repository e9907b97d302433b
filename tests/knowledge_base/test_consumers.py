"""The console's kb.search and kb.render frames over WebsocketCommunicator: frames only
(the rules are tested at the service level)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat.consumers import ConsoleConsumer
from chat.services import webchat_message_receive
from hub.roles import Role
from knowledge_base.services import reply_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@database_sync_to_async
def setup_world(staff):
    operator = staff("kb-op", online=True)
    coordinator = staff("kb-coord", Role.COORDINATOR)
    received = webchat_message_receive(
        visitor_id="kb-v", client_id="1", text="my card is blocked", display_name="Ana García"
    )
    reply = reply_create(
        actor=coordinator,
        title="Card blocked",
        shortcut="/card-blocked",
        body='Hi {{customer.first_name | "there"}}, I can unblock your card now.',
        language="en",
    )
    return operator, received.conversation["id"], reply["id"]


async def console(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), "/ws/console/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "hello"
    assert (await communicator.receive_json_from())["type"] == "snapshot"
    return communicator


async def ask(communicator, frame):
    await communicator.send_json_to(frame)
    while True:
        reply = await communicator.receive_json_from(timeout=5)
        if reply.get("request_id") == frame.get("request_id"):
            return reply


async def test_search_then_render(staff):
    operator, conversation_id, reply_id = await setup_world(staff)
    ws = await console(operator)
    results = await ask(
        ws,
        {
            "type": "kb.search",
            "query": "/card",
            "conversation_id": conversation_id,
            "request_id": "s1",
        },
    )
    assert results == {
        "type": "kb_results",
        "query": "/card",
        "replies": [
            {
                "id": reply_id,
                "title": "Card blocked",
                "shortcut": "/card-blocked",
                "language": "en",
                "snippet": 'Hi {{customer.first_name | "there"}}, I can unblock your card now.',
            }
        ],
        "request_id": "s1",
    }
    typo = await ask(ws, {"type": "kb.search", "query": "unblok", "request_id": 2})
    assert [r["id"] for r in typo["replies"]] == [reply_id]
    rendered = await ask(
        ws,
        {
            "type": "kb.render",
            "reply_id": reply_id,
            "conversation_id": conversation_id,
            "request_id": "r1",
        },
    )
    assert rendered == {
        "type": "kb_rendered",
        "reply_id": reply_id,
        "text": "Hi Ana, I can unblock your card now.",
        "request_id": "r1",
    }
    await ws.disconnect()


@pytest.mark.parametrize(
    ("frame", "code", "field"),
    [
        ({"type": "kb.search"}, "missing_field", "query"),
        ({"type": "kb.search", "query": 5}, "wrong_type", "query"),
        ({"type": "kb.search", "query": "x" * 201}, "invalid_value", "query"),
        ({"type": "kb.search", "query": "card", "limit": 500}, "invalid_value", "limit"),
        ({"type": "kb.render", "conversation_id": "x"}, "missing_field", "reply_id"),
        ({"type": "kb.render", "reply_id": 0, "conversation_id": "x"}, "invalid_value", "reply_id"),
    ],
)
async def test_bad_frames_get_precise_errors(staff, frame, code, field):
    operator, _, _ = await setup_world(staff)
    ws = await console(operator)
    error = await ask(ws, {**frame, "request_id": "e"})
    assert (error["type"], error["code"], error["data"].get("field")) == ("error", code, field)
    await ws.disconnect()


async def test_render_in_someone_elses_conversation_is_not_found(staff):
    _, conversation_id, reply_id = await setup_world(staff)
    other = await database_sync_to_async(staff)("kb-op2")
    ws = await console(other)
    error = await ask(
        ws,
        {
            "type": "kb.render",
            "reply_id": reply_id,
            "conversation_id": conversation_id,
            "request_id": "x",
        },
    )
    assert (error["type"], error["code"]) == ("error", "not_found")
    missing = await ask(
        ws,
        {
            "type": "kb.search",
            "query": "card",
            "conversation_id": conversation_id,
            "request_id": "y",
        },
    )
    assert missing["code"] == "not_found"
    await ws.disconnect()
