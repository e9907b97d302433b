"""Linking a conversation's customer to a bank user: search through the client against
the stand-in, link, the console event, the selector every staff member reads, unlink."""

from __future__ import annotations

import json

import pytest

from backoffice_bridge import selectors, services
from chat.models import ConsoleEvent
from chat.services import webchat_message_receive
from hub.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from hub.roles import Role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(bo, staff):
    maker = staff("cc1", Role.CONTACT_CENTER, online=True)
    received = webchat_message_receive(visitor_id="v1", client_id="1", text="hello")
    return maker, received.conversation["id"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("ana.garcia", "user_name"),
        ("Ana", "first_name"),
        ("Garcia", "last_name"),
        ("+34 600 111 222", "mobile"),
        ("ana.garcia@example.com", "email"),
        ("12345678Z", "personal_id"),
        ("CB-0001001", "core_banking_id"),
        ("SYS-501", "system_user_id"),
        ("SYS-501", None),
    ],
)
def test_search_by_every_column(setup, query, field):
    maker, conversation_id = setup
    found = services.bank_users_search(
        actor=maker, conversation_id=conversation_id, query=query, field=field
    )
    assert [u["id"] for u in found] == ["U1001"]
    assert found[0]["status"] == "active"


def test_search_refusals(setup, staff, bo):
    maker, conversation_id = setup
    with pytest.raises(ValidationFailed) as short:
        services.bank_users_search(actor=maker, conversation_id=conversation_id, query="a")
    assert short.value.data["field"] == "q"
    with pytest.raises(ValidationFailed):
        services.bank_users_search(
            actor=maker, conversation_id=conversation_id, query="ana", field="iban"
        )
    plain = staff("op-plain", Role.OPERATOR)
    with pytest.raises(PermissionDenied):
        services.bank_users_search(actor=plain, conversation_id=conversation_id, query="ana")
    assert bo.calls() == []  # nothing reached the back office


def test_link_is_announced_and_shown_to_every_staff_member(setup, staff):
    maker, conversation_id = setup
    link = services.customer_link(
        actor=maker, conversation_id=conversation_id, bank_user_id="U1001"
    )
    assert link["bank_user_id"] == "U1001"
    assert link["bank_user"]["last_name"] == "García"
    assert link["linked_by"]["id"] == maker.pk and link["linked_at"]
    event = ConsoleEvent.objects.get(kind="backoffice.customer_linked")
    assert str(event.conversation_id) == conversation_id and event.operator_id == maker.pk
    assert event.payload == {"link": link}
    coordinator = staff("coord", Role.COORDINATOR)
    assert selectors.customer_link_get(actor=coordinator, conversation_id=conversation_id) == link
    # Linking the same user again is a no-op; another user is a conflict.
    assert (
        services.customer_link(actor=maker, conversation_id=conversation_id, bank_user_id="U1001")
        == link
    )
    with pytest.raises(Conflict) as conflict:
        services.customer_link(actor=maker, conversation_id=conversation_id, bank_user_id="U1002")
    assert conflict.value.data["reason"] == "already_linked"
    assert ConsoleEvent.objects.filter(kind="backoffice.customer_linked").count() == 1


def test_unknown_bank_user_and_unlink(setup):
    maker, conversation_id = setup
    with pytest.raises(NotFound) as missing:
        services.customer_link(actor=maker, conversation_id=conversation_id, bank_user_id="U9")
    assert missing.value.data["field"] == "bank_user_id"
    services.customer_link(actor=maker, conversation_id=conversation_id, bank_user_id="U1001")
    unlinked = services.customer_unlink(actor=maker, conversation_id=conversation_id)
    assert unlinked["unlinked_by"]["id"] == maker.pk
    assert selectors.customer_link_get(actor=maker, conversation_id=conversation_id) is None
    assert ConsoleEvent.objects.filter(kind="backoffice.customer_unlinked").count() == 1
    with pytest.raises(NotFound):
        services.customer_unlink(actor=maker, conversation_id=conversation_id)
    # A new link after the unlink.
    services.customer_link(actor=maker, conversation_id=conversation_id, bank_user_id="U1002")


def test_back_office_down_is_a_503(setup, bo):
    maker, conversation_id = setup
    bo.fault(status=503, count=10)
    with pytest.raises(Exception) as down:
        services.bank_users_search(actor=maker, conversation_id=conversation_id, query="ana")
    assert down.value.status == 503 and down.value.data["reason"] == "backoffice_unavailable"
    assert down.value.code == "backoffice_unavailable"


def test_back_office_down_over_rest_is_503_backoffice_unavailable(setup, bo, client):
    """Reads (search, link refresh) that cannot reach the back office after the client's
    retries: ``503 backoffice_unavailable``; the link is left as it was."""
    maker, conversation_id = setup
    client.force_login(maker)
    base = f"/api/backoffice/conversations/{conversation_id}"
    linked = client.post(
        f"{base}/link/", json.dumps({"bank_user_id": "U1001"}), content_type="application/json"
    )
    assert linked.status_code == 201
    bo.fault(status=503, count=10)
    search = client.get(f"{base}/bank-users/?q=ana")
    assert search.status_code == 503
    assert search.json()["code"] == "backoffice_unavailable"
    assert search.json()["data"]["reason"] == "backoffice_unavailable"
    refresh = client.post(f"{base}/link/refresh/")
    assert refresh.status_code == 503 and refresh.json()["code"] == "backoffice_unavailable"
    assert client.get(f"{base}/link/").json()["link"]["bank_user_id"] == "U1001"


def test_rest_search_link_get_unlink(setup, client):
    maker, conversation_id = setup
    client.force_login(maker)
    base = f"/api/backoffice/conversations/{conversation_id}"
    found = client.get(f"{base}/bank-users/?q=Krause")
    assert found.status_code == 200 and found.json()["bank_users"][0]["id"] == "U1004"
    assert client.get(f"{base}/link/").json() == {"link": None}
    linked = client.post(
        f"{base}/link/", json.dumps({"bank_user_id": "U1004"}), content_type="application/json"
    )
    assert linked.status_code == 201 and linked.json()["link"]["bank_user_id"] == "U1004"
    assert client.get(f"{base}/link/").json()["link"]["bank_user_id"] == "U1004"
    missing = client.post(f"{base}/link/", "{}", content_type="application/json")
    assert missing.status_code == 400 and missing.json()["code"] == "missing_field"
    assert client.delete(f"{base}/link/").status_code == 200
    assert client.get(f"{base}/link/").json() == {"link": None}
