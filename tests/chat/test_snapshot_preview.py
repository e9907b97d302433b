"""The snapshot's list preview says whether the newest message is the hub's own (queue
position, type menu, out-of-hours reply), so a console keeps counting the customer's waiting
time until a person answers (chat.selectors.console_snapshot)."""

from __future__ import annotations

import pytest

from chat import selectors, services
from chat.models import Conversation
from hub.roles import Role

pytestmark = pytest.mark.django_db


def test_the_hubs_own_message_is_flagged_an_operators_reply_is_not(staff):
    op = staff("op", online=True)
    received = services.webchat_message_receive(
        visitor_id="v1", client_id="c1", text="my card is blocked"
    )
    conversation_id = received.conversation["id"]
    supervisor = staff("coord", Role.COORDINATOR)

    def preview() -> dict:
        (row,) = selectors.console_snapshot(actor=supervisor)["conversations"]
        return row["last_message"]

    assert preview()["system"] is False  # the customer's own message
    services.system_message_send(
        conversation=Conversation.objects.get(pk=conversation_id), text="You are number 2"
    )
    assert preview() | {"id": 0} == {
        "id": 0,
        "direction": "out",
        "text": "You are number 2",
        "system": True,
    }
    services.operator_message_send(
        actor=op, conversation_id=conversation_id, client_id="r1", text="On it"
    )
    assert preview()["system"] is False and preview()["text"] == "On it"
