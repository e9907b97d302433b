"""WhatsApp inbound: the stand-in calls the hub's webhook over real HTTP (pytest-django's
live server on the test database): the handshake, signatures, malformed bodies, every
message type, replays and duplicates."""

from __future__ import annotations

import json

import pytest

from chat.models import ConsoleEvent, Conversation, Customer, Message
from tests.chat.whatsapp_support import (
    VERIFY_TOKEN,
    WEBHOOK_PATH,
    http,
    sign,
    wa,  # noqa: F401  (fixture)
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

WA_ID = "34600111222"


def _post_webhook(base: str, body: bytes, signature: str | None) -> tuple[int, object]:
    headers = {"X-Hub-Signature-256": signature} if signature is not None else {}
    return http("POST", base + WEBHOOK_PATH, raw=body, headers=headers)


def _envelope(value: dict) -> bytes:
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {"messaging_product": "whatsapp", **value},
                        }
                    ],
                }
            ],
        }
    ).encode()


def _text(message_id: str, body: str = "Hola") -> bytes:
    return _envelope(
        {
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": WA_ID}],
            "messages": [
                {
                    "from": WA_ID,
                    "id": message_id,
                    "timestamp": "1732550000",
                    "type": "text",
                    "text": {"body": body},
                }
            ],
        }
    )


def _nothing_stored() -> bool:
    return not (
        Message.objects.exists() or Customer.objects.exists() or ConsoleEvent.objects.exists()
    )


# --- handshake ------------------------------------------------------------------------------


def test_handshake_with_the_right_token_answers_the_challenge(wa, live_server):  # noqa: F811
    assert wa.call("POST", "/_standin/verify")["ok"] is True
    status, body = http(
        "GET",
        f"{live_server.url}{WEBHOOK_PATH}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}"
        "&hub.challenge=1158201444",
    )
    assert (status, body) == (200, 1158201444) or (status, str(body)) == (200, "1158201444")


@pytest.mark.parametrize(
    "query",
    [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=42",
        "hub.mode=unsubscribe&hub.verify_token=" + VERIFY_TOKEN + "&hub.challenge=42",
        "hub.mode=subscribe&hub.challenge=42",
    ],
)
def test_handshake_with_a_wrong_token_or_mode_is_forbidden(wa, live_server, query):  # noqa: F811
    status, body = http("GET", f"{live_server.url}{WEBHOOK_PATH}?{query}")
    assert status == 403
    assert body["code"] == "permission_denied"
    assert "42" not in json.dumps(body)


def test_webhook_of_an_unconfigured_channel_is_not_found(live_server, settings):
    settings.WHATSAPP_APP_SECRET = ""
    status, body = _post_webhook(live_server.url, _text("wamid.x"), sign(_text("wamid.x")))
    assert (status, body["code"]) == (404, "not_found")
    assert _nothing_stored()


# --- signatures --------------------------------------------------------------------------------


def test_unsigned_webhook_is_refused_logged_and_stores_nothing(wa, live_server, caplog):  # noqa: F811
    status, body = _post_webhook(live_server.url, _text("wamid.unsigned"), None)
    assert status == 401
    assert body["code"] == "not_authenticated"
    assert "X-Hub-Signature-256" in body["message"]
    assert "webhook refused (401)" in caplog.text
    assert _nothing_stored()


@pytest.mark.parametrize(
    "signature",
    [
        sign(b"another body"),
        "sha256=" + "0" * 64,
        "sha1=abc",
        "sha256=zz",
    ],
)
def test_wrongly_signed_webhook_is_forbidden_and_stores_nothing(wa, live_server, caplog, signature):  # noqa: F811
    status, body = _post_webhook(live_server.url, _text("wamid.forged"), signature)
    assert status == 403
    assert body["code"] == "permission_denied"
    assert "webhook refused (403)" in caplog.text
    assert _nothing_stored()


def test_stand_in_with_a_bad_signature_gets_403_and_nothing_is_stored(wa):  # noqa: F811
    wa.configure(bad_signature=True)
    answer = wa.customer_writes(WA_ID, text="Hola", name="Ana")
    assert answer["hub_status"] == 403
    assert _nothing_stored()


# --- malformed bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (b"{not json", "invalid_json", "not valid JSON"),
        (b"[]", "invalid_value", "body: expected an object"),
        (json.dumps({"object": "page", "entry": []}).encode(), "invalid_value", "object"),
        (
            _envelope(
                {"messages": [{"from": WA_ID, "id": "w1", "timestamp": "1", "type": "text"}]}
            ),
            "invalid_value",
            "entry[0].changes[0].value.messages[0].text: expected an object",
        ),
        (
            _envelope(
                {
                    "messages": [
                        {
                            "from": WA_ID,
                            "id": "w1",
                            "timestamp": "1",
                            "type": "text",
                            "text": {"body": ""},
                        }
                    ]
                }
            ),
            "invalid_value",
            "text.body: must not be empty",
        ),
        (
            _envelope({"statuses": [{"id": "w1", "status": "sent", "timestamp": "yesterday"}]}),
            "invalid_value",
            "statuses[0].timestamp",
        ),
    ],
)
def test_signed_but_malformed_webhook_is_400_precise_and_stores_nothing(
    wa,  # noqa: F811
    live_server,
    body,
    code,
    fragment,
):
    status, answer = _post_webhook(live_server.url, body, sign(body))
    assert status == 400, answer
    assert answer["code"] == code
    assert fragment in answer["message"]
    assert _nothing_stored()


def test_a_malformed_second_message_stores_not_even_the_first(wa, live_server):  # noqa: F811
    good = json.loads(_text("wamid.good"))
    value = good["entry"][0]["changes"][0]["value"]
    value["messages"].append({"from": WA_ID, "id": "wamid.bad", "timestamp": "1", "type": "image"})
    body = json.dumps(good).encode()
    status, answer = _post_webhook(live_server.url, body, sign(body))
    assert status == 400
    assert answer["data"]["field"] == "entry[0].changes[0].value.messages[1].image"
    assert _nothing_stored()


# --- message types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind", "text", "payload"),
    [
        ({"text": "Hola, ¿mi transferencia?"}, "text", "Hola, ¿mi transferencia?", {}),
        (
            {"interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Sí"}}},
            "interactive",
            "Sí",
            {"type": "button_reply", "reply_id": "b1", "title": "Sí"},
        ),
        (
            {
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {"id": "r1", "title": "Pagos", "description": "Cards"},
                }
            },
            "interactive",
            "Pagos",
            {"type": "list_reply", "reply_id": "r1", "title": "Pagos", "description": "Cards"},
        ),
        (
            {"button": {"payload": "STOP", "text": "Stop promotions"}},
            "interactive",
            "Stop promotions",
            {"type": "button", "reply_id": "STOP", "title": "Stop promotions"},
        ),
        (
            {"image": {"caption": "My receipt"}},
            "media",
            "[image] My receipt",
            {"media_type": "image", "mime_type": "image/jpeg", "caption": "My receipt"},
        ),
        (
            {"document": {"filename": "statement.pdf"}},
            "media",
            "[document] statement.pdf",
            {"media_type": "document", "filename": "statement.pdf"},
        ),
        ({"audio": {}}, "media", "[audio]", {"media_type": "audio"}),
        (
            {"location": {"latitude": 40.4168, "longitude": -3.7038, "name": "Sol"}},
            "location",
            "[location] Sol (40.41680, -3.70380)",
            {"latitude": 40.4168, "longitude": -3.7038, "name": "Sol"},
        ),
        (
            {"unsupported": {}},
            "text",
            "[unsupported message: unsupported]",
            {"unsupported": "unsupported"},
        ),
    ],
    ids=[
        "text",
        "button_reply",
        "list_reply",
        "button",
        "image",
        "document",
        "audio",
        "location",
        "unsupported",
    ],
)
def test_each_inbound_type_is_stored_readable_with_its_payload(
    wa,  # noqa: F811
    staff,
    content,
    kind,
    text,
    payload,
):
    op = staff("op", online=True)
    answer = wa.customer_writes(WA_ID, name="Ana Pérez", **content)
    assert answer["hub_status"] == 200
    message = Message.objects.get()
    assert message.channel_message_id == answer["id"]
    assert (message.channel, message.direction, message.kind) == ("whatsapp", "in", kind)
    assert message.text == text
    for key, value in payload.items():
        assert message.payload[key] == value
    if kind == "media":
        assert message.payload["id"] and message.payload["sha256"]
    assert message.delivery_status == ""
    conversation = Conversation.objects.select_related("customer").get()
    assert conversation.channel == "whatsapp"
    assert conversation.customer.display_name == "Ana Pérez"
    assert conversation.operator_id == op.pk
    event = ConsoleEvent.objects.filter(kind="chat.message_created").get()
    assert event.payload["message"]["kind"] == kind
    assert event.payload["message"]["text"] == text
    assert event.payload["conversation"]["channel"] == "whatsapp"
    assert event.payload["conversation"]["reply_window_closes_at"] is not None


def test_a_known_customer_takes_the_fast_path_with_kind_and_payload(wa, staff):  # noqa: F811
    staff("op", online=True)
    wa.customer_writes(WA_ID, text="first")
    wa.customer_writes(WA_ID, image={"caption": "second"})
    first, second = Message.objects.order_by("id")
    assert (first.kind, second.kind) == ("text", "media")
    assert second.payload["caption"] == "second"
    assert second.text == "[image] second"
    assert Conversation.objects.count() == 1


# --- replays -------------------------------------------------------------------------------------


def test_duplicate_webhooks_from_the_provider_store_one_message(wa, staff):  # noqa: F811
    staff("op", online=True)
    wa.configure(duplicate_webhooks=True)
    answer = wa.customer_writes(WA_ID, text="Hola")
    assert answer["hub_status"] == 200
    # The duplicate is delivered after the first; wait until the stand-in logged both.
    wait_for(
        lambda: sum(1 for w in wa.webhooks()["webhooks"] if w.get("hub_status") == 200) >= 2,
        what="the duplicate webhook",
    )
    assert Message.objects.count() == 1
    assert ConsoleEvent.objects.filter(kind="chat.message_created").count() == 1


def test_replayed_message_id_answers_200_and_creates_nothing_new(wa, live_server, staff):  # noqa: F811
    staff("op", online=True)
    body = _text("wamid.replayed")
    for _ in range(3):
        status, answer = _post_webhook(live_server.url, body, sign(body))
        assert status == 200, answer
    assert answer["messages_replayed"] == 1
    assert Message.objects.count() == 1
    assert ConsoleEvent.objects.filter(kind="chat.message_created").count() == 1
