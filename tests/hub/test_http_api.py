"""HTTP endpoints: tokens, bearer auth, the REST twins of console frames, health."""

from __future__ import annotations

import json

import pytest

from chat import services
from chat.models import Message
from hub.roles import Role

pytestmark = pytest.mark.django_db


def post(client, url, body, **headers):
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


def token_for(client, username):
    response = post(
        client, "/api/auth/token/", {"username": username, "password": "pw-" + username}
    )
    assert response.status_code == 201, response.content
    return response.json()["token"]


def test_token_then_bearer_calls_the_api(client, staff):
    op = staff("op", online=True)
    received = services.webchat_message_receive(visitor_id="v", client_id="1", text="hi")
    token = token_for(client, "op")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    listing = client.get("/api/conversations/", **auth).json()
    assert [c["id"] for c in listing["conversations"]] == [received.conversation["id"]]
    url = f"/api/conversations/{received.conversation['id']}/messages/"
    first = post(client, url, {"client_id": "a", "text": "hello"}, **auth)
    again = post(client, url, {"client_id": "a", "text": "hello"}, **auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["message"]["id"] == again.json()["message"]["id"]
    history = client.get(url, **auth).json()
    assert [m["text"] for m in history["messages"]] == ["hi", "hello"]
    assert op.pk == history["conversation"]["operator_id"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"username": "op", "password": "wrong"}, "invalid_credentials"),
        ({"username": "nobody", "password": "x"}, "invalid_credentials"),
        ({"username": "op"}, "missing_field"),
        ({"username": 5, "password": "x"}, "wrong_type"),
    ],
)
def test_token_refusals_are_precise(client, staff, body, code):
    staff("op")
    response = post(client, "/api/auth/token/", body)
    assert response.status_code in (400, 401)
    assert response.json()["code"] == code


def test_token_body_not_json(client):
    response = client.post("/api/auth/token/", data="{oops", content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_json")


def test_api_without_or_with_bad_token_is_401(client):
    assert client.get("/api/conversations/").json()["code"] == "not_authenticated"
    response = client.get("/api/conversations/", HTTP_AUTHORIZATION="Bearer hub_forged")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


def test_disabled_user_token_stops_working(client, staff):
    op = staff("op")
    token = token_for(client, "op")
    op.is_active = False
    op.save()
    response = client.get("/api/conversations/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401


def test_operator_cannot_post_into_someone_elses_conversation(client, staff):
    staff("owner", online=True)
    staff("other")
    received = services.webchat_message_receive(visitor_id="v", client_id="1", text="hi")
    token = token_for(client, "other")
    response = post(
        client,
        f"/api/conversations/{received.conversation['id']}/messages/",
        {"client_id": "x", "text": "hijack"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert Message.objects.filter(direction="out").count() == 0


def test_supervisor_lists_every_open_conversation(client, staff):
    staff("op", online=True)
    staff("coord", Role.COORDINATOR)
    for visitor in ("a", "b"):
        services.webchat_message_receive(visitor_id=visitor, client_id="1", text="hi")
    token = token_for(client, "coord")
    listing = client.get("/api/conversations/", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert len(listing["conversations"]) == 2


def test_healthz_reports_database_and_layer(client):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert body["database"]["ok"] and body["database"]["vendor"] == "postgresql"
    assert body["channel_layer"]["ok"]


def test_healthz_names_the_part_that_is_down(client, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 0.5}]
            },
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        response = client.get("/healthz")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 503
    assert response.json()["down"] == ["channel_layer"]


def test_console_page_requires_login(client, staff):
    assert client.get("/console/").status_code == 302
    staff("op")
    client.login(username="op", password="pw-op")
    assert client.get("/console/").status_code == 200


def test_demo_seed_refuses_without_demo_flag(settings):
    from django.core.management import CommandError, call_command

    settings.HUB_DEMO = False
    with pytest.raises(CommandError, match="HUB_DEMO"):
        call_command("demo_seed")
