"""Internal notes (chat.services.conversation_note_add): who may write them, idempotency,
precise refusals, the console event and history, and that no customer path ever carries
one (web chat history and sockets, the WhatsApp outbox) nor counts it as a reply."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chat import selectors, services
from chat.models import NOTE_MAX_CHARS, ConsoleEvent, Conversation, ConversationNote, Message
from hub.exceptions import Conflict, ErrorCode, NotFound, PermissionDenied, ValidationFailed
from hub.roles import Role
from tests.chat.test_consumers import console, until, webchat
from tests.chat.whatsapp_support import wa  # noqa: F401  (fixture)


def _receive(visitor: str = "v1", client_id: str = "c1", text: str = "hello"):
    return services.webchat_message_receive(visitor_id=visitor, client_id=client_id, text=text)


def _note(actor, conversation_id, *, client_id: str = "n1", text: str = "Called the branch"):
    return services.conversation_note_add(
        actor=actor, conversation_id=conversation_id, client_id=client_id, text=text
    )


# --- the service ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_operator_notes_their_conversation_and_staff_are_told_after_commit(
    staff, django_capture_on_commit_callbacks
):
    op = staff("op", online=True)
    conversation_id = _receive().conversation["id"]
    before = Conversation.objects.get()
    with django_capture_on_commit_callbacks() as callbacks:
        result = _note(op, conversation_id)
    assert result.created
    note = ConversationNote.objects.get()
    assert (note.author_id, note.text, str(note.conversation_id)) == (
        op.pk,
        "Called the branch",
        conversation_id,
    )
    assert result.note == {
        "id": note.pk,
        "conversation_id": conversation_id,
        "author": {"id": op.pk, "name": "op"},
        "text": "Called the branch",
        "created_at": note.created_at.isoformat(),
        "visibility": "internal",
    }
    event = ConsoleEvent.objects.order_by("-id").first()
    assert (event.kind, event.operator_id, str(event.conversation_id)) == (
        "chat.note_added",
        op.pk,
        conversation_id,
    )
    assert event.payload == {"note": result.note, "conversation_id": conversation_id}
    assert len(callbacks) == 1  # the doorbell rings only once the note is committed
    # A note is not an answer: the conversation's reply, unread and preview facts stand.
    after = Conversation.objects.get()
    assert after.first_operator_reply_at is None
    assert (after.unread_count, after.last_message_id, after.last_message_at) == (
        before.unread_count,
        before.last_message_id,
        before.last_message_at,
    )
    assert Message.objects.filter(direction="out").count() == 0


@pytest.mark.django_db
def test_retried_client_id_returns_the_first_note_and_announces_once(staff):
    op = staff("op", online=True)
    conversation_id = _receive().conversation["id"]
    first = _note(op, conversation_id, client_id="same", text="first")
    again = _note(op, conversation_id, client_id="same", text="first (retried)")
    assert not again.created
    assert again.note == first.note
    assert ConversationNote.objects.count() == 1
    assert ConsoleEvent.objects.filter(kind="chat.note_added").count() == 1
    # Another author may use the same client_id: ids are the author's own.
    coordinator = staff("coord", Role.COORDINATOR)
    assert _note(coordinator, conversation_id, client_id="same").created


@pytest.mark.django_db
def test_client_id_reused_on_another_conversation_is_a_conflict(staff):
    op = staff("op", online=True)
    one = _receive(visitor="a").conversation["id"]
    two = _receive(visitor="b").conversation["id"]
    _note(op, one, client_id="k")
    with pytest.raises(Conflict) as refused:
        _note(op, two, client_id="k")
    assert refused.value.data == {"field": "client_id"}
    assert ConversationNote.objects.count() == 1


@pytest.mark.django_db
def test_supervisor_notes_any_conversation_open_or_closed(staff):
    op = staff("op", online=True)
    coordinator = staff("coord", Role.COORDINATOR)
    conversation_id = _receive().conversation["id"]
    assert _note(coordinator, conversation_id, client_id="c1").note["author"]["id"] == (
        coordinator.pk
    )
    services.conversation_close(actor=op, conversation_id=conversation_id)
    # After closing, its operator and the supervisors still see it, so they may note it.
    assert _note(op, conversation_id, client_id="o2").created
    assert _note(coordinator, conversation_id, client_id="c2").created


@pytest.mark.django_db
def test_operator_not_on_the_conversation_gets_not_found(staff):
    staff("owner", online=True)
    other = staff("other")
    conversation_id = _receive().conversation["id"]
    with pytest.raises(NotFound) as refused:
        _note(other, conversation_id)
    assert refused.value.code == ErrorCode.NOT_FOUND
    assert refused.value.data == {"conversation_id": conversation_id}
    with pytest.raises(NotFound):
        _note(other, "not-a-uuid")
    assert not ConversationNote.objects.exists()
    assert not ConsoleEvent.objects.filter(kind="chat.note_added").exists()


@pytest.mark.django_db
def test_advisors_are_read_only(staff):
    staff("op", online=True)
    advisor = staff("ada", Role.ADVISOR)
    conversation_id = _receive().conversation["id"]
    with pytest.raises(PermissionDenied) as refused:
        _note(advisor, conversation_id)
    assert refused.value.code == ErrorCode.PERMISSION_DENIED
    assert refused.value.data == {"reason": "read_only"}
    assert not ConversationNote.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "client_id", "field", "data"),
    [
        ("", "n1", "text", {}),
        ("   \n ", "n1", "text", {}),
        ("x" * (NOTE_MAX_CHARS + 1), "n1", "text", {"max_chars": NOTE_MAX_CHARS}),
        ("fine", "", "client_id", {}),
        ("fine", "k" * 101, "client_id", {}),
    ],
)
def test_invalid_notes_are_refused_precisely(staff, text, client_id, field, data):
    op = staff("op", online=True)
    conversation_id = _receive().conversation["id"]
    with pytest.raises(ValidationFailed) as refused:
        _note(op, conversation_id, client_id=client_id, text=text)
    assert refused.value.code == ErrorCode.INVALID_VALUE
    assert refused.value.data == {"field": field, **data}
    assert not ConversationNote.objects.exists()


@pytest.mark.django_db
def test_a_note_of_the_maximum_length_is_kept_whole(staff):
    op = staff("op", online=True)
    conversation_id = _receive().conversation["id"]
    text = "y" * NOTE_MAX_CHARS
    assert _note(op, conversation_id, text=f"  {text}\n").note["text"] == text


# --- reading: the console's history, never the customer's ---------------------------------


@pytest.mark.django_db
def test_history_brings_notes_to_staff_and_the_customer_never_sees_them(staff):
    op = staff("op", online=True)
    coordinator = staff("coord", Role.COORDINATOR)
    received = _receive(text="my card")
    conversation_id = received.conversation["id"]
    _note(op, conversation_id, text="Card was blocked by fraud team")
    services.operator_message_send(
        actor=op, conversation_id=conversation_id, client_id="r1", text="Let me check"
    )
    for reader in (op, coordinator):
        page = selectors.conversation_history(
            actor=reader, conversation_id=conversation_id, before_id=None, limit=50
        )
        assert [m["text"] for m in page["messages"]] == ["my card", "Let me check"]
        assert [(n["text"], n["visibility"]) for n in page["notes"]] == [
            ("Card was blocked by fraud team", "internal")
        ]
    customer_id = received.conversation["customer"]["id"]
    seen = selectors.customer_history(customer_id=customer_id, after_id=None)
    assert [m["text"] for m in seen] == ["my card", "Let me check"]
    since = selectors.webchat_since(
        customer_id=customer_id, conversation_id=conversation_id, after_id=0
    )
    assert [m["text"] for m in since["messages"]] == ["my card", "Let me check"]
    # The console's list preview is the last message, never a note.
    snapshot = selectors.console_snapshot(actor=op)
    assert snapshot["conversations"][0]["last_message"]["text"] == "Let me check"


@pytest.mark.django_db
def test_each_note_arrives_with_exactly_one_history_page(staff):
    op = staff("op", online=True)
    conversation_id = _receive(client_id="m0", text="m0").conversation["id"]
    start = timezone.now()
    # Three messages and a note after each, spaced in time so pages split between them.
    for i in range(1, 4):
        _receive(client_id=f"m{i}", text=f"m{i}")
        note = _note(op, conversation_id, client_id=f"n{i}", text=f"n{i}")
        ConversationNote.objects.filter(pk=note.note["id"]).update(
            created_at=start + timedelta(minutes=i, seconds=30)
        )
        Message.objects.filter(text=f"m{i}").update(created_at=start + timedelta(minutes=i))
    Message.objects.filter(text="m0").update(created_at=start)

    def page(before_id):
        return selectors.conversation_history(
            actor=op, conversation_id=conversation_id, before_id=before_id, limit=2
        )

    newest = page(None)
    assert [m["text"] for m in newest["messages"]] == ["m2", "m3"]
    assert [n["text"] for n in newest["notes"]] == ["n2", "n3"]
    older = page(newest["messages"][0]["id"])
    assert [m["text"] for m in older["messages"]] == ["m0", "m1"]
    assert [n["text"] for n in older["notes"]] == ["n1"]
    assert not older["has_more"]


@pytest.mark.django_db
def test_a_note_is_not_a_first_response_on_the_dashboard(staff):
    from hub import dashboard

    op = staff("op", online=True)
    conversation_id = _receive().conversation["id"]
    _note(op, conversation_id)
    today = timezone.localdate()
    period = dashboard.period_parse(
        raw_from=today.isoformat(), raw_to=(today + timedelta(days=1)).isoformat()
    )
    figures = dashboard.dashboard_period(actor=staff("boss", Role.ADMIN), period=period)
    assert figures["first_response"]["count"] == 0
    assert figures["first_response"]["unanswered"] == 1


# --- WhatsApp: a note never leaves the hub --------------------------------------------------

WA_ID = "34600111333"


@pytest.mark.django_db(transaction=True)
def test_a_note_on_a_whatsapp_conversation_is_never_sent(wa, staff):  # noqa: F811
    from chat.channels.outbox import outbox_sweep

    op = staff("op", online=True)
    assert wa.customer_writes(WA_ID, text="Hola", name="Ana")["hub_status"] == 200
    conversation = Conversation.objects.get()
    _note(op, conversation.pk, text="Customer sounds worried: call back")
    assert not Message.objects.filter(direction="out").exists()
    assert "dispatch" not in outbox_sweep()  # nothing is due
    assert wa.outbound(WA_ID) == []
    # The same path does send a reply: the note's absence is not a dead outbox.
    services.operator_message_send(
        actor=op, conversation_id=conversation.pk, client_id="r1", text="Buenos días"
    )
    assert outbox_sweep()["dispatch"] == {"accepted": 1}
    sent = wa.outbound(WA_ID)
    assert [m["text"] for m in sent] == ["Buenos días"]


# --- REST ------------------------------------------------------------------------------------


def _post(client, url, body):
    import json

    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.mark.django_db
def test_rest_notes_endpoint(client, staff):
    op = staff("op", online=True)
    conversation_id = _receive().conversation["id"]
    url = f"/api/conversations/{conversation_id}/notes/"
    client.force_login(op)
    first = _post(client, url, {"client_id": "a", "text": "VIP customer"})
    again = _post(client, url, {"client_id": "a", "text": "VIP customer"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["note"]["id"] == again.json()["note"]["id"]
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    missing = _post(client, url, {"client_id": "b"})
    assert (missing.status_code, missing.json()["code"]) == (400, "missing_field")
    assert missing.json()["data"] == {"field": "text"}
    empty = _post(client, url, {"client_id": "b", "text": " "})
    assert (empty.status_code, empty.json()["code"]) == (400, "invalid_value")
    assert client.get(url).status_code == 405
    history = client.get(f"/api/conversations/{conversation_id}/messages/").json()
    assert [n["text"] for n in history["notes"]] == ["VIP customer"]
    assert [m["text"] for m in history["messages"]] == ["hello"]


@pytest.mark.django_db
def test_rest_refuses_advisors_and_strangers(client, staff):
    staff("op", online=True)
    conversation_id = _receive().conversation["id"]
    url = f"/api/conversations/{conversation_id}/notes/"
    client.force_login(staff("other"))
    stranger = _post(client, url, {"client_id": "a", "text": "x"})
    assert (stranger.status_code, stranger.json()["code"]) == (404, "not_found")
    client.force_login(staff("ada", Role.ADVISOR))
    advisor = _post(client, url, {"client_id": "a", "text": "x"})
    assert advisor.status_code == 403
    assert not ConversationNote.objects.exists()


# --- the console's note.send ------------------------------------------------------------------


@pytest.fixture
def astaff(staff):
    return database_sync_to_async(staff)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_note_send_acks_reaches_the_coordinator_live_and_never_the_customer(astaff):
    op = await astaff("op", online=True)
    coordinator = await astaff("coord", Role.COORDINATOR)
    operator = await console(op)
    watcher = await console(coordinator)
    for socket in (operator, watcher):
        await until(socket, lambda f: f["type"] == "snapshot")
    customer, _ = await webchat()
    await customer.send_json_to({"type": "message.send", "client_id": "c1", "text": "hi"})
    await until(customer, lambda f: f["type"] == "ack")
    created = await until(operator, lambda f: f.get("name") == "chat.message_created")
    conversation_id = created["conversation_id"]

    frame = {
        "type": "note.send",
        "request_id": 5,
        "conversation_id": conversation_id,
        "client_id": "n1",
        "text": "Fraud team confirmed",
    }
    await operator.send_json_to(frame)
    ack = await until(operator, lambda f: f["type"] == "ack")
    assert ack["request_id"] == 5 and ack["created"] is True
    assert ack["note"]["text"] == "Fraud team confirmed"
    assert ack["note"]["visibility"] == "internal"
    for socket in (operator, watcher):
        event = await until(socket, lambda f: f.get("name") == "chat.note_added")
        assert event["data"]["note"] == ack["note"]
        assert event["conversation_id"] == conversation_id

    await operator.send_json_to({**frame, "request_id": 6})
    replay = await until(operator, lambda f: f["type"] == "ack")
    assert (replay["request_id"], replay["created"]) == (6, False)
    assert replay["note"] == ack["note"]

    # The customer's socket got nothing since its ack; a reply reaches it next, first.
    await operator.send_json_to(
        {
            "type": "message.send",
            "conversation_id": conversation_id,
            "client_id": "r1",
            "text": "ok",
        }
    )
    nxt = await customer.receive_json_from(timeout=5)
    assert (nxt["type"], nxt["message"]["text"]) == ("message", "ok")
    await customer.send_json_to({"type": "history", "request_id": 1})
    history = await until(customer, lambda f: f["type"] == "history")
    assert [m["text"] for m in history["messages"]] == ["hi", "ok"]
    for socket in (operator, watcher, customer):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"text": ""}, "invalid_value", "text"),
        ({"text": "x" * (NOTE_MAX_CHARS + 1)}, "invalid_value", "text"),
        ({"text": None}, "missing_field", "text"),
        ({"text": 5}, "wrong_type", "text"),
        ({"client_id": None}, "missing_field", "client_id"),
        ({"conversation_id": None}, "missing_field", "conversation_id"),
    ],
)
async def test_note_send_refusals_are_error_frames(astaff, change, code, field):
    op = await astaff("op", online=True)
    conversation_id = (await database_sync_to_async(_receive)()).conversation["id"]
    operator = await console(op)
    await until(operator, lambda f: f["type"] == "snapshot")
    frame = {
        "type": "note.send",
        "request_id": "r",
        "conversation_id": conversation_id,
        "client_id": "n1",
        "text": "fine",
    }
    frame.update(change)
    await operator.send_json_to({k: v for k, v in frame.items() if v is not None})
    error = await until(operator, lambda f: f["type"] == "error")
    assert (error["request_id"], error["code"], error["data"]["field"]) == ("r", code, field)
    # The socket stays usable.
    await operator.send_json_to({"type": "ping", "request_id": "p"})
    assert (await until(operator, lambda f: f["type"] == "pong"))["request_id"] == "p"
    await operator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_note_send_on_someone_elses_conversation_is_not_found(astaff):
    await astaff("owner", online=True)
    other = await astaff("other")
    conversation_id = (await database_sync_to_async(_receive)()).conversation["id"]
    socket = await console(other)
    await until(socket, lambda f: f["type"] == "snapshot")
    await socket.send_json_to(
        {
            "type": "note.send",
            "request_id": 1,
            "conversation_id": conversation_id,
            "client_id": "n1",
            "text": "sneaky",
        }
    )
    error = await until(socket, lambda f: f["type"] == "error")
    assert (error["request_id"], error["code"]) == (1, "not_found")
    await socket.disconnect()
