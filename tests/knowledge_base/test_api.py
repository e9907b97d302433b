"""The knowledge base REST endpoints: the coordinators' editing and the twins of kb.search
and kb.render."""

from __future__ import annotations

import json

import pytest

from chat.services import webchat_message_receive
from hub.roles import Role

pytestmark = pytest.mark.django_db

URL = "/api/kb/replies/"
NEW = {
    "title": "Card blocked",
    "shortcut": "/card-blocked",
    "body": 'Hi {{customer.first_name | "there"}}, your card is blocked.',
    "language": "en",
}


def call(client, method, url, body=None):
    kwargs = {}
    if body is not None:
        kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    return getattr(client, method)(url, **kwargs)


@pytest.fixture
def coord_client(client, staff):
    client.force_login(staff("kb-coord", Role.COORDINATOR))
    return client


def test_create_list_update_retire(coord_client):
    created = call(coord_client, "post", URL, NEW)
    assert created.status_code == 201, created.content
    reply = created.json()["reply"]
    assert reply["shortcut"] == "/card-blocked" and reply["version"] == 1
    listing = call(coord_client, "get", URL).json()["replies"]
    assert [r["id"] for r in listing] == [reply["id"]]
    detail = call(coord_client, "get", f"{URL}{reply['id']}/").json()["reply"]
    assert detail == reply

    patched = call(coord_client, "patch", f"{URL}{reply['id']}/", {"version": 1, "title": "New"})
    assert patched.status_code == 200 and patched.json()["reply"]["version"] == 2
    stale = call(coord_client, "patch", f"{URL}{reply['id']}/", {"version": 1, "title": "Old"})
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_version"
    assert stale.json()["data"] == {"reply_id": reply["id"], "version": 2}

    retired = call(coord_client, "delete", f"{URL}{reply['id']}/?version=2")
    assert retired.status_code == 200 and retired.json()["reply"]["active"] is False
    assert call(coord_client, "get", f"{URL}{reply['id']}/").status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"body": "Hi {{customer.age}}"}, 400, "invalid_value", "body"),
        ({"body": "Hi {{customer.name"}, 400, "invalid_value", "body"),
        ({"shortcut": "no spaces allowed"}, 400, "invalid_value", "shortcut"),
        ({"title": None}, 400, "missing_field", "title"),
        ({"query_type_ids": "1"}, 400, "wrong_type", "query_type_ids"),
        ({"query_type_ids": [True]}, 400, "wrong_type", "query_type_ids"),
        ({"query_type_ids": [12345]}, 404, "not_found", "query_type_ids"),
    ],
)
def test_create_refusals(coord_client, change, status, code, field):
    response = call(coord_client, "post", URL, {**NEW, **change})
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["data"]["field"] == field


def test_duplicate_shortcut_is_a_conflict(coord_client):
    call(coord_client, "post", URL, NEW)
    response = call(coord_client, "post", URL, NEW)
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert response.json()["data"]["field"] == "shortcut"


def test_reorder(coord_client):
    ids = [
        call(coord_client, "post", URL, {**NEW, "shortcut": f"/r-{n}"}).json()["reply"]["id"]
        for n in range(3)
    ]
    response = call(coord_client, "post", f"{URL}reorder/", {"reply_ids": [ids[2]]})
    assert [r["id"] for r in response.json()["replies"]] == [ids[2], ids[0], ids[1]]
    bad = call(coord_client, "post", f"{URL}reorder/", {"reply_ids": []})
    assert bad.status_code == 400 and bad.json()["data"]["field"] == "reply_ids"


def test_operator_searches_and_renders_but_may_not_write(client, staff, coord_client):
    reply = call(coord_client, "post", URL, NEW).json()["reply"]
    operator = staff("kb-op", online=True)
    received = webchat_message_receive(
        visitor_id="kb-v", client_id="1", text="card", display_name="Ana García"
    )
    conversation_id = received.conversation["id"]
    client.force_login(operator)
    found = call(client, "get", f"{URL}?q=/card&conversation_id={conversation_id}").json()
    assert found["query"] == "/card"
    assert [r["id"] for r in found["replies"]] == [reply["id"]]
    rendered = call(
        client, "post", f"{URL}{reply['id']}/render/", {"conversation_id": conversation_id}
    )
    assert rendered.json() == {
        "reply_id": reply["id"],
        "text": "Hi Ana, your card is blocked.",
    }
    denied = call(client, "post", URL, NEW)
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    bad_limit = call(client, "get", f"{URL}?q=card&limit=x")
    assert bad_limit.status_code == 400 and bad_limit.json()["data"]["field"] == "limit"


def test_anonymous_and_non_staff(client, django_user_model):
    assert client.get(URL).status_code == 401
    client.force_login(django_user_model.objects.create_user("nobody", password="x"))
    assert client.get(URL).status_code == 403
