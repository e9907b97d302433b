"""Consent and eligibility (seed 001): recording and revoking consent, the on-behalf
actions offered, disabled with the exact reason, or hidden, and a refused start that
carries the same reason and is audited.  Over real HTTP to the stand-in, on PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice_bridge import consent, selectors, services
from backoffice_bridge.executor import executions_wait
from backoffice_bridge.models import ActionRequest, AuditEntry
from chat.models import ConsoleEvent
from hub.exceptions import Conflict, ErrorCode, HubError, PermissionDenied, ValidationFailed
from hub.roles import Role

pytestmark = pytest.mark.django_db(transaction=True)

DISPUTE = {"transaction_id": "TX-1001", "amount": "25.40", "reason": "unauthorised"}


def _record(linked, **kw):
    args = {
        "evidence": "Customer wrote: yes, please dispute it for me.",
        "evidence_reference": "m1",
    }
    return consent.consent_record(
        actor=linked["maker"], conversation_id=linked["conversation_id"], **(args | kw)
    )


def _types(linked, actor=None, **kw):
    rows = selectors.action_types_for(
        actor=actor or linked["maker"], conversation_id=linked["conversation_id"], **kw
    )
    return {t["name"]: t for t in rows}


def _dispute(linked, **kw):
    return services.action_request_create(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        action_type="dispute_transaction",
        params=DISPUTE,
        **kw,
    )


def _relink(linked, bank_user_id):
    services.customer_unlink(actor=linked["maker"], conversation_id=linked["conversation_id"])
    services.customer_link(
        actor=linked["maker"], conversation_id=linked["conversation_id"], bank_user_id=bank_user_id
    )


def test_record_list_and_revoke_consent(linked):
    recorded = _record(linked, scope=["stop_cheque"])
    assert recorded["bank_user_id"] == "U1001" and recorded["valid"] is True
    assert recorded["scope"] == ["stop_cheque"] and recorded["evidence_reference"] == "m1"
    assert recorded["recorded_by"]["id"] == linked["maker"].pk
    default_days = timezone.now() + timedelta(days=90)
    assert abs(timezone.datetime.fromisoformat(recorded["expires_at"]) - default_days) < timedelta(
        minutes=1
    )
    listed = selectors.consents_for_conversation(
        actor=linked["checker"], conversation_id=linked["conversation_id"]
    )
    assert listed["bank_user_id"] == "U1001"
    assert [c["id"] for c in listed["consents"]] == [recorded["id"]]
    revoked = consent.consent_revoke(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        consent_id=recorded["id"],
        reason="Customer withdrew it on the phone",
    )
    assert revoked["valid"] is False and revoked["revoked_by"]["id"] == linked["maker"].pk
    assert revoked["revoke_reason"] == "Customer withdrew it on the phone"
    with pytest.raises(Conflict) as again:
        consent.consent_revoke(
            actor=linked["maker"],
            conversation_id=linked["conversation_id"],
            consent_id=recorded["id"],
            reason="again",
        )
    assert again.value.data["reason"] == "already_revoked"
    kinds = list(ConsoleEvent.objects.filter(kind__startswith="backoffice.consent_"))
    assert [e.kind for e in kinds] == ["backoffice.consent_recorded", "backoffice.consent_revoked"]
    audited = list(AuditEntry.objects.filter(object_type="consent").order_by("sequence"))
    assert [(e.action, e.outcome) for e in audited] == [
        ("consent.record", "ok"),
        ("consent.revoke", "ok"),
    ]
    assert audited[0].on_behalf_of == "U1001" and audited[0].actor_role == "Contact center"
    assert audited[1].after["revoke_reason"] == "Customer withdrew it on the phone"
    refused = AuditEntry.objects.get(action="consent.revoke", outcome="refused")
    assert refused.after["error"]["data"]["reason"] == "already_revoked"


@pytest.mark.parametrize(
    ("kw", "field", "reason"),
    [
        ({"evidence": "  "}, "evidence", "missing"),
        ({"evidence_reference": "x" * 201}, "evidence_reference", "too_long"),
        ({"scope": ["block_user"]}, "scope", "not_on_behalf"),
        ({"scope": "all"}, "scope", "wrong_type"),
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, "expires_at", "in_the_past"),
        ({"expires_at": timezone.now() + timedelta(days=400)}, "expires_at", "too_far"),
    ],
)
def test_bad_consent_is_refused_and_audited(linked, kw, field, reason):
    with pytest.raises(ValidationFailed) as bad:
        _record(linked, **kw)
    assert bad.value.data["field"] == field and bad.value.data["reason"] == reason
    entry = AuditEntry.objects.get(action="consent.record")
    assert entry.outcome == "refused" and entry.after["error"]["data"]["field"] == field


def test_consent_needs_a_link_and_the_permission(linked, staff):
    services.customer_unlink(actor=linked["maker"], conversation_id=linked["conversation_id"])
    with pytest.raises(Conflict) as unlinked:
        _record(linked)
    assert unlinked.value.data["reason"] == "customer_not_linked"
    plain = staff("op-plain", Role.OPERATOR)
    with pytest.raises(PermissionDenied):
        consent.consent_record(
            actor=plain, conversation_id=linked["conversation_id"], evidence="yes"
        )


def test_without_the_permission_on_behalf_actions_are_not_offered(linked, staff):
    # Coordinators are checkers, not representatives: no act_on_behalf (seed 001).
    coordinator = _types(linked, actor=linked["checker"])
    assert "dispute_transaction" not in coordinator and "stop_cheque" not in coordinator
    assert coordinator["block_user"]["enabled"] is True
    maker = _types(linked)
    assert {"dispute_transaction", "stop_cheque"} <= set(maker)
    admin = _types(linked, actor=linked["checker2"])
    assert "dispute_transaction" in admin
    with pytest.raises(PermissionDenied):
        services.action_request_create(
            actor=linked["checker"],
            conversation_id=linked["conversation_id"],
            action_type="dispute_transaction",
            params=DISPUTE,
        )


def test_not_consented_is_disabled_with_the_exact_reason_then_enabled(linked, bo):
    offered = _types(linked)["dispute_transaction"]
    assert offered["allowed"] is True and offered["enabled"] is False
    assert offered["disabled_reason"] == "Disabled as the customer has not consented"
    with pytest.raises(HubError) as refused:
        _dispute(linked)
    assert refused.value.code == ErrorCode.CONSENT_REQUIRED and refused.value.status == 409
    assert refused.value.message == "Disabled as the customer has not consented"
    assert refused.value.data["consent"] == "none"
    entry = AuditEntry.objects.get(action="request.create", outcome="refused")
    assert entry.actor_id == linked["maker"].pk and entry.on_behalf_of == "U1001"
    assert entry.conversation_id == linked["conversation_id"]
    assert entry.after["error"]["code"] == "consent_required"
    assert entry.after["attempt"]["action_type"] == "dispute_transaction"
    assert not ActionRequest.objects.exists() and bo.calls(path="/disputes") == []
    _record(linked)
    assert _types(linked)["dispute_transaction"]["enabled"] is True
    started = _dispute(linked)
    assert started["status"] == "approved"  # no checker: executed in the background
    assert executions_wait(30)
    assert ActionRequest.objects.get(pk=started["id"]).status == "done"


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        ("new", "Disabled as the customer is new", "customer_new"),
        ("locked", "Disabled as the customer is locked", "customer_locked"),
        ("suspended", "Disabled as the customer is suspended", "customer_suspended"),
    ],
)
def test_ineligible_accounts_are_disabled_with_the_exact_reason(
    linked, bo, status, message, reason
):
    bo.put_user(id="U1009", user_name="zoe", first_name="Zoe", status=status)
    _relink(linked, "U1009")
    _record(linked)  # consent does not make an ineligible account eligible
    for name in ("dispute_transaction", "stop_cheque"):
        offered = _types(linked)[name]
        assert offered["enabled"] is False
        assert offered["disabled_reason"] == message and offered["disabled_code"] == reason
    with pytest.raises(HubError) as refused:
        _dispute(linked)
    assert refused.value.code == ErrorCode.ACTION_DISABLED
    assert refused.value.message == message and refused.value.data["reason"] == reason
    entry = AuditEntry.objects.filter(action="request.create", outcome="refused").get()
    assert entry.after["error"]["message"] == message and entry.on_behalf_of == "U1009"


def test_status_is_cached_at_link_time_and_reread_when_acting(linked, bo):
    _record(linked)
    bo.put_user(id="U1001", user_name="ana.garcia", status="locked")  # changed at the bank
    # The console still shows the status read at link time ...
    assert _types(linked)["dispute_transaction"]["enabled"] is True
    # ... starting re-reads it, refuses with the fresh reason, and keeps the fresh status.
    with pytest.raises(HubError) as refused:
        _dispute(linked)
    assert refused.value.message == "Disabled as the customer is locked"
    offered = _types(linked)["dispute_transaction"]
    assert offered["disabled_reason"] == "Disabled as the customer is locked"
    change = AuditEntry.objects.get(action="customer.status_refresh")
    assert (change.before, change.after) == ({"status": "active"}, {"status": "locked"})
    # Refreshed on demand once the bank unlocked the user.
    bo.put_user(id="U1001", user_name="ana.garcia", status="active")
    link = services.customer_link_refresh(
        actor=linked["maker"], conversation_id=linked["conversation_id"]
    )
    assert link["bank_user"]["status"] == "active"
    assert _types(linked)["dispute_transaction"]["enabled"] is True


def test_expired_consent_no_longer_counts(linked, bo):
    now = timezone.now()
    _record(linked, expires_at=now + timedelta(hours=1))
    assert _types(linked, now=now + timedelta(minutes=59))["dispute_transaction"]["enabled"]
    later = now + timedelta(hours=1, seconds=1)
    offered = _types(linked, now=later)["dispute_transaction"]
    assert offered["disabled_reason"] == "Disabled as the customer has not consented"
    with pytest.raises(HubError) as refused:
        _dispute(linked, now=later)
    assert refused.value.code == ErrorCode.CONSENT_REQUIRED
    assert refused.value.data["consent"] == "expired"


def test_revoked_consent_no_longer_counts(linked, bo):
    recorded = _record(linked)
    consent.consent_revoke(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        consent_id=recorded["id"],
        reason="withdrawn",
    )
    with pytest.raises(HubError) as refused:
        _dispute(linked)
    assert refused.value.code == ErrorCode.CONSENT_REQUIRED
    assert refused.value.data["consent"] == "revoked"
    assert _types(linked)["dispute_transaction"]["enabled"] is False


def test_scope_limits_the_consent_to_its_types(linked, bo):
    _record(linked, scope=["stop_cheque"])
    offered = _types(linked)
    assert offered["stop_cheque"]["enabled"] is True
    assert offered["dispute_transaction"]["enabled"] is False
    with pytest.raises(HubError) as refused:
        _dispute(linked)
    assert refused.value.data["consent"] == "out_of_scope"


def test_consent_of_another_bank_user_does_not_count(linked, bo):
    _record(linked)
    _relink(linked, "U1002")  # the same customer, now linked to another bank user
    offered = _types(linked)["dispute_transaction"]
    assert offered["disabled_reason"] == "Disabled as the customer has not consented"


def test_consent_rest_endpoints(linked, client):
    base = f"/api/backoffice/conversations/{linked['conversation_id']}/consents/"
    client.force_login(linked["maker"])
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    created = client.post(
        base,
        json.dumps(
            {
                "evidence": "Customer typed 'I agree' in the chat",
                "evidence_reference": "message 42",
                "scope": ["dispute_transaction"],
                "expires_at": expires,
            }
        ),
        content_type="application/json",
    )
    assert created.status_code == 201, created.json()
    consent_id = created.json()["consent"]["id"]
    listed = client.get(base).json()
    assert listed["bank_user_id"] == "U1001" and listed["consents"][0]["id"] == consent_id
    types = client.get(
        f"/api/backoffice/action-types/?conversation_id={linked['conversation_id']}"
    ).json()["action_types"]
    assert {t["name"]: t["enabled"] for t in types}["dispute_transaction"] is True
    bad = client.post(
        base,
        json.dumps({"evidence": "x", "expires_at": "tomorrow"}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.json()["data"]["field"] == "expires_at"
    revoked = client.post(
        f"{base}{consent_id}/revoke/",
        json.dumps({"reason": "withdrawn"}),
        content_type="application/json",
    )
    assert revoked.status_code == 200 and revoked.json()["consent"]["valid"] is False
    refused = client.post(
        f"/api/backoffice/conversations/{linked['conversation_id']}/requests/",
        json.dumps({"action_type": "dispute_transaction", "params": DISPUTE}),
        content_type="application/json",
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "consent_required"
    assert refused.json()["message"] == "Disabled as the customer has not consented"
    refresh = client.post(
        f"/api/backoffice/conversations/{linked['conversation_id']}/link/refresh/"
    )
    assert refresh.status_code == 200 and refresh.json()["link"]["bank_user"]["id"] == "U1001"
