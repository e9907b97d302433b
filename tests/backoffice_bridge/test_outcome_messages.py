"""Customer-facing outcome messages: when an action is done, the customer is told in the
chat — in the conversation's language where the type has a translation (English and
Spanish), on the conversation's channel through the normal message service — if the maker
chose it (``notify_customer``, default per type).  A WhatsApp conversation outside the
24-hour window gets nothing: recorded as not sent and said in the internal note.  Over
the real web chat path and the stand-in, on PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice_bridge import actions, consent, services
from backoffice_bridge.actions import ActionType, action_type_get
from backoffice_bridge.executor import executions_wait
from backoffice_bridge.models import ActionRequest, AuditEntry
from chat.models import ConsoleEvent, Conversation, Message
from chat.services import inbound_message_receive, webchat_message_receive
from hub.exceptions import ErrorCode, ValidationFailed
from hub.roles import Role

pytestmark = pytest.mark.django_db(transaction=True)

WHATSAPP = {
    "WHATSAPP_PHONE_NUMBER_ID": "100200300",
    "WHATSAPP_ACCESS_TOKEN": "token",
    "WHATSAPP_APP_SECRET": "secret",
    "WHATSAPP_VERIFY_TOKEN": "verify",
}


@pytest.fixture(autouse=True)
def _drained():
    yield
    assert executions_wait(30)


@pytest.fixture
def people(bo, staff):
    return {
        "maker": staff("cc1", Role.CONTACT_CENTER, online=True),
        "checker": staff("coord1", Role.COORDINATOR),
    }


def _webchat(people, *, language=None, visitor="out-v1"):
    received = webchat_message_receive(
        visitor_id=visitor, client_id="1", text="Help", language=language
    )
    conversation_id = received.conversation["id"]
    services.customer_link(
        actor=people["maker"], conversation_id=conversation_id, bank_user_id="U1001"
    )
    return conversation_id


def _run(people, conversation_id, action_type, params, **kw):
    """Start, approve when it needs a checker, and wait for the executor: the row."""
    req = services.action_request_create(
        actor=people["maker"],
        conversation_id=conversation_id,
        action_type=action_type,
        params=params,
        **kw,
    )
    if req["status"] == "pending":
        services.action_request_approve(actor=people["checker"], request_id=req["id"])
    assert executions_wait(30)
    return ActionRequest.objects.get(pk=req["id"])


def _told(conversation_id):
    return list(
        Message.objects.filter(conversation_id=conversation_id, direction="out")
        .order_by("id")
        .values_list("text", flat=True)
    )


def _note():
    return ConsoleEvent.objects.filter(kind="backoffice.action_outcome").latest("id").payload


def test_block_tells_the_customer_in_spanish(people):
    conversation_id = _webchat(people, language="es-ES")
    row = _run(people, conversation_id, "block_user", {"reason": "lost_device"})
    assert row.status == "done"
    (text,) = _told(conversation_id)
    assert text.startswith("Por su seguridad, hemos bloqueado su acceso a la banca en línea")
    told = row.outcome["customer_message"]
    assert told["sent"] is True and told["language"] == "es" and told["text"] == text
    assert told["message_id"] == Message.objects.get(text=text).id
    payload = _note()
    assert payload["customer_message"] == told
    assert payload["note"].endswith("The customer was told in the chat (es).")
    assert payload["request"]["notify_customer"] is True
    entry = AuditEntry.objects.get(action="request.outcome")
    assert entry.after["outcome"]["customer_message"]["sent"] is True
    # The message is an ordinary hub message on the conversation.
    assert ConsoleEvent.objects.filter(
        kind="chat.message_created", conversation_id=conversation_id
    ).exists()


def test_english_when_there_is_no_translation(people):
    conversation_id = _webchat(people, language="de-DE")  # no German text: English
    row = _run(
        people,
        conversation_id,
        "temporary_limits",
        {"daily_transfer": 3000, "single_transfer": 1000},
    )
    (text,) = _told(conversation_id)
    assert text == (
        "Your transfer limits have been changed for 24 hours: up to 3000 a day and 1000 "
        "per transfer. Then your usual limits apply again."
    )
    assert row.outcome["customer_message"]["language"] == "en"


def test_password_reset_says_how_to_complete_it(people):
    conversation_id = _webchat(people)
    row = _run(people, conversation_id, "reset_password", {})
    (text,) = _told(conversation_id)
    # The stand-in sends a one-time code by SMS, valid for an hour.
    assert text == (
        "We have sent a one-time code by SMS to your registered mobile number; it is valid "
        "for 60 minutes. Use it to choose a new password."
    )
    assert row.business_status == "Password Reset Sent"


def test_dispute_and_cheque_stop_carry_their_reference(people):
    conversation_id = _webchat(people, language="es")
    consent.consent_record(
        actor=people["maker"], conversation_id=conversation_id, evidence="Asked in the chat"
    )
    _run(
        people,
        conversation_id,
        "dispute_transaction",
        {"transaction_id": "TX-5", "amount": "40", "reason": "duplicate"},
    )
    _run(
        people,
        conversation_id,
        "stop_cheque",
        {"cheque_number": "000200", "last_cheque_number": "000202", "reason": "stolen"},
    )
    dispute, stop = _told(conversation_id)
    assert dispute == (
        "Hemos abierto la reclamación DSP000001 por la operación TX-5 (40.00). "
        "Le mantendremos informado."
    )
    assert stop == "Hemos bloqueado los cheques 000200 a 000202 (referencia STP000001)."


def test_the_maker_may_choose_not_to_tell(people, client):
    conversation_id = _webchat(people)
    row = _run(
        people, conversation_id, "block_user", {"reason": "lost_device"}, notify_customer=False
    )
    assert row.status == "done" and _told(conversation_id) == []
    assert row.outcome["notify_customer"] is False and "customer_message" not in row.outcome
    assert "customer" not in _note()["note"]
    assert _note()["customer_message"] is None
    # Over REST, with the flag and a wrong type for it.
    client.force_login(people["maker"])
    url = f"/api/backoffice/conversations/{conversation_id}/requests/"
    wrong = client.post(
        url,
        json.dumps({"action_type": "unblock_user", "params": {}, "notify_customer": "yes"}),
        content_type="application/json",
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == ErrorCode.WRONG_TYPE
    assert wrong.json()["data"]["field"] == "notify_customer"
    quiet = client.post(
        url,
        json.dumps({"action_type": "unblock_user", "params": {}, "notify_customer": False}),
        content_type="application/json",
    )
    assert quiet.status_code == 201 and quiet.json()["request"]["notify_customer"] is False


def test_defaults_are_declared_per_type_and_a_type_without_a_message_cannot_tell(people):
    described = action_type_get("block_user").describe()
    assert described["customer_message"] is True and described["notify_customer"] is True

    class Silent(ActionType):
        name = "test_silent"
        label = "Silent"
        pending_status = "To Be Silent"
        done_status = "Silent"

    assert Silent.describe()["customer_message"] is False
    assert Silent.describe()["notify_customer"] is False
    assert Silent.customer_message(language="en", params={}, result={}, at=timezone.now()) is None
    actions.action_register(Silent)
    try:
        conversation_id = _webchat(people)
        with pytest.raises(ValidationFailed) as refused:
            services.action_request_create(
                actor=people["maker"],
                conversation_id=conversation_id,
                action_type="test_silent",
                params={},
                notify_customer=True,
            )
        assert refused.value.data == {"field": "notify_customer", "reason": "no_customer_message"}
        assert not ActionRequest.objects.exists()
    finally:
        actions._REGISTRY.pop("test_silent", None)


def test_a_failed_action_tells_the_customer_nothing(people, bo):
    bo.put_user(id="U1001", user_name="ana.garcia", status="suspended")
    conversation_id = _webchat(people)
    row = _run(people, conversation_id, "block_user", {"reason": "lost_device"})
    assert row.status == "failed" and _told(conversation_id) == []
    assert row.outcome["notify_customer"] is True and "customer_message" not in row.outcome


def test_whatsapp_outside_the_24_hour_window_is_not_sent_and_the_note_says_so(people, settings):
    for name, value in WHATSAPP.items():
        setattr(settings, name, value)
    received = inbound_message_receive(
        channel="whatsapp",
        external_id="34600111222",
        channel_message_id="wamid.bo-1",
        text="Perdí mi móvil",
        language="es",
    )
    conversation_id = received.conversation["id"]
    services.customer_link(
        actor=people["maker"], conversation_id=conversation_id, bank_user_id="U1001"
    )
    last = timezone.now() - timedelta(hours=24, seconds=1)
    Conversation.objects.filter(pk=conversation_id).update(last_customer_message_at=last)
    row = _run(people, conversation_id, "block_user", {"reason": "lost_device"})
    assert row.status == "done"
    assert _told(conversation_id) == []  # no free text outside the window
    told = row.outcome["customer_message"]
    assert told["sent"] is False and told["reason"] == "reply_window_closed"
    assert told["closed_at"] == (last + timedelta(hours=24)).isoformat()
    assert told["text"].startswith("Por su seguridad")  # what would have been said
    assert _note()["note"].endswith(
        "The customer was NOT told: the WhatsApp 24-hour reply window is closed (only a "
        "template can reach them)."
    )


def test_a_closed_conversation_is_not_written_to(people):
    from chat.services import conversation_close

    conversation_id = _webchat(people)
    req = services.action_request_create(
        actor=people["maker"],
        conversation_id=conversation_id,
        action_type="block_user",
        params={"reason": "lost_device"},
    )
    conversation_close(actor=people["maker"], conversation_id=conversation_id)
    services.action_request_approve(actor=people["checker"], request_id=req["id"])
    assert executions_wait(30)
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.status == "done"
    assert row.outcome["customer_message"]["reason"] == "conversation_closed"
    assert _told(conversation_id) == []
    assert "the conversation is closed" in _note()["note"]
