"""Routing under concurrency on PostgreSQL: many transactions route at once; nobody is
queued while an operator has room, and nobody gets more than their capacity."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from chat import services
from chat.models import Conversation
from hub.roles import Role
from routing.services import operator_state_get

pytestmark = pytest.mark.django_db(transaction=True)


def test_parallel_first_messages_fill_every_free_slot_once(staff):
    operators = [staff(f"op{i}", Role.OPERATOR, online=True) for i in range(8)]
    for operator in operators:
        state = operator_state_get(user_id=operator.pk)
        state.capacity = 1
        state.save()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def customer(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            services.webchat_message_receive(
                visitor_id=f"race-{index}", client_id="1", text="hello"
            )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert Conversation.objects.filter(status="queued").count() == 0
    loads = sorted(
        Conversation.objects.filter(status="assigned").values_list("operator_id", flat=True)
    )
    assert loads == sorted(o.pk for o in operators)
