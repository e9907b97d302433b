"""Out of hours through the real paths: a customer's first message while closed gets the
autoreply once per conversation per closed period; operators never receive queries while
closed; held conversations are routed at the opening, or closed with the configured
resolution; several schedulers at once do each thing once (PostgreSQL, threads)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection

from chat import services as chat
from chat.models import ConsoleEvent, Conversation, Direction, Message
from routing.models import Assignment, QueryType, ResolutionReason
from routing.services import presence_set, routing_settings_get
from scheduling import services, transitions
from scheduling.models import OutOfHoursRecord
from tests.routing.factories import operator_make
from tests.scheduling.factories import ALWAYS_OPEN, CLOSED, hours_set

pytestmark = pytest.mark.django_db


def _write(visitor: str, text: str = "hello", **kwargs: Any):
    return chat.webchat_message_receive(
        visitor_id=visitor,
        client_id=f"{visitor}-{Message.objects.count()}",
        text=text,
        **kwargs,
    )


def _conversation(visitor: str) -> Conversation:
    return Conversation.objects.filter(customer__identities__external_id=visitor).latest(
        "created_at"
    )


def _hub_messages(conversation: Conversation) -> list[str]:
    return list(
        Message.objects.filter(
            conversation=conversation, direction=Direction.OUTBOUND, author__isnull=True
        )
        .order_by("id")
        .values_list("text", flat=True)
    )


def test_first_message_while_closed_gets_the_autoreply_once_and_no_operator(staff):
    operator = operator_make(staff, "omar")
    hours_set(CLOSED)
    _write("ana", "hi")
    _write("ana", "anyone?")
    _write("ana", "hello??")
    conversation = _conversation("ana")
    assert conversation.status == "queued" and conversation.operator_id is None
    replies = _hub_messages(conversation)
    assert len(replies) == 1  # no queue position message, no second autoreply
    assert replies[0].startswith("We are closed. We open ")
    record = OutOfHoursRecord.objects.get()
    assert record.message_id == Message.objects.get(text=replies[0]).pk
    assignment = Assignment.objects.get(conversation=conversation)
    assert assignment.kind == "queued" and assignment.note.startswith("Out of hours")
    # Coming online or a freed slot does not pull it either.
    presence_set(actor=operator, presence="offline")
    presence_set(actor=operator, presence="online")
    assert _conversation("ana").operator_id is None


def test_open_hours_change_nothing(staff):
    operator = operator_make(staff, "omar")
    hours_set(ALWAYS_OPEN)
    _write("ana")
    conversation = _conversation("ana")
    assert conversation.operator_id == operator.pk
    assert _hub_messages(conversation) == []
    assert not OutOfHoursRecord.objects.exists()


def test_the_opening_routes_held_conversations(staff):
    operator = operator_make(staff, "omar", capacity=2)
    hours_set(CLOSED)
    for visitor in ("ana", "ben", "chen"):
        _write(visitor)
    assert not transitions.hours_transitions()  # still closed: nothing to do
    hours_set(ALWAYS_OPEN)
    report = transitions.hours_transitions()
    assert len(report.released) == 3 and not report.failed
    assigned = Conversation.objects.filter(operator=operator, status="assigned")
    assert assigned.count() == 2  # capacity 2; the third waits in the queue
    waiting = Conversation.objects.get(status="queued")
    assert waiting.customer.identities.get().external_id == "chen"  # oldest first
    assert "number 1 in the queue" in _hub_messages(waiting)[-1]
    assert Assignment.objects.filter(note=transitions.OPENED_NOTE).count() == 3
    assert not OutOfHoursRecord.objects.filter(released_at__isnull=True).exists()
    assert not transitions.hours_transitions()  # done once


def test_closing_handles_those_still_waiting_once(staff):
    hours_set(ALWAYS_OPEN)
    _write("ana")  # nobody online: waits in the queue, told their position
    conversation = _conversation("ana")
    assert len(_hub_messages(conversation)) == 1
    hours_set(CLOSED)
    report = transitions.hours_transitions()
    assert report.held == (str(conversation.pk),)
    assert _hub_messages(conversation)[-1].startswith("We are closed")
    assert not transitions.hours_transitions()
    _write("ana", "still there?")
    assert len(_hub_messages(conversation)) == 2


def test_refer_off_closes_with_the_resolution_and_a_second_conversation_is_not_told_again(
    staff,
):
    operator_make(staff, "omar")
    reason = ResolutionReason.objects.create(name="Out of hours")
    hours_set(CLOSED, refer_when_open=False, closed_resolution_id=reason.pk)
    _write("ana", "hi")
    first = _conversation("ana")
    assert (first.status, first.resolution_id) == ("closed", reason.pk)
    assert len(_hub_messages(first)) == 1
    closed_event = ConsoleEvent.objects.filter(kind="chat.conversation_closed").get()
    assert closed_event.payload["conversation"]["resolution"]["name"] == "Out of hours"
    _write("ana", "hello?")  # a new conversation, same closed period: no reply to every message
    second = _conversation("ana")
    assert second.pk != first.pk and second.status == "closed"
    assert _hub_messages(second) == []
    assert OutOfHoursRecord.objects.filter(message_id__isnull=False).count() == 1


def test_reopened_conversation_does_not_go_back_to_its_operator_while_closed(staff):
    operator = operator_make(staff, "omar")
    policy = routing_settings_get()
    policy.reopen_window_minutes = 30
    policy.save()
    _write("ana")
    conversation = _conversation("ana")
    chat.conversation_close(actor=operator, conversation_id=conversation.pk)
    hours_set(CLOSED)
    _write("ana", "one more thing")
    conversation.refresh_from_db()
    assert conversation.status == "queued" and conversation.operator_id is None
    assert _hub_messages(conversation)[-1].startswith("We are closed")


def test_type_override_holds_only_that_type(staff):
    claims = QueryType.objects.create(code="claims", name="Claims")
    QueryType.objects.create(code="payments", name="Payments", is_default=True)
    operator = operator_make(staff, "omar", capacity=5)
    hours_set(ALWAYS_OPEN)
    hours_set(CLOSED, query_type="claims", autoreplies={"en": "Claims open {next_opening}"})
    _write("ana", entry_point="claims")
    _write("ben", entry_point="payments")
    assert _conversation("ana").operator_id is None
    assert _hub_messages(_conversation("ana"))[0].startswith("Claims open")
    assert _conversation("ben").operator_id == operator.pk
    # The operator's freed slot pulls nothing of the closed type.
    chat.conversation_close(actor=operator, conversation_id=_conversation("ben").pk)
    assert _conversation("ana").operator_id is None
    assert claims.pk == _conversation("ana").query_type_id


def test_menu_pending_conversation_is_told_once_its_type_is_known(staff):
    QueryType.objects.create(code="claims", name="Claims", menu_position=1)
    QueryType.objects.create(code="payments", name="Payments", menu_position=2, is_default=True)
    policy = routing_settings_get()
    policy.type_menu_enabled = True
    policy.save()
    hours_set(CLOSED)
    _write("ana", "hi")
    conversation = _conversation("ana")
    assert len(_hub_messages(conversation)) == 1  # the menu only
    _write("ana", "1")
    assert _hub_messages(conversation)[-1].startswith("We are closed")
    assert _conversation("ana").query_type.code == "claims"


# --- the autoreply's text -------------------------------------------------------------------------
def _queued_conversation(visitor: str = "ana") -> Conversation:
    _write(visitor)  # nobody online and no hours yet: it waits
    return _conversation(visitor)


def test_autoreply_language_and_next_opening_in_the_customers_time_zone():
    conversation = _queued_conversation()
    other = _queued_conversation("ben")
    hours_set(
        [{"weekday": 0, "start": "09:00", "end": "18:00"}],
        autoreplies={
            "en": "Closed. Back {next_opening}.",
            "es": "Cerrado. Volvemos el {next_opening}.",
        },
    )
    saturday = datetime(2026, 1, 10, 12, tzinfo=UTC)
    services.out_of_hours_handle(
        conversation=conversation, at=saturday, language="es-CL", time_zone="America/Santiago"
    )
    # Monday 09:00 in Madrid is 05:00 in Santiago (UTC-3 in January).
    assert _hub_messages(conversation)[-1] == (
        "Cerrado. Volvemos el lunes 12 de enero de 2026, 05:00."
    )
    services.out_of_hours_handle(conversation=other, at=saturday, language="fr", time_zone=None)
    assert _hub_messages(other)[-1] == "Closed. Back Monday Jan. 12, 2026, 09:00 (Europe/Madrid)."


@pytest.mark.parametrize("zone", ["Not/AZone", "../../etc/passwd", "x" * 64])
def test_unknown_visitor_time_zone_falls_back_to_the_schedules(zone):
    """A browser (or a forged frame) naming a zone we do not know still gets the autoreply,
    with the opening in the schedule's time zone, instead of failing the message."""
    conversation = _queued_conversation()
    hours_set(
        [{"weekday": 0, "start": "09:00", "end": "18:00"}],
        autoreplies={"en": "Closed. Back {next_opening}."},
    )
    saturday = datetime(2026, 1, 10, 12, tzinfo=UTC)
    services.out_of_hours_handle(conversation=conversation, at=saturday, time_zone=zone)
    assert _hub_messages(conversation)[-1] == (
        "Closed. Back Monday Jan. 12, 2026, 09:00 (Europe/Madrid)."
    )


def test_once_per_closed_period_a_new_period_gets_a_new_reply():
    conversation = _queued_conversation()
    hours_set([{"weekday": 0, "start": "09:00", "end": "18:00"}], time_zone="UTC")
    saturday = datetime(2026, 1, 10, 12, tzinfo=UTC)
    sunday = datetime(2026, 1, 11, 12, tzinfo=UTC)
    next_week = datetime(2026, 1, 13, 12, tzinfo=UTC)
    first = services.out_of_hours_handle(conversation=conversation, at=saturday)
    assert first.closed_since == datetime(2026, 1, 5, 18, tzinfo=UTC)
    assert services.out_of_hours_handle(conversation=conversation, at=sunday) is None
    second = services.out_of_hours_handle(conversation=conversation, at=next_week)
    assert second.closed_since == datetime(2026, 1, 12, 18, tzinfo=UTC)
    replies = [m for m in _hub_messages(conversation) if m.startswith("We are closed")]
    assert replies == [
        "We are closed. We open Monday Jan. 12, 2026, 09:00 (UTC).",
        "We are closed. We open Monday Jan. 19, 2026, 09:00 (UTC).",
    ]


def test_no_autoreply_configured_still_holds():
    hours_set(CLOSED, autoreplies={})
    conversation = _queued_conversation()
    assert _hub_messages(conversation) == []
    assert OutOfHoursRecord.objects.get().action == "held"


# --- several schedulers at once (PostgreSQL) ------------------------------------------------------
def _race(func: Callable[[], Any], n: int = 4, *others: Callable[[], Any]) -> list[Any]:
    """Run ``func`` on ``n`` threads, and each of ``others`` on one more, each thread with
    its own connection, released together."""
    funcs = [func] * n + list(others)
    barrier = threading.Barrier(len(funcs))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(target: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(target())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(f,)) for f in funcs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == len(funcs)
    return results


@pytest.mark.django_db(transaction=True)
def test_schedulers_at_once_route_each_held_conversation_once(staff):
    operator_make(staff, "a", capacity=20)
    operator_make(staff, "b", capacity=20)
    hours_set(CLOSED)
    for i in range(12):
        _write(f"c{i}")
    hours_set(ALWAYS_OPEN)
    results = _race(transitions.held_conversations_release)
    leftover = transitions.held_conversations_release()  # what a held lock made wait
    routed = [c for result in [*results, leftover] for c in result]
    assert len(routed) == len(set(routed)) == 12
    assert Assignment.objects.filter(note=transitions.OPENED_NOTE).count() == 12
    assert Conversation.objects.filter(status="assigned").count() == 12


@pytest.mark.django_db(transaction=True)
def test_schedulers_at_once_tell_each_waiting_customer_once(staff):
    hours_set(ALWAYS_OPEN)
    for i in range(12):
        _write(f"c{i}")  # nobody online: all wait
    hours_set(CLOSED)
    results = _race(transitions.hours_transitions)
    results.append(transitions.hours_transitions())
    held = [c for report in results for c in report.held]
    assert len(held) == len(set(held)) == 12
    assert OutOfHoursRecord.objects.filter(message_id__isnull=False).count() == 12
    assert Message.objects.filter(text__startswith="We are closed").count() == 12


@pytest.mark.django_db(transaction=True)
def test_a_customer_writing_while_the_scheduler_closes_gets_one_reply(staff):
    hours_set(ALWAYS_OPEN)
    for i in range(6):
        _write(f"c{i}")
    hours_set(CLOSED)

    def customers() -> str:
        for i in range(6):
            _write(f"c{i}", "still there?")
        return "customers"

    results = _race(transitions.hours_transitions, 2, customers)
    assert "customers" in results
    transitions.hours_transitions()
    assert Message.objects.filter(text__startswith="We are closed").count() == 6
    assert OutOfHoursRecord.objects.count() == 6


def test_job_is_registered():
    from hub.scheduler import jobs_registered

    (job,) = [j for j in jobs_registered() if j.name == "scheduling.transitions"]
    assert job.resolve() is transitions.hours_transitions
    assert job.every > 0
