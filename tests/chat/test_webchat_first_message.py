"""A new web chat customer's first message: what the hub writes in the same transaction (the
type menu, the queue position, the out-of-hours reply and close) reaches the same socket
live, once, after the ``ack`` — not only on the next page load (chat.consumers catches up
from the database once the socket has joined the customer's group)."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat.events import webchat_group
from tests.chat.test_consumers import webchat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def frames_until_pong(communicator, request_id: str = "p") -> list[dict[str, Any]]:
    """Every frame the socket has sent before the answer to a ping: the consumer handles
    frames and doorbells in order, so whatever was queued for it comes out before."""
    await communicator.send_json_to({"type": "ping", "request_id": request_id})
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=5)
        if frame["type"] == "pong" and frame.get("request_id") == request_id:
            return frames
        frames.append(frame)


async def first_message(communicator, text: str = "Good morning") -> list[dict[str, Any]]:
    """Send a first message; the frames up to and including a later pong."""
    await communicator.send_json_to(
        {"type": "message.send", "client_id": "c1", "text": text, "request_id": "c1"}
    )
    return await frames_until_pong(communicator)


def messages(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f["message"] for f in frames if f["type"] == "message"]


@database_sync_to_async
def menu_on() -> None:
    from routing.models import QueryType
    from routing.services import routing_settings_get

    QueryType.objects.create(code="payments", name="Payments", menu_position=1)
    QueryType.objects.create(code="claims", name="Claims", menu_position=2, is_default=True)
    policy = routing_settings_get()
    policy.type_menu_enabled = True
    policy.save()


async def test_the_type_menu_arrives_live_after_the_ack(staff):
    await database_sync_to_async(staff)("op", online=True)
    await menu_on()
    customer, _ = await webchat()
    frames = await first_message(customer)

    assert [f["type"] for f in frames] == ["ack", "message"]
    ack, menu = frames[0]["message"], frames[1]["message"]
    assert frames[0]["request_id"] == "c1" and ack["text"] == "Good morning"
    assert menu["id"] > ack["id"] and menu["conversation_id"] == ack["conversation_id"]
    assert (menu["direction"], menu["author"]) == ("out", "Bank")
    assert menu["text"].startswith("How can we help you? Reply with a number:")
    assert "1 Payments" in menu["text"] and "2 Claims" in menu["text"]

    # The answer is an ordinary message on a joined socket: its echo and nothing else.
    await customer.send_json_to(
        {"type": "message.send", "client_id": "c2", "text": "2", "request_id": "c2"}
    )
    later = await frames_until_pong(customer, "p2")
    assert [f["type"] for f in later] == ["ack", "message"]
    assert later[1]["message"]["id"] == later[0]["message"]["id"]  # the documented echo
    await customer.disconnect()


async def test_the_queue_position_arrives_live_when_no_operator_is_free():
    customer, _ = await webchat()
    frames = await first_message(customer)
    assert [f["type"] for f in frames] == ["ack", "message"]
    position = frames[1]["message"]
    assert position["text"] == "All our agents are busy. You are number 1 in the queue."
    assert position["author"] == "Bank"
    await customer.disconnect()


async def test_out_of_hours_reply_and_close_arrive_live(staff):
    from routing.models import ResolutionReason
    from tests.routing.factories import operator_make
    from tests.scheduling.factories import CLOSED, hours_set

    @database_sync_to_async
    def closed_and_closing() -> None:
        operator_make(staff, "omar")
        reason = ResolutionReason.objects.create(name="Out of hours")
        hours_set(CLOSED, refer_when_open=False, closed_resolution_id=reason.pk)

    await closed_and_closing()
    customer, _ = await webchat()
    frames = await first_message(customer)
    assert [f["type"] for f in frames] == ["ack", "message", "conversation_closed"]
    assert frames[1]["message"]["text"].startswith("We are closed. We open ")
    # The close's own doorbell, arriving late, is not a second conversation_closed.
    group = webchat_group(await _customer_of(frames[0]["message"]["conversation_id"]))
    await get_channel_layer().group_send(group, {"type": "webchat.closed"})
    assert await frames_until_pong(customer, "p2") == []
    await customer.disconnect()


async def test_a_late_doorbell_for_a_caught_up_message_is_not_delivered_twice():
    """A doorbell can reach the group after the join for a message the catch-up already
    read (committed before the read, announced after it): it is dropped, and a new
    message's doorbell still goes through."""
    customer, _ = await webchat()
    frames = await first_message(customer)
    ack, position = frames[0]["message"], frames[1]["message"]
    group = webchat_group(await _customer_of(ack["conversation_id"]))
    layer = get_channel_layer()
    await layer.group_send(group, {"type": "webchat.message", "message": position})
    assert await frames_until_pong(customer) == []

    newer = dict(position, id=position["id"] + 1000, text="a newer message")
    await layer.group_send(group, {"type": "webchat.message", "message": newer})
    assert messages(await frames_until_pong(customer, "p2")) == [newer]
    await customer.disconnect()


@database_sync_to_async
def _customer_of(conversation_id: str) -> str:
    from chat.models import Conversation

    return str(Conversation.objects.get(pk=conversation_id).customer_id)


async def test_a_returning_visitor_gets_no_catch_up_of_their_history(staff):
    """A resumed socket joined at connect and read its history then: a message it sends
    is acked and echoed, nothing is replayed."""
    await database_sync_to_async(staff)("op", online=True)
    customer, session = await webchat()
    await first_message(customer, "first")
    await customer.disconnect()

    again, _ = await webchat(f"?token={session['token']}")
    history = await again.receive_json_from(timeout=5)
    assert [m["text"] for m in history["messages"]] == ["first"]
    await again.send_json_to(
        {"type": "message.send", "client_id": "c2", "text": "second", "request_id": "c2"}
    )
    frames = await frames_until_pong(again)
    assert [f["type"] for f in frames] == ["ack", "message"]
    assert [m["text"] for m in messages(frames)] == ["second"]
    await again.disconnect()
