"""WhatsApp outbound: the operator's reply is committed pending, the outbox sends it to the
stand-in over real HTTP (aiohttp), and the stand-in's status callbacks reach the hub's
webhook (pytest-django's live server).  Retries, final errors, out-of-order and duplicate
statuses, the race of a status with the send's answer, and two dispatchers at once."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from chat import delivery, services
from chat.channels.base import SendResult, StatusUpdate
from chat.channels.outbox import outbox_dispatch, outbox_sweep
from chat.models import ConsoleEvent, Conversation, EarlyStatus, Message
from hub.http import http_session_close
from tests.chat.whatsapp_support import (
    WEBHOOK_PATH,
    http,
    sign,
    wa,  # noqa: F401  (fixture)
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

WA_ID = "34600111222"


@pytest.fixture
def conversation(wa, staff):  # noqa: F811
    """A WhatsApp conversation assigned to ``op``, opened by the customer's message."""
    op = staff("op", online=True)
    assert wa.customer_writes(WA_ID, text="Hola", name="Ana")["hub_status"] == 200
    conv = Conversation.objects.get()
    conv.op = op
    return conv


def _reply(conversation, text="Buenos días", client_id="r1"):
    return services.operator_message_send(
        actor=conversation.op, conversation_id=conversation.id, client_id=client_id, text=text
    )


def _message(result) -> Message:
    return Message.objects.get(pk=result.message["id"])


def _status_events(message_id: int) -> list[dict]:
    return [
        e.payload
        for e in ConsoleEvent.objects.filter(kind="chat.message_status").order_by("id")
        if e.payload["message"]["id"] == message_id
    ]


def _reaches(message_id: int, status: str):
    def check():
        return Message.objects.get(pk=message_id).delivery_status == status

    return check


def test_reply_is_committed_pending_then_sent_delivered_and_read(wa, conversation):  # noqa: F811
    result = _reply(conversation)
    assert result.message["status"] == "pending"
    message = _message(result)
    assert message.outbox_due_at is not None and message.provider_message_id is None
    # No server loop in this (sync) test: nothing was sent yet; the sweep sends it.
    assert wa.outbound(WA_ID) == []
    report = outbox_sweep()
    assert report["dispatch"] == {"accepted": 1}
    message.refresh_from_db()
    assert message.provider_message_id.startswith("wamid.")
    assert message.outbox_due_at is None and message.outbox_lease_until is None
    [sent] = wa.outbound(WA_ID)
    assert (sent["id"], sent["text"]) == (message.provider_message_id, "Buenos días")
    wait_for(_reaches(message.pk, "delivered"), what="the delivered callback")
    wa.call("POST", f"/_standin/customers/{WA_ID}/read")
    wait_for(_reaches(message.pk, "read"), what="the read callback")
    statuses = [e["message"]["status"] for e in _status_events(message.pk)]
    assert statuses == ["sent", "delivered", "read"]
    event = ConsoleEvent.objects.filter(kind="chat.message_status").last()
    assert event.operator_id == conversation.op.pk
    assert event.conversation_id == conversation.id
    # A second sweep has nothing to send: the message went out once.
    assert "dispatch" not in outbox_sweep()
    assert len(wa.outbound(WA_ID)) == 1


def test_out_of_order_and_duplicate_statuses_never_go_backwards(wa, conversation):  # noqa: F811
    wa.configure(reverse_status_order=True, duplicate_webhooks=True, auto_read=True)
    message = _message(_reply(conversation))
    outbox_sweep()
    wait_for(_reaches(message.pk, "read"), what="the read callback")
    # Every callback (reversed, duplicated) has been answered by the hub.
    wait_for(
        lambda: (
            sum(
                1
                for w in wa.webhooks()["webhooks"]
                if w["kind"] != "message" and w["hub_status"] is not None
            )
            >= 6
        ),
        what="all the status webhooks",
    )
    message.refresh_from_db()
    assert message.delivery_status == "read"
    statuses = [e["message"]["status"] for e in _status_events(message.pk)]
    assert statuses[-1] == "read"
    assert statuses == sorted(statuses, key=["sent", "delivered", "read"].index)
    assert len(statuses) == len(set(statuses))


def test_provider_5xx_twice_then_success_is_retried_and_sent_once(wa, conversation):  # noqa: F811
    wa.fault(status=503, count=2)
    message = _message(_reply(conversation))
    assert outbox_sweep()["dispatch"] == {"accepted": 1}
    message.refresh_from_db()
    assert message.provider_message_id
    assert len(wa.outbound(WA_ID)) == 1
    wait_for(_reaches(message.pk, "delivered"), what="delivery after the retries")


def test_a_timeout_is_retried(wa, conversation):  # noqa: F811
    wa.fault(timeout_seconds=3, count=1)  # the hub's timeout is 1 s
    message = _message(_reply(conversation))
    assert outbox_sweep()["dispatch"] == {"accepted": 1}
    message.refresh_from_db()
    assert message.provider_message_id
    wait_for(_reaches(message.pk, "delivered"), what="delivery after the timeout")


def test_a_4xx_is_not_retried_and_its_error_is_kept_and_announced(wa, conversation):  # noqa: F811
    wa.fault(status=400, code=131026, count=2)
    message = _message(_reply(conversation))
    assert outbox_sweep()["dispatch"] == {"failed": 1}
    message.refresh_from_db()
    assert message.delivery_status == "failed"
    assert message.provider_error_code == "131026"
    assert message.provider_error_text
    assert message.outbox_due_at is None
    # One attempt only: the second queued fault is still there.
    assert sum(f["remaining"] for f in wa.faults()["faults"]) == 1
    [event] = _status_events(message.pk)
    assert event["message"]["status"] == "failed"
    assert event["message"]["error"] == {"code": "131026", "text": message.provider_error_text}
    assert event["previous"] == "pending"
    # Nothing is left for the sweep.
    assert "dispatch" not in outbox_sweep()


def test_rate_limited_sends_stay_in_the_outbox_for_a_later_retry(wa, conversation, settings):  # noqa: F811
    wa.fault(status=429, count=3)
    message = _message(_reply(conversation))
    assert outbox_sweep()["dispatch"] == {"retry": 1}
    message.refresh_from_db()
    assert message.delivery_status == "pending"
    assert message.provider_error_code == "130429"
    assert message.outbox_due_at > timezone.now()
    # Due again: the next sweep sends it.
    Message.objects.filter(pk=message.pk).update(outbox_due_at=timezone.now())
    assert outbox_sweep()["dispatch"] == {"accepted": 1}
    message.refresh_from_db()
    assert message.provider_message_id and message.outbox_attempts == 2


def test_temporary_failures_fail_for_good_after_the_last_attempt(wa, conversation, settings):  # noqa: F811
    settings.HUB_OUTBOX_MAX_ATTEMPTS = 1
    wa.fault(status=500, count=3)
    message = _message(_reply(conversation))
    assert outbox_sweep()["dispatch"] == {"failed": 1}
    message.refresh_from_db()
    assert (message.delivery_status, message.provider_error_code) == ("failed", "131000")


def test_the_24h_rejection_by_the_provider_arrives_as_failed_with_its_code(wa, conversation):  # noqa: F811
    # The stand-in's clock says the window closed, the hub's does not: the provider
    # accepts the message and then reports it failed (131047), as the real one does.
    wa.call("POST", "/_standin/clock", {"advance_seconds": 86_401})
    message = _message(_reply(conversation))
    outbox_sweep()
    wait_for(_reaches(message.pk, "failed"), what="the failed callback")
    message.refresh_from_db()
    assert message.provider_error_code == "131047"
    assert "24 hours" in message.provider_error_text
    [event] = _status_events(message.pk)
    assert event["message"]["error"]["code"] == "131047"


def test_a_template_goes_through_the_outbox_with_its_payload(wa, conversation):  # noqa: F811
    result = services.operator_template_send(
        actor=conversation.op,
        conversation_id=conversation.id,
        client_id="t1",
        name="claim_follow_up",
        language="es",
        components=[{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
        text="Hola Ana, seguimos con su reclamación.",
    )
    assert result.message["kind"] == "template"
    assert result.message["payload"]["name"] == "claim_follow_up"
    outbox_sweep()
    [sent] = wa.outbound(WA_ID)
    assert sent["type"] == "template"
    assert sent["template"]["name"] == "claim_follow_up"
    assert sent["template"]["language"] == {"code": "es"}


# --- statuses sent straight to the webhook (signed) ------------------------------------------


def _status_body(wamid: str, status: str, ts: int, errors: list | None = None) -> bytes:
    item = {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": WA_ID}
    if errors is not None:
        item["errors"] = errors
    value = {"messaging_product": "whatsapp", "statuses": [item]}
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
        }
    ).encode()


def _post_status(live_server, wamid, status, ts=1_732_550_000, errors=None):
    body = _status_body(wamid, status, ts, errors)
    code, answer = http(
        "POST",
        live_server.url + WEBHOOK_PATH,
        raw=body,
        headers={"X-Hub-Signature-256": sign(body)},
    )
    assert code == 200, answer
    return answer["statuses"]


def _accepted(conversation, wamid: str) -> Message:
    """An outbound message the provider accepted with ``wamid`` (the answer recorded
    without a send: these tests drive the callbacks themselves)."""
    message = _message(_reply(conversation, client_id=wamid))
    item = delivery.outbox_claim(message_ids=[message.pk])[0]
    assert (
        delivery.outbound_result_record(item=item, result=SendResult(provider_message_id=wamid))
        == "accepted"
    )
    message.refresh_from_db()
    return message


def test_failed_is_terminal_and_a_failure_after_read_is_ignored(conversation, live_server):
    failed = _accepted(conversation, "wamid.f")
    errors = [{"code": 131026, "title": "Undeliverable", "error_data": {"details": "No phone"}}]
    assert _post_status(live_server, "wamid.f", "failed", errors=errors) == {"applied": 1}
    assert _post_status(live_server, "wamid.f", "read") == {"ignored": 1}
    assert _post_status(live_server, "wamid.f", "delivered") == {"ignored": 1}
    failed.refresh_from_db()
    assert (failed.delivery_status, failed.provider_error_code) == ("failed", "131026")
    assert failed.provider_error_text == "Undeliverable — No phone"

    read = _accepted(conversation, "wamid.r")
    assert _post_status(live_server, "wamid.r", "read") == {"applied": 1}
    assert _post_status(live_server, "wamid.r", "failed", errors=errors) == {"ignored": 1}
    assert _post_status(live_server, "wamid.r", "sent") == {"ignored": 1}
    read.refresh_from_db()
    assert read.delivery_status == "read"
    assert [e["message"]["status"] for e in _status_events(read.pk)] == ["read"]


def test_a_status_for_an_unknown_id_is_200_logged_and_dropped_later(
    conversation, live_server, caplog
):
    assert _post_status(live_server, "wamid.nobody", "delivered") == {"early": 1}
    assert "unknown message id wamid.nobody" in caplog.text
    assert not ConsoleEvent.objects.filter(kind="chat.message_status").exists()
    EarlyStatus.objects.update(received_at=timezone.now() - timedelta(minutes=11))
    assert outbox_sweep() == {"early_statuses": {"applied": 0, "dropped": 1}}
    assert not EarlyStatus.objects.exists()
    assert "no message has that id" in caplog.text


def test_a_status_that_beats_the_send_answer_is_applied_when_the_answer_lands(conversation):
    message = _message(_reply(conversation))
    [item] = delivery.outbox_claim(message_ids=[message.pk])
    update = StatusUpdate(provider_message_id="wamid.fast", status="delivered", at=timezone.now())
    assert delivery.message_status_apply(channel="whatsapp", update=update) == "early"
    assert (
        delivery.outbound_result_record(
            item=item, result=SendResult(provider_message_id="wamid.fast")
        )
        == "accepted"
    )
    message.refresh_from_db()
    assert (message.delivery_status, message.provider_message_id) == ("delivered", "wamid.fast")
    assert not EarlyStatus.objects.exists()
    [event] = _status_events(message.pk)
    assert (event["previous"], event["message"]["status"]) == ("pending", "delivered")


def test_a_claimed_message_is_not_claimed_again_while_its_lease_holds(conversation):
    message = _message(_reply(conversation))
    assert [i.message_id for i in delivery.outbox_claim()] == [message.pk]
    assert delivery.outbox_claim() == []
    Message.objects.filter(pk=message.pk).update(
        outbox_lease_until=timezone.now() - timedelta(seconds=1)
    )
    [again] = delivery.outbox_claim()
    assert again.attempt == 2


# --- two dispatchers ----------------------------------------------------------------------------


def test_two_dispatchers_never_send_the_same_message_twice(wa, conversation, django_db_blocker):  # noqa: F811
    texts = [f"reply {n}" for n in range(30)]
    for n, text in enumerate(texts):
        _reply(conversation, text=text, client_id=f"c{n}")
    start = threading.Barrier(2)
    outcomes: list[dict] = []

    def dispatcher() -> None:
        async def run() -> dict:
            try:
                return await outbox_dispatch(None, batch=3)
            finally:
                await http_session_close()

        start.wait(10)
        outcomes.append(asyncio.run(run()))

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(o.get("accepted", 0) for o in outcomes) == 30
    assert all(o.get("accepted", 0) > 0 for o in outcomes), outcomes  # both took part
    sent = [m["text"] for m in wa.outbound(WA_ID)]
    assert sorted(sent) == sorted(texts)
    ids = list(
        Message.objects.filter(direction="out").values_list("provider_message_id", flat=True)
    )
    assert len(ids) == 30 and len(set(ids)) == 30 and all(ids)
