"""Routing frames on the console socket (chat/consumers.py ConsoleConsumer): transfers,
type corrections, closing with a reason, derivation preview and run, routing options.
Frames only: the rules are tested at the service level (test_services_routing.py)."""

from __future__ import annotations

import itertools

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat import services
from chat.consumers import ConsoleConsumer
from hub.roles import Role
from routing.models import QueryType, ResolutionReason
from routing.services import operator_state_get, presence_set

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

_request_ids = itertools.count(1)


async def console(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), "/ws/console/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "hello"
    assert (await communicator.receive_json_from())["type"] == "snapshot"
    return communicator


async def ask(communicator, frame: dict) -> dict:
    """Send a frame with a fresh request_id and return the reply that carries it, skipping
    the event frames pushed meanwhile."""
    request_id = f"r{next(_request_ids)}"
    await communicator.send_json_to({**frame, "request_id": request_id})
    while True:
        reply = await communicator.receive_json_from(timeout=5)
        if reply.get("request_id") == request_id:
            return reply
        assert reply["type"] == "event", reply


async def until(communicator, predicate, wait=5) -> dict:
    while True:
        frame = await communicator.receive_json_from(timeout=wait)
        if predicate(frame):
            return frame


@database_sync_to_async
def setup_operator(staff, name, *, types=(), capacity=5, online=True, role=Role.OPERATOR):
    user = staff(name, role, online=online)
    state = operator_state_get(user_id=user.pk)
    state.capacity = capacity
    state.save()
    state.query_types.set(types)
    return user


@database_sync_to_async
def open_conversation(visitor, *, entry=None) -> str:
    received = services.webchat_message_receive(
        visitor_id=visitor, client_id=f"{visitor}-1", text="hello", entry_point=entry
    )
    return received.conversation["id"]


@database_sync_to_async
def query_types() -> dict[str, QueryType]:
    return {
        "claims": QueryType.objects.create(code="claims", name="Claims", priority=300),
        "payments": QueryType.objects.create(code="payments", name="Payments", priority=200),
    }


@pytest.fixture
def astaff(staff):
    return database_sync_to_async(staff)


# --- conversation.transfer --------------------------------------------------------------
async def test_transfer_acks_and_reaches_the_new_operators_console(staff, astaff):
    a = await setup_operator(staff, "a")
    conversation_id = await open_conversation("v1")
    b = await setup_operator(staff, "b")
    coordinator = await console(await astaff("coord", Role.COORDINATOR))
    target = await console(b)

    ack = await ask(
        coordinator,
        {
            "type": "conversation.transfer",
            "conversation_id": conversation_id,
            "to_operator_id": b.pk,
        },
    )
    assert ack["type"] == "ack"
    assert (ack["conversation"]["id"], ack["conversation"]["operator_id"]) == (
        conversation_id,
        b.pk,
    )
    event = await until(target, lambda f: f.get("name") == "routing.conversation_assigned")
    assert event["conversation_id"] == conversation_id
    assignment = event["data"]["assignment"]
    assert (assignment["kind"], assignment["from_operator_id"], assignment["to_operator_id"]) == (
        "transferred",
        a.pk,
        b.pk,
    )
    await coordinator.disconnect()
    await target.disconnect()


async def test_transfer_with_explicit_null_requeues(staff, astaff):
    a = await setup_operator(staff, "a")
    conversation_id = await open_conversation("v1")
    source = await console(a)
    coordinator = await console(await astaff("coord", Role.COORDINATOR))
    ack = await ask(
        coordinator,
        {
            "type": "conversation.transfer",
            "conversation_id": conversation_id,
            "to_operator_id": None,
        },
    )
    assert (ack["conversation"]["status"], ack["conversation"]["operator_id"]) == ("queued", None)
    gone = await until(source, lambda f: f.get("name") == "routing.conversation_unassigned")
    assert gone["data"]["conversation_id"] == conversation_id
    await coordinator.disconnect()
    await source.disconnect()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "missing_field"),
        ({"to_operator_id": "b"}, "wrong_type"),
        ({"to_operator_id": 999_999}, "not_found"),
        ({"to_operator_id": "B", "force": 1}, "wrong_type"),
        ({"to_operator_id": "B", "note": ["x"]}, "wrong_type"),
    ],
)
async def test_transfer_field_errors(staff, astaff, fields, code):
    await setup_operator(staff, "a")
    conversation_id = await open_conversation("v1")
    b = await setup_operator(staff, "b")
    coordinator = await console(await astaff("coord", Role.COORDINATOR))
    fields = {k: b.pk if v == "B" else v for k, v in fields.items()}
    reply = await ask(
        coordinator, {"type": "conversation.transfer", "conversation_id": conversation_id, **fields}
    )
    assert (reply["type"], reply["code"]) == ("error", code)
    assert "field" in reply["data"]
    # The socket stays usable after a refusal.
    assert (await ask(coordinator, {"type": "ping"}))["type"] == "pong"
    await coordinator.disconnect()


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("operator", "permission_denied"),
        ("offline", "operator_unavailable"),
        ("unqualified", "operator_unqualified"),
        ("full", "operator_at_capacity"),
    ],
)
async def test_transfer_refusals(staff, astaff, setup, code):
    types = await query_types()
    a = await setup_operator(staff, "a")
    conversation_id = await open_conversation("v1", entry="claims")
    target = await setup_operator(
        staff,
        "b",
        online=setup != "offline",
        types=[types["payments"]] if setup == "unqualified" else [],
        capacity=0 if setup == "full" else 5,
    )
    actor = a if setup == "operator" else await astaff("coord", Role.COORDINATOR)
    socket = await console(actor)
    reply = await ask(
        socket,
        {
            "type": "conversation.transfer",
            "conversation_id": conversation_id,
            "to_operator_id": target.pk,
        },
    )
    assert (reply["type"], reply["code"]) == ("error", code)
    await socket.disconnect()


# --- conversation.set_type and conversation.close ------------------------------------------
async def test_set_type_acks_with_the_new_type(staff, astaff):
    types = await query_types()
    op = await setup_operator(staff, "op")
    conversation_id = await open_conversation("v1")
    socket = await console(op)
    ack = await ask(
        socket,
        {
            "type": "conversation.set_type",
            "conversation_id": conversation_id,
            "query_type_id": types["claims"].pk,
        },
    )
    assert ack["type"] == "ack"
    assert ack["conversation"]["query_type"]["code"] == "claims"
    unknown = await ask(
        socket,
        {"type": "conversation.set_type", "conversation_id": conversation_id, "query_type_id": 999},
    )
    assert (unknown["code"], unknown["data"]["field"]) == ("not_found", "query_type_id")
    missing = await ask(
        socket, {"type": "conversation.set_type", "conversation_id": conversation_id}
    )
    assert missing["code"] == "missing_field"
    await socket.disconnect()


async def test_close_requires_a_resolution_once_reasons_exist(staff):
    op = await setup_operator(staff, "op")
    conversation_id = await open_conversation("v1")
    solved = await database_sync_to_async(ResolutionReason.objects.create)(name="Solved")
    socket = await console(op)
    refused = await ask(socket, {"type": "conversation.close", "conversation_id": conversation_id})
    assert refused["code"] == "resolution_required"
    assert refused["data"]["allowed"] == [{"id": solved.pk, "name": "Solved"}]
    ack = await ask(
        socket,
        {
            "type": "conversation.close",
            "conversation_id": conversation_id,
            "resolution_id": solved.pk,
        },
    )
    assert ack["conversation"]["status"] == "closed"
    assert ack["conversation"]["resolution"] == {"id": solved.pk, "name": "Solved"}
    await socket.disconnect()


# --- derivation.preview and derivation.run ---------------------------------------------------
@database_sync_to_async
def absent_with(staff, n):
    absent = staff("absent", Role.OPERATOR, online=True)
    for index in range(n):
        services.webchat_message_receive(visitor_id=f"c{index}", client_id="1", text="hi")
    presence_set(actor=absent, presence="offline")
    return absent


async def test_admin_previews_then_runs_a_derivation(staff, astaff):
    absent = await absent_with(staff, 2)
    b = await setup_operator(staff, "b")
    admin = await console(await astaff("admin", Role.ADMIN))
    target = await console(b)
    request = {"from_operator_id": absent.pk, "to_operator_id": b.pk}

    preview = await ask(admin, {"type": "derivation.preview", **request})
    assert preview["type"] == "derivation_preview"
    assert (preview["count"], preview["per_target"]) == (2, {str(b.pk): 2})

    ack = await ask(admin, {"type": "derivation.run", **request, "note": "holiday"})
    assert ack["type"] == "ack"
    assert (ack["derivation"]["count"], ack["derivation"]["mode"]) == (2, "to_operator")
    assert isinstance(ack["derivation"]["batch_id"], int)
    moved = await until(target, lambda f: f.get("name") == "routing.conversations_assigned")
    assert sorted(c["id"] for c in moved["data"]["conversations"]) == sorted(
        preview["conversation_ids"]
    )
    assert moved["data"]["batch"]["id"] == ack["derivation"]["batch_id"]
    await admin.disconnect()
    await target.disconnect()


async def test_spread_preview_with_explicit_null(staff, astaff):
    absent = await absent_with(staff, 1)
    b = await setup_operator(staff, "b")
    admin = await console(await astaff("admin", Role.ADMIN))
    preview = await ask(
        admin, {"type": "derivation.preview", "from_operator_id": absent.pk, "to_operator_id": None}
    )
    assert (preview["mode"], preview["per_target"]) == ("spread", {str(b.pk): 1})
    await admin.disconnect()


@pytest.mark.parametrize("frame_type", ["derivation.preview", "derivation.run"])
@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("coordinator", "permission_denied"),
        ("idle", "nothing_to_derive"),
        ("no_target_key", "missing_field"),
        ("unknown_source", "not_found"),
        ("small_target", "operator_at_capacity"),
    ],
)
async def test_derivation_refusals(staff, astaff, frame_type, case, code):
    absent = await absent_with(staff, 2)
    b = await setup_operator(staff, "b", capacity=1 if case == "small_target" else 5)
    idle = await setup_operator(staff, "idle")
    role = Role.COORDINATOR if case == "coordinator" else Role.ADMIN
    socket = await console(await astaff("boss", role))
    frame = {
        "type": frame_type,
        "from_operator_id": {"idle": idle.pk, "unknown_source": 999_999}.get(case, absent.pk),
        "to_operator_id": b.pk,
    }
    if case == "no_target_key":
        del frame["to_operator_id"]
    reply = await ask(socket, frame)
    assert (reply["type"], reply["code"]) == ("error", code)
    await socket.disconnect()


# --- routing.options ------------------------------------------------------------------------
async def test_routing_options_operators_only_for_those_who_may_transfer(staff, astaff):
    types = await query_types()
    op = await setup_operator(staff, "op", types=[types["claims"]], capacity=3)
    await open_conversation("v1", entry="claims")
    coordinator = await console(await astaff("coord", Role.COORDINATOR))
    options = await ask(coordinator, {"type": "routing.options"})
    assert options["type"] == "routing_options"
    assert [t["code"] for t in options["query_types"]] == ["claims", "payments"]
    row = next(o for o in options["operators"] if o["id"] == op.pk)
    assert (row["presence"], row["load"], row["capacity"], row["query_type_ids"]) == (
        "online",
        1,
        3,
        [types["claims"].pk],
    )
    await coordinator.disconnect()

    operator_socket = await console(op)
    mine = await ask(operator_socket, {"type": "routing.options"})
    assert mine["operators"] == [] and len(mine["query_types"]) == 2
    await operator_socket.disconnect()
