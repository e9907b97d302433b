"""The queue an operator may see (routing.selectors.queue_waiting_for and
GET /api/routing/queue/): queued conversations of the types the user serves, as routing reads
skills (none: every type), in one query."""

from __future__ import annotations

import pytest

from chat import services
from chat.models import Conversation
from hub.roles import Role
from routing.models import QueryType
from routing.selectors import queue_waiting_for
from tests.routing.factories import operator_make

pytestmark = pytest.mark.django_db


def queued(visitor: str, entry: str) -> Conversation:
    received = services.webchat_message_receive(
        visitor_id=visitor, client_id=f"{visitor}-1", text="hello", entry_point=entry
    )
    conversation = Conversation.objects.get(pk=received.conversation["id"])
    assert conversation.status == "queued"
    return conversation


@pytest.fixture
def types(db) -> dict[str, QueryType]:
    return {
        "claims": QueryType.objects.create(code="claims", name="Claims", priority=300),
        "payments": QueryType.objects.create(code="payments", name="Payments", priority=200),
    }


def test_counts_the_queue_of_the_types_each_user_serves(staff, types, django_assert_num_queries):
    claims_op = operator_make(staff, "c", types=[types["claims"]], online=False)
    payments_op = operator_make(staff, "p", types=[types["payments"]], online=False)
    generalist = operator_make(staff, "g", online=False)  # no skills: every type
    first = queued("v1", "claims")
    queued("v2", "claims")
    queued("v3", "payments")

    with django_assert_num_queries(1):
        mine = queue_waiting_for(actor=claims_op)
    assert mine == {"waiting": 2, "oldest_at": first.last_customer_message_at.isoformat()}
    assert queue_waiting_for(actor=payments_op)["waiting"] == 1
    assert queue_waiting_for(actor=generalist)["waiting"] == 3


def test_nothing_waiting(staff, types):
    user = operator_make(staff, "c", types=[types["claims"]])
    queued_elsewhere = queued("v1", "payments")
    assert queued_elsewhere.status == "queued"
    assert queue_waiting_for(actor=user) == {"waiting": 0, "oldest_at": None}


def test_the_endpoint_answers_staff_only(client, staff, types):
    user = operator_make(staff, "c", types=[types["claims"]], online=False)
    queued("v1", "claims")
    assert client.get("/api/routing/queue/").status_code == 401
    client.force_login(user)
    body = client.get("/api/routing/queue/").json()
    assert body["waiting"] == 1 and body["oldest_at"]
    client.force_login(staff("coord", Role.COORDINATOR))
    assert client.get("/api/routing/queue/").json()["waiting"] == 1
