"""The transports of template sending and outreach: the console frames ``template.options``,
``template.send``, ``outreach.customers``, ``outreach.start`` and their REST twins.  Frames and
JSON only; the rules are tested in test_send.py."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from chat import services as chat_services
from chat.consumers import ConsoleConsumer
from chat.models import Conversation
from hsm.models import Status
from hub.roles import Role
from tests.hsm.factories import template_make
from tests.hsm.test_send import PARAMETERS, RENDERED, WHATSAPP

WA_ID = "34600333444"


@pytest.fixture(autouse=True)
def whatsapp_on(settings):
    for name, value in WHATSAPP.items():
        setattr(settings, name, value)
    # The outbox may try a send after commit: never towards the real Cloud API.
    settings.WHATSAPP_API_BASE_URL = "http://127.0.0.1:9"
    settings.WHATSAPP_SEND_ATTEMPTS = 1


def _setup(staff):
    """An approved template, an operator holding a WhatsApp conversation whose window is
    closed, and another operator."""
    coordinator = staff("api-coord", Role.COORDINATOR)
    template = template_make(coordinator, Status.APPROVED)
    op = staff("api-op", online=True)
    other = staff("api-other")
    result = chat_services.inbound_message_receive(
        channel="whatsapp",
        external_id=WA_ID,
        channel_message_id="wamid.api",
        text="Hola",
        display_name="Ana",
    )
    conversation_id = result.conversation["id"]
    Conversation.objects.filter(pk=conversation_id).update(
        last_customer_message_at=timezone.now() - timedelta(days=2)
    )
    return template, op, other, conversation_id


def _post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


# --- REST ------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_rest_lists_and_sends_a_template_idempotently(client, staff):
    template, op, _, conversation_id = _setup(staff)
    client.force_login(op)
    url = f"/api/conversations/{conversation_id}/templates/"
    listed = client.get(url).json()
    assert [t["id"] for t in listed["templates"]] == [template["id"]]
    assert listed["takes_templates"] is True
    body = {"template_id": template["id"], "parameters": PARAMETERS, "client_id": "rest-1"}
    created = _post(client, url, body)
    assert created.status_code == 201, created.json()
    assert created.json()["message"]["text"] == RENDERED
    assert created.json()["message"]["kind"] == "template"
    again = _post(client, url, body)
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["message"]["id"] == created.json()["message"]["id"]


@pytest.mark.django_db
def test_rest_refusals_are_precise(client, staff):
    template, op, other, conversation_id = _setup(staff)
    url = f"/api/conversations/{conversation_id}/templates/"
    client.force_login(other)
    body = {"template_id": template["id"], "parameters": PARAMETERS, "client_id": "x"}
    refused = _post(client, url, body)
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    client.force_login(op)
    wrong = _post(client, url, dict(body, parameters=["Ana"]))
    assert wrong.status_code == 400
    assert wrong.json()["data"] == {
        "field": "parameters",
        "reason": "parameters_count",
        "expected": 3,
        "given": 1,
    }
    missing = _post(client, url, {"parameters": PARAMETERS, "client_id": "x"})
    assert missing.status_code == 400 and missing.json()["data"]["field"] == "template_id"


@pytest.mark.django_db
def test_rest_outreach_starts_a_conversation_or_points_at_the_open_one(client, staff):
    template, op, other, conversation_id = _setup(staff)
    customer_id = str(Conversation.objects.get(pk=conversation_id).customer_id)
    client.force_login(other)
    found = client.get("/api/outreach/customers/?q=ana").json()["customers"]
    assert [(c["id"], c["open_conversation"]["id"]) for c in found] == [
        (customer_id, conversation_id)
    ]
    body = {
        "customer_id": customer_id,
        "template_id": template["id"],
        "parameters": PARAMETERS,
        "client_id": "out-1",
    }
    busy = _post(client, "/api/outreach/", body)
    assert busy.status_code == 409
    assert busy.json()["code"] == "conflict"
    assert busy.json()["data"]["conversation_id"] == conversation_id
    chat_services.conversation_close(actor=op, conversation_id=conversation_id)
    started = _post(client, "/api/outreach/", body)
    assert started.status_code == 201, started.json()
    assert started.json()["conversation"]["operator_id"] == other.pk
    assert started.json()["message"]["text"] == RENDERED


# --- the console socket ------------------------------------------------------------------------
async def _console(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), "/ws/console/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    while (await communicator.receive_json_from(timeout=5))["type"] != "snapshot":
        pass
    return communicator


async def _outbox_settled(message_id: int) -> None:
    """Wait (bounded) for the console's after-commit dispatch of a message to finish its
    attempt, so no send is still writing when the test database is flushed."""
    from chat.models import Message

    def settled() -> bool:
        row = Message.objects.filter(pk=message_id).values("outbox_attempts", "outbox_lease_until")
        row = row.first()
        return row is None or (row["outbox_attempts"] > 0 and row["outbox_lease_until"] is None)

    for _ in range(200):
        if await database_sync_to_async(settled)():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the outbox never finished with message {message_id}")


async def _answer(communicator, request_id):
    while True:
        frame = await communicator.receive_json_from(timeout=5)
        if frame.get("request_id") == request_id:
            return frame


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_console_frames_offer_send_and_refuse(staff):
    template, op, other, conversation_id = await database_sync_to_async(_setup)(staff)
    console = await _console(op)
    await console.send_json_to(
        {"type": "template.options", "conversation_id": conversation_id, "request_id": "o1"}
    )
    options = await _answer(console, "o1")
    assert options["type"] == "template_options"
    assert options["conversation_id"] == conversation_id
    assert [t["name"] for t in options["templates"]] == ["claim_follow_up"]

    send = {
        "type": "template.send",
        "conversation_id": conversation_id,
        "template_id": template["id"],
        "parameters": PARAMETERS,
        "client_id": "ws-1",
        "request_id": "s1",
    }
    await console.send_json_to(send)
    ack = await _answer(console, "s1")
    assert ack["type"] == "ack" and ack["created"] is True
    assert ack["message"]["text"] == RENDERED and ack["message"]["status"] == "pending"

    bad = dict(send, parameters=["R-7", "", "R-7"], client_id="ws-bad", request_id="s2")
    await console.send_json_to(bad)
    wrong = await _answer(console, "s2")
    assert (wrong["type"], wrong["code"]) == ("error", "invalid_value")
    assert wrong["data"]["field"] == "parameters" and wrong["data"]["index"] == 1
    await console.disconnect()

    # Another operator cannot send in it, nor see its templates.
    intruder = await _console(other)
    await intruder.send_json_to(dict(send, client_id="ws-2", request_id="s3"))
    refused = await _answer(intruder, "s3")
    assert (refused["type"], refused["code"]) == ("error", "not_found")
    await intruder.send_json_to(
        {"type": "template.options", "conversation_id": conversation_id, "request_id": "o2"}
    )
    assert (await _answer(intruder, "o2"))["code"] == "not_found"
    await intruder.disconnect()
    await _outbox_settled(ack["message"]["id"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_console_outreach_frames(staff):
    template, op, other, conversation_id = await database_sync_to_async(_setup)(staff)
    await database_sync_to_async(chat_services.conversation_close)(
        actor=op, conversation_id=conversation_id
    )
    console = await _console(other)
    await console.send_json_to({"type": "outreach.customers", "query": "600333", "request_id": 1})
    found = await _answer(console, 1)
    assert found["type"] == "outreach_customers"
    [customer] = found["customers"]
    assert customer["phone"] == WA_ID and customer["open_conversation"] is None
    await console.send_json_to(
        {
            "type": "outreach.start",
            "customer_id": customer["id"],
            "template_id": template["id"],
            "parameters": PARAMETERS,
            "client_id": "ws-out",
            "request_id": 2,
        }
    )
    ack = await _answer(console, 2)
    assert ack["type"] == "ack" and ack["created"] is True
    assert ack["conversation"]["operator_id"] == other.pk
    assert ack["message"]["kind"] == "template"
    # The console's stream announces it like any assignment.
    while True:
        frame = await console.receive_json_from(timeout=5)
        if frame.get("name") == "routing.conversation_assigned":
            break
    assert frame["data"]["conversation"]["id"] == ack["conversation"]["id"]
    await console.disconnect()
    await _outbox_settled(ack["message"]["id"])
