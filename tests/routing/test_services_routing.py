"""routing services: query types, skills, queues, transfers, batch derivation, closing with
a reason, reopening, and the type menu."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import services
from chat.models import ConsoleEvent, Conversation, Message
from hub.exceptions import ErrorCode, HubError, NotFound, PermissionDenied
from hub.roles import Role
from routing import services as routing
from routing.models import (
    Assignment,
    DerivationBatch,
    EntryPoint,
    QueryType,
    ResolutionReason,
    ScheduledAbsence,
)
from routing.services import operator_state_get, presence_set, routing_settings_get
from tests.routing.factories import operator_make

_operator = operator_make

pytestmark = pytest.mark.django_db


def _types() -> dict[str, QueryType]:
    return {
        "payments": QueryType.objects.create(
            code="payments",
            name="Payments",
            priority=200,
            menu_position=1,
            keywords=["transfer", "tarjeta"],
        ),
        "followup": QueryType.objects.create(
            code="followup", name="Follow-up", priority=100, menu_position=2, is_default=True
        ),
        "claims": QueryType.objects.create(
            code="claims", name="Claims", priority=300, menu_position=3, keywords=["reclamación"]
        ),
    }


def _write(visitor, text="hello", entry=None, client_id=None):
    return services.webchat_message_receive(
        visitor_id=visitor,
        client_id=client_id or f"{visitor}-{Message.objects.count()}",
        text=text,
        entry_point=entry,
    )


def _conversation(visitor) -> Conversation:
    return Conversation.objects.get(
        customer__identities__external_id=visitor, status__in=["queued", "assigned"]
    )


def _log_head() -> int:
    return ConsoleEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _error_code(excinfo) -> str:
    return str(excinfo.value.code)


# --- assignment -------------------------------------------------------------------------
def test_conversation_goes_to_an_operator_who_serves_its_type(staff):
    types = _types()
    payments_only = _operator(staff, "pay", types=[types["payments"]])
    claims_only = _operator(staff, "claims", types=[types["claims"]])
    _write("c1", entry="claims")
    _write("c2", entry="payments")
    assert _conversation("c1").operator_id == claims_only.pk
    assert _conversation("c2").operator_id == payments_only.pk
    assert _conversation("c1").query_type.code == "claims"


def test_operator_without_skills_serves_every_type_and_default_type_applies(staff):
    types = _types()
    generalist = _operator(staff, "gen")
    _write("c1")  # no entry point, no menu: the default type
    conversation = _conversation("c1")
    assert conversation.query_type == types["followup"]
    assert conversation.operator_id == generalist.pk


def test_least_loaded_then_longest_waiting_since_last_assignment(staff):
    a = _operator(staff, "a")
    b = _operator(staff, "b")
    _write("c1")
    first = _conversation("c1").operator_id
    _write("c2")
    second = _conversation("c2").operator_id
    assert {first, second} == {a.pk, b.pk}  # least loaded: one each
    _write("c3")
    # Equal load: the one assigned longest ago (the first) gets the third.
    assert _conversation("c3").operator_id == first


def test_nobody_free_waits_in_queue_by_priority_then_age_and_is_told_position(staff):
    types = _types()
    op = _operator(staff, "op", capacity=1)
    _write("busy")  # fills op
    _write("f1", entry="followup")
    _write("f2", entry="followup")
    _write("c1", entry="claims")  # newer but higher priority
    assert _conversation("f2").status == "queued"
    position_texts = list(
        Message.objects.filter(conversation=_conversation("f2"), direction="out").values_list(
            "text", flat=True
        )
    )
    assert position_texts == ["All our agents are busy. You are number 2 in the queue."]
    services.conversation_close(actor=op, conversation_id=_conversation("busy").pk)
    assert _conversation("c1").operator_id == op.pk  # priority first
    assert types["claims"].priority > types["followup"].priority


def test_queue_position_message_can_be_turned_off(staff):
    _operator(staff, "op", capacity=0)
    policy = routing_settings_get()
    policy.queue_position_message = ""
    policy.save()
    _write("c1")
    assert not Message.objects.filter(direction="out").exists()


def test_operator_getting_the_type_takes_waiting_conversations(staff):
    types = _types()
    op = _operator(staff, "op", types=[types["payments"]])
    _write("c1", entry="claims")
    assert _conversation("c1").status == "queued"
    state = operator_state_get(user_id=op.pk)
    state.query_types.add(types["claims"])
    routing.operator_slot_freed(operator=op)  # what the skills editor calls
    assert _conversation("c1").operator_id == op.pk


def test_operator_on_scheduled_absence_receives_nothing(staff):
    away = _operator(staff, "away")
    now = timezone.now()
    ScheduledAbsence.objects.create(
        operator=away, starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1)
    )
    _write("c1")
    assert _conversation("c1").status == "queued"


# --- transfers --------------------------------------------------------------------------
def test_operator_cannot_transfer(staff):
    a = _operator(staff, "a")
    b = _operator(staff, "b")
    _write("c1")
    with pytest.raises(PermissionDenied):
        routing.conversation_transfer(
            actor=a, conversation_id=_conversation("c1").pk, to_operator_id=b.pk
        )


def test_coordinator_transfers_with_note_both_consoles_told_and_recorded(staff):
    a = _operator(staff, "a")
    coordinator = staff("coord", Role.COORDINATOR)
    _write("c1")
    conversation = _conversation("c1")
    source = conversation.operator_id
    b = _operator(staff, "b")
    before = _log_head()
    result = routing.conversation_transfer(
        actor=coordinator, conversation_id=conversation.pk, to_operator_id=b.pk, note="VIP"
    )
    assert result["operator_id"] == b.pk
    events = list(
        ConsoleEvent.objects.filter(id__gt=before).order_by("id").values_list("kind", "operator_id")
    )
    assert ("routing.conversation_unassigned", source) in events
    assert ("routing.conversation_assigned", b.pk) in events
    record = Assignment.objects.get(kind="transferred")
    assert (record.from_operator_id, record.to_operator_id, record.actor_id, record.note) == (
        a.pk,
        b.pk,
        coordinator.pk,
        "VIP",
    )
    assert Message.objects.filter(conversation=conversation).count() == 1  # history kept


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("offline", ErrorCode.OPERATOR_UNAVAILABLE),
        ("unqualified", ErrorCode.OPERATOR_UNQUALIFIED),
        ("full", ErrorCode.OPERATOR_AT_CAPACITY),
    ],
)
def test_transfer_to_unfit_operator_is_refused_and_nothing_changes(staff, setup, code):
    types = _types()
    _operator(staff, "a")
    coordinator = staff("coord", Role.COORDINATOR)
    _write("c1", entry="claims")
    conversation = _conversation("c1")
    target = _operator(
        staff,
        "b",
        online=setup != "offline",
        types=[types["payments"]] if setup == "unqualified" else [],
        capacity=0 if setup == "full" else 5,
    )
    events = ConsoleEvent.objects.count()
    with pytest.raises(HubError) as excinfo:
        routing.conversation_transfer(
            actor=coordinator, conversation_id=conversation.pk, to_operator_id=target.pk
        )
    assert _error_code(excinfo) == code
    assert _conversation("c1").operator_id == conversation.operator_id
    assert ConsoleEvent.objects.count() == events
    assert not Assignment.objects.filter(kind="transferred").exists()


def test_admin_may_force_beyond_capacity_coordinator_may_not(staff):
    _operator(staff, "a")
    admin = staff("admin", Role.ADMIN)
    coordinator = staff("coord", Role.COORDINATOR)
    _write("c1")
    full = _operator(staff, "full", capacity=0)
    conversation_id = _conversation("c1").pk
    with pytest.raises(PermissionDenied):
        routing.conversation_transfer(
            actor=coordinator, conversation_id=conversation_id, to_operator_id=full.pk, force=True
        )
    routing.conversation_transfer(
        actor=admin, conversation_id=conversation_id, to_operator_id=full.pk, force=True
    )
    assert _conversation("c1").operator_id == full.pk


def test_transfer_to_unknown_operator_is_not_found(staff):
    _operator(staff, "a")
    coordinator = staff("coord", Role.COORDINATOR)
    _write("c1")
    with pytest.raises(NotFound):
        routing.conversation_transfer(
            actor=coordinator, conversation_id=_conversation("c1").pk, to_operator_id=999_999
        )


def test_back_to_the_queue_goes_to_someone_else_free_or_waits(staff):
    _operator(staff, "a")
    coordinator = staff("coord", Role.COORDINATOR)
    _write("c1")
    routing.conversation_transfer(
        actor=coordinator, conversation_id=_conversation("c1").pk, to_operator_id=None
    )
    assert _conversation("c1").status == "queued"  # a is excluded, nobody else
    b = _operator(staff, "b")
    assert _conversation("c1").operator_id == b.pk


# --- batch derivation -------------------------------------------------------------------
def _load(staff, n, *, capacity=20):
    a = _operator(staff, "absent", capacity=capacity)
    for i in range(n):
        _write(f"c{i}")
    presence_set(actor=a, presence="offline")
    return a


def test_batch_to_one_operator_moves_all_with_one_batch_and_per_conversation_records(staff):
    a = _load(staff, 4)
    b = _operator(staff, "b", capacity=10)
    admin = staff("admin", Role.ADMIN)
    preview = routing.derivation_preview(
        actor=admin, from_operator_id=a.pk, to_operator_id=b.pk, force=False
    )
    assert (preview["count"], preview["per_target"]) == (4, {str(b.pk): 4})
    assert Conversation.objects.filter(operator=a).count() == 4  # preview changed nothing
    summary = routing.operator_conversations_derive(
        actor=admin, from_operator_id=a.pk, to_operator_id=b.pk, note="sick leave"
    )
    assert summary["count"] == 4
    assert Conversation.objects.filter(operator=b, status="assigned").count() == 4
    batch = DerivationBatch.objects.get()
    assert (batch.count, batch.actor_id, batch.note) == (4, admin.pk, "sick leave")
    assert Assignment.objects.filter(batch=batch, from_operator=a, to_operator=b).count() == 4
    kinds = set(ConsoleEvent.objects.values_list("kind", "operator_id"))
    assert ("routing.conversations_unassigned", a.pk) in kinds
    assert ("routing.conversations_assigned", b.pk) in kinds
    assert ("routing.derivation_completed", None) in kinds


def test_batch_is_all_or_nothing_when_target_lacks_room(staff):
    a = _load(staff, 4)
    b = _operator(staff, "b", capacity=3)
    admin = staff("admin", Role.ADMIN)
    with pytest.raises(HubError) as excinfo:
        routing.operator_conversations_derive(
            actor=admin, from_operator_id=a.pk, to_operator_id=b.pk
        )
    assert _error_code(excinfo) == ErrorCode.OPERATOR_AT_CAPACITY
    assert Conversation.objects.filter(operator=a).count() == 4
    assert not DerivationBatch.objects.exists()


def test_batch_spread_over_online_operators_by_type_rest_waits(staff):
    types = _types()
    a = _operator(staff, "absent", capacity=10)
    for i in range(3):
        _write(f"p{i}", entry="payments")
    for i in range(2):
        _write(f"k{i}", entry="claims")
    presence_set(actor=a, presence="offline")
    pay = _operator(staff, "pay", types=[types["payments"]], capacity=2)
    claims = _operator(staff, "claims", types=[types["claims"]], capacity=5)
    admin = staff("admin", Role.ADMIN)
    summary = routing.operator_conversations_derive(
        actor=admin, from_operator_id=a.pk, to_operator_id=None
    )
    assert summary["per_target"] == {str(claims.pk): 2, str(pay.pk): 2, "queue": 1}
    assert Conversation.objects.filter(operator=a, status="assigned").count() == 0
    assert Conversation.objects.filter(status="queued").count() == 1


@pytest.mark.parametrize("who", [Role.OPERATOR, Role.COORDINATOR])
def test_batch_derivation_is_for_admins(staff, who):
    a = _load(staff, 1)
    b = _operator(staff, "b")
    with pytest.raises(PermissionDenied):
        routing.operator_conversations_derive(
            actor=staff("someone", who), from_operator_id=a.pk, to_operator_id=b.pk
        )


def test_batch_from_operator_with_nothing_active_is_refused(staff):
    a = _operator(staff, "idle")
    b = _operator(staff, "b")
    with pytest.raises(HubError) as excinfo:
        routing.operator_conversations_derive(
            actor=staff("admin", Role.ADMIN), from_operator_id=a.pk, to_operator_id=b.pk
        )
    assert _error_code(excinfo) == ErrorCode.NOTHING_TO_DERIVE


def test_message_after_batch_goes_to_the_new_operator(staff):
    a = _load(staff, 1)
    b = _operator(staff, "b")
    routing.operator_conversations_derive(
        actor=staff("admin", Role.ADMIN), from_operator_id=a.pk, to_operator_id=b.pk
    )
    before = _log_head()
    _write("c0", text="still there?")
    event = ConsoleEvent.objects.filter(id__gt=before, kind="chat.message_created").get()
    assert event.operator_id == b.pk


# --- closing and reopening ----------------------------------------------------------------
def test_close_requires_a_reason_valid_for_the_type(staff):
    types = _types()
    op = _operator(staff, "op")
    solved = ResolutionReason.objects.create(name="Solved")
    refund = ResolutionReason.objects.create(name="Refund issued")
    refund.query_types.set([types["claims"]])
    _write("c1", entry="payments")
    conversation_id = _conversation("c1").pk
    with pytest.raises(HubError) as missing:
        services.conversation_close(actor=op, conversation_id=conversation_id)
    assert _error_code(missing) == ErrorCode.RESOLUTION_REQUIRED
    with pytest.raises(HubError) as wrong_type:
        services.conversation_close(
            actor=op, conversation_id=conversation_id, resolution_id=refund.pk
        )
    assert _error_code(wrong_type) == ErrorCode.RESOLUTION_REQUIRED
    assert Conversation.objects.get(pk=conversation_id).status == "assigned"
    closed = services.conversation_close(
        actor=op, conversation_id=conversation_id, resolution_id=solved.pk
    )
    assert closed["resolution"] == {"id": solved.pk, "name": "Solved"}


def test_writing_within_reopen_window_reopens_to_the_same_operator(staff):
    op = _operator(staff, "op")
    policy = routing_settings_get()
    policy.reopen_window_minutes = 30
    policy.save()
    _write("c1")
    first = _conversation("c1")
    services.conversation_close(actor=op, conversation_id=first.pk)
    _operator(staff, "other")  # free and less loaded, but the conversation returns to op
    _write("c1", text="one more thing")
    again = _conversation("c1")
    assert again.pk == first.pk
    assert again.operator_id == op.pk
    assert Assignment.objects.filter(conversation=first, kind="reopened").exists()


def test_writing_after_the_reopen_window_opens_a_new_conversation(staff):
    op = _operator(staff, "op")
    _write("c1")
    first = _conversation("c1")
    services.conversation_close(actor=op, conversation_id=first.pk)
    Conversation.objects.filter(pk=first.pk).update(closed_at=timezone.now() - timedelta(hours=2))
    _write("c1")
    assert _conversation("c1").pk != first.pk


# --- the type menu and corrections ----------------------------------------------------------
def _menu_on():
    policy = routing_settings_get()
    policy.type_menu_enabled = True
    policy.queue_position_message = ""
    policy.save()


def test_menu_is_sent_and_a_number_answer_routes(staff):
    types = _types()
    claims = _operator(staff, "claims", types=[types["claims"]])
    _menu_on()
    _write("c1", text="hola")
    conversation = _conversation("c1")
    assert conversation.status == "queued" and conversation.query_type is None
    menu = Message.objects.filter(conversation=conversation, direction="out").get().text
    assert "1 Payments" in menu and "3 Claims" in menu
    _write("c1", text="3")
    conversation = _conversation("c1")
    assert conversation.query_type == types["claims"]
    assert conversation.operator_id == claims.pk


def test_menu_free_text_matches_keywords_ignoring_accents(staff):
    types = _types()
    _operator(staff, "op")
    _menu_on()
    _write("c1", text="hola")
    _write("c1", text="Tengo una RECLAMACION")
    assert _conversation("c1").query_type == types["claims"]


def test_menu_unmatched_twice_falls_back_to_default(staff):
    types = _types()
    _operator(staff, "op")
    _menu_on()
    _write("c1", text="hola")
    _write("c1", text="no sé")
    assert _conversation("c1").query_type is None  # asked again
    _write("c1", text="???")
    assert _conversation("c1").query_type == types["followup"]
    assert _conversation("c1").status == "assigned"


def test_entry_point_address_gives_the_type_without_menu(staff):
    types = _types()
    _operator(staff, "op")
    _menu_on()
    EntryPoint.objects.create(channel="webchat", address="claims-page", query_type=types["claims"])
    _write("c1", entry="claims-page")
    assert _conversation("c1").query_type == types["claims"]
    assert not Message.objects.filter(direction="out").exists()


def test_correcting_the_type_reroutes_to_someone_who_serves_it(staff):
    types = _types()
    pay = _operator(staff, "pay", types=[types["payments"]])
    _write("c1", entry="payments")
    claims = _operator(staff, "claims", types=[types["claims"]])
    conversation = _conversation("c1")
    assert conversation.operator_id == pay.pk
    routing.conversation_type_set(
        actor=pay, conversation_id=conversation.pk, query_type_id=types["claims"].pk
    )
    conversation = _conversation("c1")
    assert (conversation.query_type, conversation.operator_id) == (types["claims"], claims.pk)
    assert Assignment.objects.filter(kind="type_changed", to_operator=claims).exists()


def test_coordinator_sets_skills_and_capacity_and_waiting_conversations_follow(staff):
    _types()
    op = _operator(staff, "op", capacity=0)
    _write("c1", entry="claims")
    assert _conversation("c1").status == "queued"
    with pytest.raises(PermissionDenied):
        routing.operator_profile_set(actor=op, user_id=op.pk, capacity=3)
    with pytest.raises(NotFound):
        routing.operator_profile_set(
            actor=staff("coord", Role.COORDINATOR), user_id=op.pk, query_type_codes=["nope"]
        )
    routing.operator_profile_set(
        actor=staff("coord2", Role.COORDINATOR),
        user_id=op.pk,
        query_type_codes=["claims"],
        capacity=2,
    )
    assert _conversation("c1").operator_id == op.pk
