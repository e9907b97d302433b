"""Templates against the WhatsApp stand-in over real HTTP: a template sent after the 24-hour
window closed reaches the customer's log as a ``template`` message with the right
components (a free-form reply would be refused), its status callbacks come back, and an
outreach template reaches a customer with no open conversation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import services as chat_services
from chat.channels.outbox import outbox_sweep
from chat.models import Conversation, Message
from hsm import services
from hsm.models import Status
from hub.exceptions import ReplyWindowClosed
from hub.roles import Role
from tests.chat.whatsapp_support import (
    wa,  # noqa: F401  (fixture)
    wait_for,
)
from tests.hsm.factories import template_make

pytestmark = pytest.mark.django_db(transaction=True)

WA_ID = "34600777888"
PARAMETERS = ["R-2024-0042", "Ana", "R-2024-0042"]
COMPONENTS = [
    {"type": "header", "parameters": [{"type": "text", "text": "R-2024-0042"}]},
    {
        "type": "body",
        "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "R-2024-0042"}],
    },
]


def _delivered(message_id: int):
    def check() -> bool:
        return Message.objects.get(pk=message_id).delivery_status in {"delivered", "read"}

    return check


def test_a_template_after_the_window_reaches_the_customer_with_its_components(
    wa,  # noqa: F811
    staff,
):
    template = template_make(staff("e2e-coord", Role.COORDINATOR), Status.APPROVED)
    op = staff("e2e-op", online=True)
    assert wa.customer_writes(WA_ID, text="Hola", name="Ana")["hub_status"] == 200
    conversation = Conversation.objects.get()
    Conversation.objects.filter(pk=conversation.pk).update(
        last_customer_message_at=timezone.now() - timedelta(hours=25)
    )
    with pytest.raises(ReplyWindowClosed):
        chat_services.operator_message_send(
            actor=op, conversation_id=conversation.pk, client_id="free", text="¿Sigue ahí?"
        )

    result = services.template_send(
        actor=op,
        conversation_id=str(conversation.pk),
        template_id=template["id"],
        parameters=PARAMETERS,
        client_id="tpl-1",
    )
    assert outbox_sweep()["dispatch"] == {"accepted": 1}
    [sent] = wa.outbound(WA_ID)
    assert sent["type"] == "template"
    assert sent["template"] == {
        "name": "claim_follow_up",
        "language": {"code": "es"},
        "components": COMPONENTS,
    }
    message = Message.objects.get(pk=result.message["id"])
    assert message.provider_message_id == sent["id"]
    wait_for(_delivered(message.pk), what="the delivered callback")
    # A retry of the same send is the same message: nothing more goes out.
    again = services.template_send(
        actor=op,
        conversation_id=str(conversation.pk),
        template_id=template["id"],
        parameters=PARAMETERS,
        client_id="tpl-1",
    )
    assert again.created is False
    assert "dispatch" not in outbox_sweep()
    assert len(wa.outbound(WA_ID)) == 1


def test_outreach_reaches_a_known_customer(wa, staff):  # noqa: F811
    template = template_make(staff("e2e-coord", Role.COORDINATOR), Status.APPROVED)
    op = staff("e2e-op", online=True)
    assert wa.customer_writes(WA_ID, text="Hola", name="Ana")["hub_status"] == 200
    first = Conversation.objects.get()
    chat_services.conversation_close(actor=op, conversation_id=first.pk)

    result = services.outreach_start(
        actor=op,
        customer_id=str(first.customer_id),
        template_id=template["id"],
        parameters=PARAMETERS,
        client_id="out-1",
    )
    assert result.conversation["id"] != str(first.pk)
    outbox_sweep()
    [sent] = wa.outbound(WA_ID)
    assert sent["type"] == "template"
    assert sent["template"]["components"] == COMPONENTS
    wait_for(_delivered(result.message["id"]), what="the delivered callback")

    # The customer answers: it lands in the outreach conversation, now with an open window.
    assert wa.customer_writes(WA_ID, text="Gracias, ¿qué novedades?")["hub_status"] == 200
    conversation = Conversation.objects.get(pk=result.conversation["id"])
    assert conversation.operator == op and conversation.status == "assigned"
    assert conversation.last_customer_message_at is not None
