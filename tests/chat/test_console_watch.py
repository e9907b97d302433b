"""The per-process console watch: logins re-checked, lost doorbells caught up."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model

from chat import services
from chat.consumers import console_watch
from chat.events import operator_group
from tests.chat.test_consumers import console, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def astaff(staff):
    return database_sync_to_async(staff)


async def test_account_disabled_without_signal_closes_socket_within_seconds(astaff):
    op = await astaff("op", online=True)
    operator = await console(op)
    await operator.receive_json_from()
    await operator.receive_json_from()
    # A bulk update sends no post_save signal: only the watch can notice.
    await database_sync_to_async(
        lambda: get_user_model().objects.filter(pk=op.pk).update(is_active=False)
    )()
    closing = await operator.receive_json_from(timeout=5)
    assert closing == {"type": "closing", "reason": "session_ended"}
    assert (await operator.receive_output(timeout=2))["code"] == 4401


async def test_lost_doorbell_is_caught_up_from_the_log(astaff):
    op = await astaff("op", online=True)
    operator = await console(op)
    await operator.receive_json_from()
    await operator.receive_json_from()
    # Make every doorbell for this console go missing, as a Redis restart would.
    (channel_name,) = [name for name, c in console_watch.consoles.items() if c.user.pk == op.pk]
    await get_channel_layer().group_discard(operator_group(op.pk), channel_name)
    await database_sync_to_async(services.webchat_message_receive)(
        visitor_id="v", client_id="1", text="are you there?"
    )
    event = await until(operator, lambda f: f.get("name") == "chat.message_created", wait=5)
    assert event["data"]["message"]["text"] == "are you there?"
    await operator.disconnect()
