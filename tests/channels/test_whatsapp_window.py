"""The 24-hour customer-service window for free-form replies (WhatsApp), at its edges:
the customer's last message is moved in the database, nothing sleeps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import selectors, services
from chat.models import ConsoleEvent, Conversation, Message
from hub.exceptions import Conflict, ErrorCode, ReplyWindowClosed

pytestmark = pytest.mark.django_db

WHATSAPP = {
    "WHATSAPP_PHONE_NUMBER_ID": "100200300",
    "WHATSAPP_ACCESS_TOKEN": "token",
    "WHATSAPP_APP_SECRET": "secret",
    "WHATSAPP_VERIFY_TOKEN": "verify",
}


@pytest.fixture
def whatsapp_on(settings):
    for name, value in WHATSAPP.items():
        setattr(settings, name, value)


def _conversation(staff, channel="whatsapp"):
    op = staff("op", online=True)
    result = services.inbound_message_receive(
        channel=channel, external_id="34600111222", channel_message_id="wamid.in", text="Hola"
    )
    conversation = Conversation.objects.get(pk=result.conversation["id"])
    return op, conversation


def _age(conversation, age: timedelta):
    last = timezone.now() - age
    Conversation.objects.filter(pk=conversation.pk).update(last_customer_message_at=last)
    return last


def test_a_reply_just_before_24h_is_accepted(whatsapp_on, staff):
    op, conversation = _conversation(staff)
    _age(conversation, timedelta(hours=24) - timedelta(seconds=30))
    result = services.operator_message_send(
        actor=op, conversation_id=conversation.id, client_id="c1", text="Still here"
    )
    assert result.created
    assert result.message["status"] == "pending"


def test_a_reply_just_after_24h_is_refused_and_records_nothing(whatsapp_on, staff):
    op, conversation = _conversation(staff)
    last = _age(conversation, timedelta(hours=24, seconds=1))
    messages, events = Message.objects.count(), ConsoleEvent.objects.count()
    with pytest.raises(ReplyWindowClosed) as refused:
        services.operator_message_send(
            actor=op, conversation_id=conversation.id, client_id="c1", text="Too late"
        )
    assert refused.value.code == ErrorCode.REPLY_WINDOW_CLOSED
    assert refused.value.status == 409
    assert refused.value.data["closed_at"] == (last + timedelta(hours=24)).isoformat()
    assert "template" in refused.value.message
    assert (Message.objects.count(), ConsoleEvent.objects.count()) == (messages, events)
    conversation.refresh_from_db()
    assert conversation.first_operator_reply_at is None


def test_a_template_is_allowed_after_the_window_closed(whatsapp_on, staff):
    op, conversation = _conversation(staff)
    _age(conversation, timedelta(days=3))
    result = services.operator_template_send(
        actor=op,
        conversation_id=conversation.id,
        client_id="t1",
        name="claim_follow_up",
        language="es",
        text="Hola, seguimos con su reclamación.",
    )
    assert result.message["kind"] == "template"
    assert result.message["payload"] == {
        "name": "claim_follow_up",
        "language": "es",
        "components": [],
    }


def test_a_retried_client_id_after_the_window_closed_returns_the_first_reply(whatsapp_on, staff):
    op, conversation = _conversation(staff)
    first = services.operator_message_send(
        actor=op, conversation_id=conversation.id, client_id="c1", text="Hi"
    )
    _age(conversation, timedelta(hours=25))
    again = services.operator_message_send(
        actor=op, conversation_id=conversation.id, client_id="c1", text="Hi"
    )
    assert not again.created and again.message["id"] == first.message["id"]


def test_the_conversation_tells_the_console_when_the_window_closes(whatsapp_on, staff):
    _, conversation = _conversation(staff)
    last = _age(conversation, timedelta(hours=2))
    conversation.refresh_from_db()
    summary = selectors.conversation_dict(conversation)
    assert summary["reply_window_closes_at"] == (last + timedelta(hours=24)).isoformat()
    assert summary["channel"] == "whatsapp"


def test_the_http_api_answers_reply_window_closed(whatsapp_on, staff, client):
    op, conversation = _conversation(staff)
    _age(conversation, timedelta(hours=30))
    client.force_login(op)
    response = client.post(
        f"/api/conversations/{conversation.id}/messages/",
        {"client_id": "c1", "text": "Too late"},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "reply_window_closed"
    assert response.json()["data"]["closed_at"]


def test_web_chat_has_no_window(staff):
    op, conversation = _conversation(staff, channel="webchat")
    _age(conversation, timedelta(days=30))
    conversation.refresh_from_db()
    assert selectors.conversation_dict(conversation)["reply_window_closes_at"] is None
    result = services.operator_message_send(
        actor=op, conversation_id=conversation.id, client_id="c1", text="Hello again"
    )
    assert result.created
    assert result.message["status"] == "sent"


def test_replying_on_an_unconfigured_whatsapp_channel_is_refused(staff):
    op, conversation = _conversation(staff)
    with pytest.raises(Conflict) as refused:
        services.operator_message_send(
            actor=op, conversation_id=conversation.id, client_id="c1", text="Hi"
        )
    assert refused.value.code == ErrorCode.CONFLICT
    assert "not configured" in refused.value.message
    assert Message.objects.filter(direction="out").count() == 0
