"""hsm.services.template_send and outreach_start: only approved templates go, parameters are
checked before anything is written, a retried client_id answers the first message, the
window never stops a template, web chat takes none, and outreach opens a conversation for
whoever starts it or points at the one already open."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import services as chat_services
from chat.models import ConsoleEvent, Conversation, ConversationStatus, Message
from hsm import services
from hsm.models import Status
from hsm.selectors import conversation_templates, outreach_customers
from hub.exceptions import (
    Conflict,
    ConversationClosed,
    ErrorCode,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from hub.roles import Role
from routing.models import Assignment
from tests.hsm.factories import template_make

pytestmark = pytest.mark.django_db

WHATSAPP = {
    "WHATSAPP_PHONE_NUMBER_ID": "100200300",
    "WHATSAPP_ACCESS_TOKEN": "token",
    "WHATSAPP_APP_SECRET": "secret",
    "WHATSAPP_VERIFY_TOKEN": "verify",
}
WA_ID = "34600111222"
PARAMETERS = ["R-7", "Ana", "R-7"]
RENDERED = "Reclamación R-7\n\nHola Ana, su reclamación R-7 tiene novedades.\n\nBanco Demo"
COMPONENTS = [
    {"type": "header", "parameters": [{"type": "text", "text": "R-7"}]},
    {
        "type": "body",
        "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "R-7"}],
    },
]


@pytest.fixture(autouse=True)
def whatsapp_on(settings):
    for name, value in WHATSAPP.items():
        setattr(settings, name, value)


@pytest.fixture
def coordinator(staff):
    return staff("send-coord", Role.COORDINATOR)


@pytest.fixture
def template(coordinator):
    return template_make(coordinator, Status.APPROVED)


@pytest.fixture
def op(staff):
    return staff("send-op", online=True)


def _whatsapp_conversation(*, wa_id=WA_ID, text="Hola, ¿cómo va mi reclamación?", name="Ana"):
    result = chat_services.inbound_message_receive(
        channel="whatsapp",
        external_id=wa_id,
        channel_message_id=f"wamid.{wa_id}",
        text=text,
        display_name=name,
    )
    return Conversation.objects.get(pk=result.conversation["id"])


def _close_window(conversation, age=timedelta(days=2)):
    Conversation.objects.filter(pk=conversation.pk).update(
        last_customer_message_at=timezone.now() - age
    )


def _send(actor, conversation, template, parameters=PARAMETERS, client_id="t1"):
    return services.template_send(
        actor=actor,
        conversation_id=str(conversation.pk),
        template_id=template["id"],
        parameters=parameters,
        client_id=client_id,
    )


# --- template_send ---------------------------------------------------------------------------
def test_a_template_goes_after_the_window_closed_rendered_on_the_timeline(op, template):
    conversation = _whatsapp_conversation()
    _close_window(conversation)
    events = ConsoleEvent.objects.count()
    result = _send(op, conversation, template)
    assert result.created
    message = result.message
    assert message["kind"] == "template"
    assert message["text"] == RENDERED
    assert message["status"] == "pending"
    assert message["payload"] == {
        "name": "claim_follow_up",
        "language": "es",
        "components": COMPONENTS,
    }
    stored = Message.objects.get(pk=message["id"])
    assert stored.outbox_due_at is not None  # the outbox sends it after commit
    assert list(ConsoleEvent.objects.filter(id__gt=0).values_list("kind", flat=True))[events:] == [
        "chat.message_created"
    ]


def test_a_template_may_go_while_the_window_is_open(op, template):
    conversation = _whatsapp_conversation()
    assert _send(op, conversation, template).message["kind"] == "template"


def test_a_retried_client_id_answers_the_first_message_even_after_the_template_paused(
    op, template, coordinator
):
    conversation = _whatsapp_conversation()
    first = _send(op, conversation, template)
    services.template_status_change(
        actor=coordinator,
        template_id=template["id"],
        version=template["version"],
        status=Status.PAUSED,
    )
    again = _send(op, conversation, template)
    assert again.created is False
    assert again.message["id"] == first.message["id"]
    assert Message.objects.filter(kind="template").count() == 1


@pytest.mark.parametrize("status", [Status.DRAFT, Status.SUBMITTED, Status.PAUSED])
def test_only_approved_templates_go(op, coordinator, status):
    template = template_make(coordinator, status)
    conversation = _whatsapp_conversation()
    before = Message.objects.count()
    with pytest.raises(Conflict) as refused:
        _send(op, conversation, template)
    assert refused.value.data["status"] == status
    assert Message.objects.count() == before


def test_a_retired_or_missing_template_is_not_found(op, template, coordinator):
    conversation = _whatsapp_conversation()
    with pytest.raises(NotFound):
        services.template_send(
            actor=op,
            conversation_id=str(conversation.pk),
            template_id=999_999,
            parameters=PARAMETERS,
            client_id="t1",
        )
    services.template_retire(actor=coordinator, template_id=template["id"])
    with pytest.raises(NotFound):
        _send(op, conversation, template)


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        (["Ana"], "parameters_count"),
        (["R-7", "Ana", "R-7", "extra"], "parameters_count"),
        (["R-7", "", "R-7"], None),
        (["R-7", "Ana\nGarcía", "R-7"], None),
        (["R-7", 5, "R-7"], None),
    ],
)
def test_wrong_parameters_are_refused_precisely_and_save_nothing(op, template, parameters, reason):
    conversation = _whatsapp_conversation()
    before = (Message.objects.count(), ConsoleEvent.objects.count())
    with pytest.raises(ValidationFailed) as refused:
        _send(op, conversation, template, parameters=parameters)
    assert refused.value.data["field"] == "parameters"
    if reason:
        assert refused.value.data["reason"] == reason
        assert refused.value.data["expected"] == 3
        assert "3 parameters" in refused.value.message
    else:
        assert refused.value.data["index"] == 1
    assert (Message.objects.count(), ConsoleEvent.objects.count()) == before


def test_parameters_must_be_a_list(op, template):
    conversation = _whatsapp_conversation()
    with pytest.raises(ValidationFailed) as refused:
        _send(op, conversation, template, parameters="Ana")
    assert refused.value.code == ErrorCode.WRONG_TYPE


def test_someone_elses_conversation_is_not_found(staff, template):
    conversation = _whatsapp_conversation()
    intruder = staff("send-intruder")
    with pytest.raises(NotFound):
        _send(intruder, conversation, template)
    # A supervisor may watch it but not write in it.
    with pytest.raises(NotFound):
        _send(staff("send-watcher", Role.COORDINATOR), conversation, template)


def test_a_closed_conversation_takes_no_template(op, template):
    conversation = _whatsapp_conversation()
    chat_services.conversation_close(actor=op, conversation_id=conversation.pk)
    with pytest.raises(ConversationClosed):
        _send(op, conversation, template)


def test_web_chat_takes_no_templates(op, template):
    result = chat_services.webchat_message_receive(visitor_id="v1", client_id="c1", text="Hola")
    conversation = Conversation.objects.get(pk=result.conversation["id"])
    with pytest.raises(Conflict) as refused:
        _send(op, conversation, template)
    assert refused.value.data == {"reason": "no_templates", "channel": "webchat"}
    assert "normal reply" in refused.value.message


def test_the_picker_offers_approved_templates_in_the_conversations_language_first(op, coordinator):
    spanish = template_make(coordinator, Status.APPROVED)
    english = template_make(
        coordinator,
        Status.APPROVED,
        language="en",
        header="Claim {{1}}",
        body="Hello {{1}}, your claim {{2}} has news.",
        footer="Demo Bank",
        buttons=[],
    )
    template_make(coordinator, Status.DRAFT, name="draft_one")
    conversation = _whatsapp_conversation(text="Hello, I need help with my card please")
    options = conversation_templates(actor=op, conversation_id=str(conversation.pk))
    assert options["language"] == "en"
    assert options["takes_templates"] is True
    assert [t["id"] for t in options["templates"]] == [english["id"], spanish["id"]]


# --- outreach_start ----------------------------------------------------------------------------
def _known_customer(op):
    """A WhatsApp customer whose last conversation is closed."""
    conversation = _whatsapp_conversation()
    chat_services.conversation_close(actor=op, conversation_id=conversation.pk)
    return str(conversation.customer_id)


def _outreach(actor, customer_id, template, client_id="o1", parameters=PARAMETERS):
    return services.outreach_start(
        actor=actor,
        customer_id=customer_id,
        template_id=template["id"],
        parameters=parameters,
        client_id=client_id,
    )


def test_outreach_opens_a_conversation_assigned_to_whoever_starts_it(staff, op, template):
    customer_id = _known_customer(op)
    other = staff("send-other-op")  # offline: outreach ignores presence
    events = ConsoleEvent.objects.count()
    result = _outreach(other, customer_id, template)
    assert result.created
    conversation = Conversation.objects.get(pk=result.conversation["id"])
    assert conversation.status == ConversationStatus.ASSIGNED
    assert conversation.operator == other
    assert conversation.channel == "whatsapp"
    assert str(conversation.customer_id) == customer_id
    assert result.message["text"] == RENDERED
    assert result.message["payload"]["components"] == COMPONENTS
    # The window never opened: only templates until the customer answers.
    assert result.conversation["reply_window_closes_at"] is not None
    [assignment] = Assignment.objects.filter(conversation=conversation)
    assert (assignment.kind, assignment.actor, assignment.to_operator) == ("outreach", other, other)
    kinds = list(ConsoleEvent.objects.order_by("id").values_list("kind", "operator_id"))[events:]
    assert kinds == [
        ("routing.conversation_assigned", other.pk),
        ("chat.message_created", other.pk),
    ]


def test_outreach_is_idempotent_on_client_id(op, template):
    customer_id = _known_customer(op)
    first = _outreach(op, customer_id, template)
    again = _outreach(op, customer_id, template)
    assert again.created is False
    assert again.message["id"] == first.message["id"]
    assert Conversation.objects.exclude(status="closed").count() == 1


def test_outreach_points_at_the_conversation_already_open(op, template):
    conversation = _whatsapp_conversation()
    before = (Conversation.objects.count(), Message.objects.count())
    with pytest.raises(Conflict) as refused:
        _outreach(op, str(conversation.customer_id), template)
    assert refused.value.data["reason"] == "conversation_open"
    assert refused.value.data["conversation_id"] == str(conversation.pk)
    assert refused.value.data["operator_id"] == op.pk
    assert "already has an open WhatsApp conversation" in refused.value.message
    assert (Conversation.objects.count(), Message.objects.count()) == before


def test_outreach_refusals_write_nothing(op, staff, template, coordinator):
    customer_id = _known_customer(op)
    before = (Conversation.objects.count(), Message.objects.count(), Assignment.objects.count())
    with pytest.raises(ValidationFailed):
        _outreach(op, customer_id, template, parameters=["only one"])
    with pytest.raises(NotFound):
        _outreach(op, "00000000-0000-0000-0000-000000000000", template)
    with pytest.raises(NotFound):
        _outreach(op, "not-a-uuid", template)
    draft = template_make(coordinator, Status.DRAFT, name="not_yet")
    with pytest.raises(Conflict):
        _outreach(op, customer_id, draft)
    after = (Conversation.objects.count(), Message.objects.count(), Assignment.objects.count())
    assert after == before


def test_a_web_chat_only_customer_cannot_be_reached_by_template(op, template):
    result = chat_services.webchat_message_receive(visitor_id="v9", client_id="c1", text="Hi")
    with pytest.raises(NotFound) as refused:
        _outreach(op, result.conversation["customer"]["id"], template)
    assert refused.value.data["channel"] == "whatsapp"


def test_only_staff_who_handle_conversations_start_one(staff, op, template):
    from django.contrib.auth import get_user_model

    customer_id = _known_customer(op)
    nobody = get_user_model().objects.create_user("send-nobody", password="x")
    with pytest.raises(PermissionDenied):
        _outreach(nobody, customer_id, template)
    with pytest.raises(PermissionDenied):
        outreach_customers(actor=nobody, query="Ana")


def test_customers_are_found_by_name_or_number_with_their_open_conversation(op):
    open_one = _whatsapp_conversation()
    _whatsapp_conversation(wa_id="34699000111", name="Bruno Díaz")
    by_name = outreach_customers(actor=op, query="ana")
    assert [c["phone"] for c in by_name] == [WA_ID]
    assert by_name[0]["open_conversation"]["id"] == str(open_one.pk)
    by_number = outreach_customers(actor=op, query="699 000")
    assert [c["name"] for c in by_number] == ["Bruno Díaz"]
    assert len(outreach_customers(actor=op, query="")) == 2
