"""On-behalf actions (seed 001): disputing a transaction and stopping a cheque or a series,
with their parameters validated before anything is saved or sent (every refusal
audited), executed once at the stand-in over real HTTP, and recorded in the audit chain
on behalf of the bank user."""

from __future__ import annotations

import pytest

from backoffice_bridge import consent, selectors, services
from backoffice_bridge.actions import action_type_get
from backoffice_bridge.audit import audit_chain_verify
from backoffice_bridge.executor import executions_wait
from backoffice_bridge.models import ActionRequest, AuditEntry
from chat.models import ConsoleEvent
from hub.exceptions import ErrorCode, ValidationFailed

DISPUTE = action_type_get("dispute_transaction")
STOP = action_type_get("stop_cheque")


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"amount": "10", "reason": "duplicate"}, "params.transaction_id", "missing"),
        (
            {"transaction_id": "T1", "amount": "-5", "reason": "duplicate"},
            "params.amount",
            "negative",
        ),
        (
            {"transaction_id": "T1", "amount": -5, "reason": "duplicate"},
            "params.amount",
            "negative",
        ),
        (
            {"transaction_id": "T1", "amount": 0, "reason": "duplicate"},
            "params.amount",
            "not_positive",
        ),
        (
            {"transaction_id": "T1", "amount": "1.005", "reason": "duplicate"},
            "params.amount",
            "too_many_decimals",
        ),
        (
            {"transaction_id": "T1", "amount": "ten", "reason": "duplicate"},
            "params.amount",
            "wrong_type",
        ),
        (
            {"transaction_id": "T1", "amount": True, "reason": "duplicate"},
            "params.amount",
            "wrong_type",
        ),
        (
            {"transaction_id": "T1", "amount": "NaN", "reason": "duplicate"},
            "params.amount",
            "wrong_type",
        ),
        (
            {"transaction_id": "T1", "amount": "2000000", "reason": "duplicate"},
            "params.amount",
            "above_maximum",
        ),
        (
            {"transaction_id": "T 1", "amount": "1", "reason": "duplicate"},
            "params.transaction_id",
            "bad_format",
        ),
        (
            {"transaction_id": "T1", "amount": "1", "reason": "bored"},
            "params.reason",
            "not_a_choice",
        ),
    ],
)
def test_dispute_parameters(params, field, reason):
    with pytest.raises(ValidationFailed) as refused:
        DISPUTE.clean(params)
    assert refused.value.data["field"] == field and refused.value.data["reason"] == reason


def test_dispute_amount_is_kept_as_a_two_decimal_string():
    cleaned = DISPUTE.clean({"transaction_id": "TX-9", "amount": 12.5, "reason": "duplicate"})
    assert cleaned["amount"] == "12.50"
    assert (
        DISPUTE.clean({"transaction_id": "T", "amount": "7", "reason": "other"})["amount"] == "7.00"
    )


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"reason": "lost"}, "params.cheque_number", "missing"),
        ({"cheque_number": "12a", "reason": "lost"}, "params.cheque_number", "not_digits"),
        ({"cheque_number": "-12", "reason": "lost"}, "params.cheque_number", "not_digits"),
        ({"cheque_number": 120, "reason": "lost"}, "params.cheque_number", "wrong_type"),
        (
            {"cheque_number": "100", "last_cheque_number": "99", "reason": "lost"},
            "params.last_cheque_number",
            "series_reversed",
        ),
        (
            {"cheque_number": "100", "last_cheque_number": "110", "reason": "lost"},
            "params.last_cheque_number",
            "series_too_long",
        ),
        (
            {"cheque_number": "100", "last_cheque_number": "1x", "reason": "lost"},
            "params.last_cheque_number",
            "not_digits",
        ),
        ({"cheque_number": "1234567890123", "reason": "lost"}, "params.cheque_number", "too_long"),
    ],
)
def test_stop_cheque_parameters(settings, params, field, reason):
    settings.BACKOFFICE_MAX_CHEQUE_SERIES = 10
    with pytest.raises(ValidationFailed) as refused:
        STOP.clean(params)
    assert refused.value.data["field"] == field and refused.value.data["reason"] == reason
    if reason == "series_too_long":
        assert refused.value.data["maximum"] == 10


def test_a_series_at_the_maximum_is_accepted(settings):
    settings.BACKOFFICE_MAX_CHEQUE_SERIES = 10
    cleaned = STOP.clean({"cheque_number": "0100", "last_cheque_number": "0109", "reason": "lost"})
    assert cleaned["last_cheque_number"] == "0109"


@pytest.fixture
def consented(linked):
    consent.consent_record(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        evidence="The customer asked us in the chat to act for them.",
    )
    return linked


def _start(linked, action_type, params):
    """Start it (no checker: approved at once) and wait for the executor's outcome."""
    started = services.action_request_create(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        action_type=action_type,
        params=params,
    )
    assert started["status"] == "approved"
    assert executions_wait(30)
    return selectors.request_dict(
        ActionRequest.objects.select_related("maker", "checker").get(pk=started["id"])
    )


@pytest.mark.django_db(transaction=True)
def test_dispute_on_behalf_is_executed_once_and_audited(consented, bo):
    linked = consented
    # The back office acts, then the answer is lost: the client's retry is replayed.
    bo.fault(status=503, path="/disputes", after_action=True)
    done = _start(
        linked,
        "dispute_transaction",
        {"transaction_id": "TX-77", "amount": "99.90", "reason": "unauthorised"},
    )
    assert done["status"] == "done" and done["business_status"] == "Dispute Opened"
    assert done["on_behalf"] is True and done["checker"] is None
    calls = bo.calls(path="/disputes")
    assert len(calls) == 2 and sum(c["acted"] for c in calls) == 1
    assert calls[1]["replayed"] is True
    note = ConsoleEvent.objects.get(kind="backoffice.action_outcome").payload["note"]
    assert "Dispute DSP000001 opened on behalf of bank user U1001" in note
    actions = list(
        AuditEntry.objects.filter(request_id=done["id"])
        .order_by("sequence")
        .values_list("action", "on_behalf_of", "actor_role")
    )
    assert actions == [
        ("request.create", "U1001", "Contact center"),
        ("request.execute", "U1001", "system"),
        ("request.outcome", "U1001", "system"),
    ]
    assert audit_chain_verify().ok
    # The back office refuses a second dispute of the same transaction: failed, its reason.
    again = _start(
        linked,
        "dispute_transaction",
        {"transaction_id": "TX-77", "amount": "99.90", "reason": "unauthorised"},
    )
    assert again["status"] == "failed"
    assert again["outcome"]["reason"] == "this transaction is already disputed"


@pytest.mark.django_db(transaction=True)
def test_stop_a_single_cheque_and_a_series(consented, bo):
    linked = consented
    single = _start(linked, "stop_cheque", {"cheque_number": "000123", "reason": "lost"})
    assert single["status"] == "done" and single["business_status"] == "Stopped"
    series = _start(
        linked,
        "stop_cheque",
        {"cheque_number": "000200", "last_cheque_number": "000209", "reason": "stolen"},
    )
    assert series["status"] == "done"
    assert series["outcome"]["result"]["stop"]["count"] == 10
    notes = [
        e.payload["note"]
        for e in ConsoleEvent.objects.filter(kind="backoffice.action_outcome").order_by("id")
    ]
    assert notes[0].startswith("Stopped cheque 000123 on behalf of bank user U1001")
    assert notes[1].startswith("Stopped cheques 000200 to 000209")
    overlap = _start(
        linked,
        "stop_cheque",
        {"cheque_number": "000205", "last_cheque_number": "000206", "reason": "lost"},
    )
    assert overlap["status"] == "failed" and "already stopped" in overlap["outcome"]["reason"]


@pytest.mark.django_db(transaction=True)
def test_bad_parameters_save_nothing_send_nothing_and_are_audited(consented, bo, client):
    linked = consented
    for params in (
        {"transaction_id": "TX-1", "amount": "-3", "reason": "duplicate"},
        {"cheque_number": "10", "last_cheque_number": "5", "reason": "lost"},
    ):
        action_type = "stop_cheque" if "cheque_number" in params else "dispute_transaction"
        with pytest.raises(ValidationFailed):
            _start(linked, action_type, params)
    assert not ActionRequest.objects.exists()
    assert bo.calls(path="/disputes") == [] and bo.calls(path="/cheques") == []
    refused = list(
        AuditEntry.objects.filter(action="request.create", outcome="refused").order_by("sequence")
    )
    assert [e.after["error"]["data"]["reason"] for e in refused] == ["negative", "series_reversed"]
    assert all(e.on_behalf_of == "U1001" for e in refused)
    client.force_login(linked["maker"])
    answer = client.post(
        f"/api/backoffice/conversations/{linked['conversation_id']}/requests/",
        {"action_type": "dispute_transaction", "params": {"amount": "1", "reason": "other"}},
        content_type="application/json",
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == ErrorCode.MISSING_FIELD
    assert answer.json()["data"]["field"] == "params.transaction_id"
