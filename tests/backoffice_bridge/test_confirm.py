"""The customer's confirmation in the chat: a sensitive type waits for the one-time code
the hub sends on the conversation; the customer's next message with the code confirms it
(through chat's inbound hook), NO + code declines, wrong codes count, and the code
expires.  Over the real web chat path and the stand-in, on PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice_bridge import services
from backoffice_bridge.actions import action_type_get
from backoffice_bridge.audit import audit_chain_verify
from backoffice_bridge.confirmation import customer_confirmation_answer
from backoffice_bridge.executor import executions_wait
from backoffice_bridge.models import ActionRequest, AuditEntry
from chat.models import ConsoleEvent, Message
from chat.services import webchat_message_receive
from hub.exceptions import Conflict

pytestmark = pytest.mark.django_db(transaction=True)

LIMITS = {"daily_transfer": 8000, "single_transfer": 3000}


@pytest.fixture
def confirm_types(settings):
    settings.BACKOFFICE_CONFIRM_ACTION_TYPES = ["temporary_limits", "reset_password"]


def _start(linked, action_type="temporary_limits", params=None):
    return services.action_request_create(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        action_type=action_type,
        params=LIMITS if params is None else params,
    )


def _hub_messages(linked) -> list[str]:
    return list(
        Message.objects.filter(conversation_id=linked["conversation_id"], direction="out")
        .order_by("id")
        .values_list("text", flat=True)
    )


def _code(linked) -> str:
    prompt = next(t for t in reversed(_hub_messages(linked)) if "To confirm" in t)
    return re.search(r"YES (\d{6})", prompt).group(1)


_sent = iter(range(100, 10_000))


def _customer_says(text: str) -> None:
    webchat_message_receive(visitor_id="bo-v1", client_id=str(next(_sent)), text=text)


def test_configurable_per_type(settings):
    assert action_type_get("temporary_limits").needs_confirmation() is False
    settings.BACKOFFICE_CONFIRM_ACTION_TYPES = ["temporary_limits"]
    assert action_type_get("temporary_limits").needs_confirmation() is True
    assert action_type_get("block_user").needs_confirmation() is False
    assert action_type_get("temporary_limits").describe()["needs_confirmation"] is True


def test_the_customer_confirms_then_the_checker_decides(linked, bo, confirm_types):
    req = _start(linked)
    assert req["status"] == "awaiting_confirmation"
    assert req["business_status"] == "Awaiting Customer Confirmation"
    prompt = _hub_messages(linked)[-1]
    assert '"Temporary transfer limits"' in prompt and "within 10 minutes" in prompt
    row = ActionRequest.objects.get(pk=req["id"])
    assert _code(linked) not in row.confirmation_code_hash  # only a hash is stored
    # Checkers cannot decide what the customer has not confirmed.
    with pytest.raises(Conflict) as early:
        services.action_request_approve(actor=linked["checker"], request_id=req["id"])
    assert early.value.data["reason"] == "awaiting_confirmation"
    _customer_says("ok, thanks")  # no code: nothing happens
    assert ActionRequest.objects.get(pk=req["id"]).status == "awaiting_confirmation"
    _customer_says(f"SI {_code(linked)}")
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.status == "pending" and row.business_status == "To Be Changed (Temporary Limits)"
    assert row.confirmed_at is not None
    assert _hub_messages(linked)[-1] == "Thank you, confirmed."
    assert ConsoleEvent.objects.filter(kind="backoffice.request_confirmed").count() == 1
    confirm = AuditEntry.objects.get(action="request.confirm")
    assert confirm.outcome == "ok" and confirm.actor_role == "customer"
    assert confirm.on_behalf_of == "U1001" and confirm.after["status"] == "pending"
    assert bo.calls(path="/limits") == []  # still nothing at the bank before approval
    approved = services.action_request_approve(actor=linked["checker"], request_id=req["id"])
    assert approved["status"] == "approved"
    assert executions_wait(30)
    assert ActionRequest.objects.get(pk=req["id"]).status == "done"
    assert audit_chain_verify().ok


def test_a_type_without_checker_runs_once_confirmed(linked, bo, confirm_types):
    req = _start(linked, "reset_password", {})
    assert req["status"] == "awaiting_confirmation" and bo.calls(path="/password-reset") == []
    _customer_says(f"YES {_code(linked)}")
    assert executions_wait(30)
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.status == "done" and row.business_status == "Password Reset Sent"
    assert bo.user("U1001")["password_resets"] == 1


def test_no_with_the_code_declines(linked, bo, confirm_types):
    req = _start(linked)
    _customer_says(f"NO {_code(linked)}")
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.status == "rejected" and row.reason == "The customer declined in the chat."
    assert _hub_messages(linked)[-1] == "Understood: nothing was done."
    assert ConsoleEvent.objects.filter(kind="backoffice.request_rejected").exists()


def test_wrong_codes_are_counted_audited_and_end_it(linked, bo, confirm_types, settings):
    settings.BACKOFFICE_CONFIRM_MAX_ATTEMPTS = 2
    req = _start(linked)
    wrong = "000000" if _code(linked) != "000000" else "111111"
    _customer_says(f"yes {wrong}")
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.status == "awaiting_confirmation" and row.confirmation_attempts == 1
    assert "not right" in _hub_messages(linked)[-1]
    _customer_says(wrong)
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.status == "rejected" and "failed 2 times" in row.reason
    refused = AuditEntry.objects.filter(action="request.confirm", outcome="refused")
    assert [e.after["error"] for e in refused.order_by("sequence")] == ["wrong_code"] * 2
    # The right code afterwards changes nothing: the request is closed.
    assert (
        customer_confirmation_answer(
            conversation_id=linked["conversation_id"],
            customer_id=row.customer_id,
            text=_code(linked),
        )
        is None
    )


def test_the_code_expires(linked, bo, confirm_types):
    req = _start(linked)
    row = ActionRequest.objects.get(pk=req["id"])
    assert row.confirmation_expires_at - row.created_at == timedelta(minutes=10)
    # A late answer (before the job ran) is refused, audited and ends the request.
    late = customer_confirmation_answer(
        conversation_id=linked["conversation_id"],
        customer_id=row.customer_id,
        text=f"YES {_code(linked)}",
        now=row.confirmation_expires_at + timedelta(seconds=1),
    )
    assert late["status"] == "expired"
    assert "expired" in _hub_messages(linked)[-1]
    entry = AuditEntry.objects.get(action="request.confirm")
    assert entry.outcome == "refused" and entry.after["error"] == "expired"
    # The scheduler expires one nobody answered.
    other = _start(linked, "reset_password", {})
    assert services.action_requests_expire(now=timezone.now() + timedelta(minutes=9)) == 0
    assert services.action_requests_expire(now=timezone.now() + timedelta(minutes=11)) == 1
    row = ActionRequest.objects.get(pk=other["id"])
    assert row.status == "expired" and row.reason == "The customer did not confirm in time."
    assert AuditEntry.objects.filter(action="request.expire", request_id=other["id"]).exists()


def test_six_digits_without_a_waiting_request_change_nothing(linked, bo):
    before = AuditEntry.objects.count()
    _customer_says("my card ends 123456")
    assert AuditEntry.objects.count() == before
    assert _hub_messages(linked) == []
