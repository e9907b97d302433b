"""The maker cancels their own request while nobody has decided it (pending, picked,
awaiting the customer's confirmation): ``cancelled``, "Cancelled", announced, audited,
nothing sent to the back office; anyone else is refused, and so is cancelling what is
decided or expired — each with a precise error, audited.  Service and REST, PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice_bridge import services
from backoffice_bridge.executor import executions_wait
from backoffice_bridge.models import ActionRequest, AuditEntry
from chat.models import ConsoleEvent, Message
from chat.services import webchat_message_receive
from hub.exceptions import Conflict, PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db(transaction=True)

BLOCK = {"reason": "lost_device"}


@pytest.fixture(autouse=True)
def _drained():
    yield
    assert executions_wait(30)


def _create(linked, action_type="block_user", params=None, actor="maker"):
    return services.action_request_create(
        actor=linked[actor],
        conversation_id=linked["conversation_id"],
        action_type=action_type,
        params=BLOCK if params is None else params,
    )


def _cancel(linked, req, actor="maker", reason=""):
    return services.action_request_cancel(actor=linked[actor], request_id=req["id"], reason=reason)


def test_the_maker_cancels_a_pending_request(linked, bo):
    req = _create(linked)
    cancelled = _cancel(linked, req, reason="The customer found the phone")
    assert cancelled["status"] == "cancelled" and cancelled["business_status"] == "Cancelled"
    assert cancelled["reason"] == "The customer found the phone"
    assert cancelled["decided_at"] is not None
    (event,) = ConsoleEvent.objects.filter(kind="backoffice.request_cancelled")
    assert event.payload["request"]["id"] == req["id"]
    assert str(event.conversation_id) == linked["conversation_id"]
    entry = AuditEntry.objects.get(action="request.cancel")
    assert entry.outcome == "ok" and entry.actor_id == linked["maker"].pk
    assert entry.before["status"] == "pending" and entry.after["status"] == "cancelled"
    assert entry.after["reason"] == "The customer found the phone"
    # Gone from the checkers' list; no longer blocks the user's requests; never executed.
    from backoffice_bridge import selectors

    assert selectors.action_requests_for_approval(actor=linked["checker"]) == []
    with pytest.raises(Conflict) as late:
        services.action_request_approve(actor=linked["checker"], request_id=req["id"])
    assert late.value.data["reason"] == "already_decided"
    assert _create(linked, "unblock_user", {})["status"] == "pending"
    assert bo.calls(path="/block") == []


def test_a_picked_request_can_be_cancelled_too(linked, bo):
    req = _create(linked)
    services.action_request_pick(actor=linked["checker"], request_id=req["id"])
    assert _cancel(linked, req)["status"] == "cancelled"


def test_only_the_maker_cancels(linked, staff, bo):
    from hub.roles import Role

    req = _create(linked)
    other_maker = staff("cc2", Role.CONTACT_CENTER)
    for actor in (linked["checker"], other_maker):
        with pytest.raises(Exception) as refused:
            services.action_request_cancel(actor=actor, request_id=req["id"])
        # The checker sees every request: permission_denied.  Another maker who cannot see
        # the conversation: the same not_found as for a missing request.
        if actor is linked["checker"]:
            assert isinstance(refused.value, PermissionDenied)
            assert refused.value.data["reason"] == "not_maker"
            assert refused.value.data["maker"]["id"] == linked["maker"].pk
        else:
            assert refused.value.code == "not_found"
    assert ActionRequest.objects.get(pk=req["id"]).status == "pending"
    refusals = AuditEntry.objects.filter(action="request.cancel", outcome="refused")
    assert refusals.count() == 2
    assert refusals.order_by("sequence").first().after["error"]["data"]["reason"] == "not_maker"


@pytest.mark.parametrize("decided", ["approved", "done", "rejected", "cancelled"])
def test_a_decided_request_cannot_be_cancelled(linked, bo, settings, decided):
    settings.BACKOFFICE_EXECUTOR = "off"
    req = _create(linked)
    if decided in ("approved", "done"):
        services.action_request_approve(actor=linked["checker"], request_id=req["id"])
        if decided == "done":
            services.backoffice_tick()
    elif decided == "rejected":
        services.action_request_reject(actor=linked["checker"], request_id=req["id"], reason="no")
    else:
        _cancel(linked, req)
    with pytest.raises(Conflict) as refused:
        _cancel(linked, req)
    assert refused.value.data["reason"] == "already_decided"
    assert refused.value.data["status"] == decided
    assert refused.value.data["request_id"] == req["id"]
    assert ActionRequest.objects.get(pk=req["id"]).status == decided
    assert AuditEntry.objects.filter(action="request.cancel", outcome="refused").exists()


def test_an_expired_request_cannot_be_cancelled(linked, settings):
    settings.BACKOFFICE_REQUEST_TTL_MINUTES = 30
    req = _create(linked)
    with pytest.raises(Conflict) as late:
        services.action_request_cancel(
            actor=linked["maker"],
            request_id=req["id"],
            now=timezone.now() + timedelta(minutes=31),
        )
    assert late.value.data["reason"] == "expired"
    assert ActionRequest.objects.get(pk=req["id"]).status == "pending"


def test_a_reason_longer_than_allowed_is_refused(linked):
    req = _create(linked)
    with pytest.raises(ValidationFailed) as long:
        _cancel(linked, req, reason="x" * 1001)
    assert long.value.data == {"field": "reason", "reason": "too_long"}
    assert ActionRequest.objects.get(pk=req["id"]).status == "pending"


def test_cancelling_while_the_customer_is_asked_tells_them(linked, bo, settings):
    settings.BACKOFFICE_CONFIRM_ACTION_TYPES = ["temporary_limits"]
    req = _create(linked, "temporary_limits", {"daily_transfer": 900, "single_transfer": 100})
    assert req["status"] == "awaiting_confirmation"
    prompt = Message.objects.filter(direction="out").order_by("-id").first().text
    code = re.search(r"YES (\d{6})", prompt).group(1)
    assert _cancel(linked, req)["status"] == "cancelled"
    told = Message.objects.filter(direction="out").order_by("-id").first().text
    assert "withdrew the request" in told
    # The code no longer confirms anything.
    webchat_message_receive(visitor_id="bo-v1", client_id="late-1", text=f"YES {code}")
    assert ActionRequest.objects.get(pk=req["id"]).status == "cancelled"
    assert bo.calls(path="/limits") == []


def test_rest_cancel(linked, client):
    req = _create(linked)
    url = f"/api/backoffice/requests/{req['id']}/cancel/"
    client.force_login(linked["checker"])
    other = client.post(url, content_type="application/json")  # no body at all
    assert other.status_code == 403 and other.json()["data"]["reason"] == "not_maker"
    client.force_login(linked["maker"])
    bad = client.post(url, json.dumps({"reason": 5}), content_type="application/json")
    assert bad.status_code == 400 and bad.json()["data"]["field"] == "reason"
    done = client.post(url, content_type="application/json")  # no body: no reason
    assert done.status_code == 200 and done.json()["request"]["status"] == "cancelled"
    again = client.post(url, json.dumps({"reason": "twice"}), content_type="application/json")
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert again.json()["data"] == {
        "reason": "already_decided",
        "request_id": req["id"],
        "status": "cancelled",
        "business_status": "Cancelled",
        "checker": None,
    }
    missing = client.post(
        "/api/backoffice/requests/999999/cancel/", content_type="application/json"
    )
    assert missing.status_code == 404
