"""routing.absence: away after the grace, absent operators' conversations requeued, scheduled
absences started, unanswered customers re-routed — with controlled time (``now`` is passed,
nothing sleeps), and several schedulers at once doing each thing once (PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from chat import services
from chat.models import ConsoleEvent, Conversation, Message
from routing import absence
from routing.models import (
    Assignment,
    DerivationBatch,
    OperatorState,
    QueryType,
    ScheduledAbsence,
)
from routing.services import presence_set, routing_settings_get
from tests.routing.factories import operator_make

_operator = operator_make

pytestmark = pytest.mark.django_db


def _write(visitor, text="hello", entry=None):
    return services.webchat_message_receive(
        visitor_id=visitor,
        client_id=f"{visitor}-{Message.objects.count()}",
        text=text,
        entry_point=entry,
    )


def _conversation(visitor) -> Conversation:
    return Conversation.objects.get(
        customer__identities__external_id=visitor, status__in=["queued", "assigned"]
    )


def _reply(operator, visitor, text="On it."):
    return services.operator_message_send(
        actor=operator,
        conversation_id=_conversation(visitor).pk,
        client_id=f"r-{Message.objects.count()}",
        text=text,
    )


def _policy(**fields: Any) -> None:
    policy = routing_settings_get()
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.save()


def _presence(user) -> str:
    return OperatorState.objects.get(user=user).presence


def _events(kind: str) -> list[ConsoleEvent]:
    return list(ConsoleEvent.objects.filter(kind=kind).order_by("id"))


# --- away after the grace -------------------------------------------------------------------
def test_online_operator_without_a_console_becomes_away_after_the_grace(staff):
    gone = _operator(staff, "gone")
    watching = _operator(staff, "watching")
    now = timezone.now() + timedelta(seconds=61)  # default grace: 60 s
    OperatorState.objects.filter(user=watching).update(console_seen_at=now - timedelta(seconds=5))
    before = len(_events("routing.presence_changed"))

    assert absence.away_after_grace(now) == [gone.pk]

    assert _presence(gone) == "away"
    assert _presence(watching) == "online"
    assert OperatorState.objects.get(user=gone).presence_changed_at == now
    event = _events("routing.presence_changed")[-1]
    assert len(_events("routing.presence_changed")) == before + 1
    assert event.payload == {"user_id": gone.pk, "presence": "away"}
    assert event.operator_id is None  # supervisors only, as presence_set
    assert absence.away_after_grace(now) == []  # done once


def test_within_the_grace_nobody_goes_away(staff):
    fresh = _operator(staff, "fresh")  # came online just now, no console seen yet
    stale_console = _operator(staff, "stale")
    now = OperatorState.objects.get(user=fresh).presence_changed_at + timedelta(seconds=30)
    # A console last seen long ago, but the operator came online (a sign of life) just now.
    OperatorState.objects.filter(user=stale_console).update(
        console_seen_at=now - timedelta(hours=1)
    )
    assert absence.away_after_grace(now) == []
    assert _presence(fresh) == _presence(stale_console) == "online"


def test_console_seen_long_ago_sends_away(staff):
    op = _operator(staff, "op")
    now = timezone.now() + timedelta(minutes=5)
    OperatorState.objects.filter(user=op).update(console_seen_at=now - timedelta(minutes=2))
    assert absence.away_after_grace(now) == [op.pk]


def test_grace_never_below_two_console_seen_intervals(staff, settings):
    settings.HUB_CONSOLE_SEEN_SECONDS = 10
    op = _operator(staff, "op")
    _policy(away_grace_seconds=0)
    now = timezone.now()
    OperatorState.objects.filter(user=op).update(
        console_seen_at=now - timedelta(seconds=15), presence_changed_at=now - timedelta(hours=1)
    )
    assert absence.away_after_grace(now) == []  # seen 15 s ago: within 2 x 10 s
    assert absence.away_after_grace(now + timedelta(seconds=6)) == [op.pk]


def test_away_and_offline_operators_are_left_alone(staff):
    op = _operator(staff, "op")
    presence_set(actor=op, presence="offline")
    assert absence.away_after_grace(timezone.now() + timedelta(hours=1)) == []
    assert _presence(op) == "offline"


# --- absent operators' conversations ----------------------------------------------------------
def _holding(staff, name, n, *, capacity=5):
    """An operator who took ``n`` conversations and then went away."""
    op = _operator(staff, name, capacity=capacity)
    for i in range(n):
        _write(f"{name}-c{i}")
    assert Conversation.objects.filter(operator=op, status="assigned").count() == n
    presence_set(actor=op, presence="away")
    return op


def test_requeue_is_off_until_configured(staff):
    _holding(staff, "a", 2)
    _operator(staff, "b")
    assert absence.requeue_absent_operators(timezone.now() + timedelta(days=1)) == []
    assert not DerivationBatch.objects.exists()


def test_operator_away_long_enough_has_conversations_spread_rest_waits(staff):
    _policy(offline_requeue_minutes=10)
    a = _holding(staff, "a", 3)
    b = _operator(staff, "b", capacity=2)
    now = OperatorState.objects.get(user=a).presence_changed_at + timedelta(minutes=10)

    assert absence.requeue_absent_operators(now - timedelta(seconds=1)) == []  # not yet
    done = absence.requeue_absent_operators(now)

    assert len(done) == 1
    assert (done[0].operator_id, done[0].count) == (a.pk, 3)
    assert done[0].per_target == {str(b.pk): 2, "queue": 1}
    batch = DerivationBatch.objects.get()
    assert (batch.actor_id, batch.reason, batch.mode) == (None, "absence", "spread")
    assert Assignment.objects.filter(batch=batch, kind="absence").count() == 3
    assert Conversation.objects.filter(operator=b, status="assigned").count() == 2
    assert Conversation.objects.filter(status="queued").count() == 1
    assert not Conversation.objects.filter(operator=a, status="assigned").exists()
    assert absence.requeue_absent_operators(now) == []  # nothing left to move


def test_offline_operator_is_requeued_and_one_back_online_is_not(staff):
    _policy(offline_requeue_minutes=5)
    off = _holding(staff, "off", 1)
    presence_set(actor=off, presence="offline")
    back = _holding(staff, "back", 1)
    presence_set(actor=back, presence="online")
    b = _operator(staff, "b")
    done = absence.requeue_absent_operators(timezone.now() + timedelta(minutes=6))
    assert [d.operator_id for d in done] == [off.pk]
    assert Conversation.objects.filter(operator=back, status="assigned").count() == 1
    assert Conversation.objects.filter(operator=b, status="assigned").count() == 1


def test_disabled_operators_conversations_are_requeued_too(staff):
    """Someone who left the bank (account disabled) still holds conversations: they move."""
    _policy(offline_requeue_minutes=5)
    disabled = _holding(staff, "disabled", 1)
    away = _holding(staff, "away", 1)
    b = _operator(staff, "b")
    disabled.is_active = False
    disabled.save()
    done = absence.requeue_absent_operators(timezone.now() + timedelta(minutes=6))
    assert sorted(d.operator_id for d in done) == sorted([away.pk, disabled.pk])
    assert Conversation.objects.filter(operator=b, status="assigned").count() == 2


# --- scheduled absences -------------------------------------------------------------------------
def _absence(operator, now, *, to=None, starts=-1, ends=60) -> ScheduledAbsence:
    return ScheduledAbsence.objects.create(
        operator=operator,
        starts_at=now + timedelta(minutes=starts),
        ends_at=now + timedelta(minutes=ends),
        to_operator=to,
    )


def test_absence_start_derives_to_the_chosen_colleague_once(staff):
    a = _operator(staff, "a")
    for i in range(2):
        _write(f"c{i}")
    b = _operator(staff, "b")
    now = timezone.now() + timedelta(hours=1)
    planned = _absence(a, now, to=b)
    later = _absence(a, now, starts=30, ends=90, to=b)

    done = absence.scheduled_absences_start(now)

    assert [(d.absence_id, d.operator_id, d.count) for d in done] == [(planned.pk, a.pk, 2)]
    assert done[0].per_target == {str(b.pk): 2}
    assert Conversation.objects.filter(operator=b, status="assigned").count() == 2
    planned.refresh_from_db()
    later.refresh_from_db()
    assert planned.derived_at == now
    assert later.derived_at is None  # not begun yet
    batch = DerivationBatch.objects.get()
    assert (batch.reason, batch.mode, batch.to_operator_id) == ("absence", "to_operator", b.pk)
    assert absence.scheduled_absences_start(now) == []


def test_absence_with_nothing_active_is_only_marked(staff):
    a = _operator(staff, "a")
    now = timezone.now()
    planned = _absence(a, now)
    done = absence.scheduled_absences_start(now)
    assert [(d.absence_id, d.count, d.batch_id) for d in done] == [(planned.pk, 0, None)]
    planned.refresh_from_db()
    assert planned.derived_at == now
    assert not DerivationBatch.objects.exists()


def test_absence_already_over_when_first_seen_moves_nothing(staff):
    a = _operator(staff, "a")
    _write("c1")
    _operator(staff, "b")
    now = timezone.now() + timedelta(hours=3)
    planned = _absence(a, now, starts=-120, ends=-60)
    done = absence.scheduled_absences_start(now)
    assert [(d.absence_id, d.count) for d in done] == [(planned.pk, 0)]
    assert _conversation("c1").operator_id == a.pk


def test_absence_colleague_unavailable_spreads_instead(staff, caplog):
    a = _operator(staff, "a")
    for i in range(2):
        _write(f"c{i}")
    chosen = _operator(staff, "chosen", online=False)
    other = _operator(staff, "other")
    now = timezone.now() + timedelta(minutes=1)
    _absence(a, now, to=chosen)

    done = absence.scheduled_absences_start(now)

    assert done[0].per_target == {str(other.pk): 2}
    assert DerivationBatch.objects.get().mode == "spread"
    assert "spreading instead" in caplog.text


def test_absence_with_nobody_online_sends_conversations_to_the_queue(staff):
    a = _operator(staff, "a")
    _write("c1")
    now = timezone.now() + timedelta(minutes=1)
    _absence(a, now)
    done = absence.scheduled_absences_start(now)
    assert done[0].per_target == {"queue": 1}
    assert _conversation("c1").status == "queued"


# --- unanswered customers ------------------------------------------------------------------------
def test_reroute_is_off_until_configured(staff):
    _operator(staff, "a")
    _write("c1")
    _operator(staff, "b")
    assert absence.reroute_unanswered(timezone.now() + timedelta(days=1)) == []


def test_unanswered_customer_gets_another_operator(staff):
    _policy(unanswered_reroute_minutes=5)
    a = _operator(staff, "a")
    _write("c1")
    b = _operator(staff, "b")
    conversation = _conversation("c1")
    waiting_since = max(conversation.last_customer_message_at, conversation.assigned_at)
    now = waiting_since + timedelta(minutes=5)

    assert absence.reroute_unanswered(now - timedelta(seconds=1)) == []  # not yet
    done = absence.reroute_unanswered(now)

    assert done == [absence.Rerouted(str(conversation.pk), a.pk, b.pk)]
    assert _conversation("c1").operator_id == b.pk
    assignment = Assignment.objects.filter(conversation=conversation).latest("id")
    assert (assignment.kind, assignment.from_operator_id, assignment.to_operator_id) == (
        "unanswered",
        a.pk,
        b.pk,
    )
    assert assignment.actor_id is None
    kinds = list(
        ConsoleEvent.objects.filter(conversation=conversation)
        .order_by("-id")
        .values_list("kind", "operator_id")[:2]
    )
    assert kinds == [
        ("routing.conversation_assigned", b.pk),
        ("routing.conversation_unassigned", a.pk),
    ]
    # The new operator gets the full time too (counted from the reassignment), then it
    # may move again.
    reassigned = _conversation("c1").assigned_at
    assert absence.reroute_unanswered(reassigned + timedelta(minutes=4)) == []
    done = absence.reroute_unanswered(reassigned + timedelta(minutes=5, seconds=1))
    assert [(d.from_operator_id, d.to_operator_id) for d in done] == [(b.pk, a.pk)]


def test_answered_conversation_stays_until_the_customer_writes_again(staff):
    _policy(unanswered_reroute_minutes=5)
    a = _operator(staff, "a")
    _write("c1")
    _reply(a, "c1")
    b = _operator(staff, "b")
    now = timezone.now() + timedelta(minutes=6)
    assert absence.reroute_unanswered(now) == []

    _write("c1", text="Still there?")
    wrote = _conversation("c1").last_customer_message_at
    assert absence.reroute_unanswered(wrote + timedelta(minutes=4)) == []
    done = absence.reroute_unanswered(wrote + timedelta(minutes=5))
    assert [(d.from_operator_id, d.to_operator_id) for d in done] == [(a.pk, b.pk)]


def test_reading_is_not_answering_and_hub_messages_do_not_count(staff):
    _policy(unanswered_reroute_minutes=5)
    _write("c1")  # nobody online: queued, and told its position (a hub message)
    assert Message.objects.filter(direction="out", author__isnull=True).count() == 1
    a = _operator(staff, "a")  # pulls it from the queue
    conversation = _conversation("c1")
    services.conversation_mark_read(
        actor=a, conversation_id=conversation.pk, up_to_message_id=conversation.last_message_id
    )
    b = _operator(staff, "b")
    done = absence.reroute_unanswered(timezone.now() + timedelta(minutes=6))
    assert [(d.from_operator_id, d.to_operator_id) for d in done] == [(a.pk, b.pk)]


def test_nobody_else_free_leaves_it_with_its_operator(staff):
    _policy(unanswered_reroute_minutes=5)
    a = _operator(staff, "a")
    _write("c1")
    _operator(staff, "full", capacity=0)
    _operator(staff, "gone", online=False)
    assert absence.reroute_unanswered(timezone.now() + timedelta(minutes=6)) == []
    conversation = _conversation("c1")
    assert (conversation.status, conversation.operator_id) == ("assigned", a.pk)
    assert not Assignment.objects.filter(kind="unanswered").exists()


def test_reroute_goes_to_someone_who_serves_the_type_and_frees_a_slot(staff):
    claims = QueryType.objects.create(code="claims", name="Claims", priority=300)
    QueryType.objects.create(code="followup", name="Follow-up", is_default=True)
    a = _operator(staff, "a", capacity=1)
    _write("k1", entry="claims")
    _write("f1", entry="followup")  # a is full: waits
    assert _conversation("f1").status == "queued"
    specialist = _operator(staff, "specialist", types=[claims])  # does not take follow-up
    assert _conversation("f1").status == "queued"
    _policy(unanswered_reroute_minutes=5)

    done = absence.reroute_unanswered(timezone.now() + timedelta(minutes=6))

    assert [d.to_operator_id for d in done] == [specialist.pk]
    assert _conversation("k1").operator_id == specialist.pk
    assert _conversation("f1").operator_id == a.pk  # a's freed slot pulled the queue


# --- the tick ------------------------------------------------------------------------------------
def test_tick_runs_every_policy(staff):
    _policy(offline_requeue_minutes=10, unanswered_reroute_minutes=5)
    quiet = _operator(staff, "quiet")
    _write("q1")  # to quiet, never answered
    away = _holding(staff, "away", 1)
    planned = _operator(staff, "planned")
    _write("p1")
    b = _operator(staff, "b", capacity=10)
    _absence(planned, timezone.now())  # begun in real time too: routing skips planned
    now = timezone.now() + timedelta(minutes=11)
    OperatorState.objects.filter(user__in=[b, planned]).update(console_seen_at=now)

    report = absence.routing_tick(now)

    assert report.away == (quiet.pk,)
    assert [d.operator_id for d in report.requeued] == [away.pk]
    assert [d.operator_id for d in report.absences] == [planned.pk]
    # quiet is away now, but requeue waits its 10 minutes; the customer has waited 11.
    assert [r.from_operator_id for r in report.rerouted] == [quiet.pk]
    assert report.failed == ()
    assert Conversation.objects.filter(operator=b, status="assigned").count() == 3
    assert "1 away" in str(report)


def test_tick_goes_on_past_a_failing_step(staff, monkeypatch, caplog):
    _policy(offline_requeue_minutes=10)
    away = _holding(staff, "away", 1)
    _operator(staff, "b")

    def broken(now):
        raise RuntimeError("boom")

    monkeypatch.setattr(absence, "away_after_grace", broken)
    report = absence.routing_tick(timezone.now() + timedelta(minutes=11))
    assert report.failed == ("away",)
    assert [d.operator_id for d in report.requeued] == [away.pk]
    assert "routing tick: away failed" in caplog.text


def test_idle_tick_is_a_few_reads(staff, django_assert_num_queries):
    _policy(offline_requeue_minutes=10, unanswered_reroute_minutes=5)
    _operator(staff, "a")
    now = timezone.now()
    # Per step: the settings row, then one candidate read (the queue drain: one "anything
    # waiting?" read); no transaction is opened.
    with django_assert_num_queries(8):
        report = absence.routing_tick(now)
    assert not report


# --- several schedulers at once (PostgreSQL) ------------------------------------------------------
def _race(func: Callable[[], Any], n: int = 4) -> list[Any]:
    """Run ``func`` on ``n`` threads (own connections) released together."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(func())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == n
    return results


@pytest.mark.django_db(transaction=True)
def test_schedulers_at_once_send_each_operator_away_once(staff):
    operators = [_operator(staff, f"op{i}") for i in range(5)]
    now = timezone.now() + timedelta(minutes=2)
    results = _race(lambda: absence.away_after_grace(now))
    assert sorted(u for r in results for u in r) == sorted(o.pk for o in operators)
    assert ConsoleEvent.objects.filter(
        kind="routing.presence_changed", payload__presence="away"
    ).count() == len(operators)


@pytest.mark.django_db(transaction=True)
def test_schedulers_at_once_requeue_each_operator_once(staff):
    _policy(offline_requeue_minutes=10)
    absent = [_holding(staff, f"a{i}", 2) for i in range(3)]
    _operator(staff, "b", capacity=20)
    now = timezone.now() + timedelta(minutes=11)
    results = _race(lambda: absence.requeue_absent_operators(now))
    assert sorted(d.operator_id for r in results for d in r) == sorted(a.pk for a in absent)
    assert DerivationBatch.objects.count() == 3
    assert Assignment.objects.filter(kind="absence").count() == 6


@pytest.mark.django_db(transaction=True)
def test_schedulers_at_once_start_each_absence_once(staff):
    planned = [_operator(staff, f"p{i}") for i in range(3)]
    for i in range(6):
        _write(f"c{i}")
    _operator(staff, "b", capacity=20)
    now = timezone.now() + timedelta(minutes=1)
    for operator in planned:
        _absence(operator, now)
    results = _race(lambda: absence.scheduled_absences_start(now))
    assert sorted(d.operator_id for r in results for d in r) == sorted(p.pk for p in planned)
    assert DerivationBatch.objects.count() == 3
    assert Assignment.objects.filter(kind="absence").count() == 6
    assert not ScheduledAbsence.objects.filter(derived_at__isnull=True).exists()


def _age(minutes: int, *, conversations=(), operators=()) -> None:
    """Move these conversations' customer message and assignment, and these operators'
    presence change, ``minutes`` into the past.  The races run at the real time: the
    services stamp what they change with the real clock, and a scheduler re-checks the
    stamps another one just wrote."""
    from django.db.models import F

    shift = timedelta(minutes=minutes)
    Conversation.objects.filter(pk__in=[c.pk for c in conversations]).update(
        last_customer_message_at=F("last_customer_message_at") - shift,
        assigned_at=F("assigned_at") - shift,
    )
    OperatorState.objects.filter(user__in=operators).update(
        presence_changed_at=F("presence_changed_at") - shift
    )


@pytest.mark.django_db(transaction=True)
def test_schedulers_at_once_reroute_each_conversation_once(staff):
    _policy(unanswered_reroute_minutes=5)
    a = _operator(staff, "a", capacity=10)
    for i in range(4):
        _write(f"c{i}")
    _operator(staff, "b", capacity=10)
    _age(6, conversations=Conversation.objects.all())
    now = timezone.now()
    results = _race(lambda: absence.reroute_unanswered(now))
    # A scheduler skips a conversation (or the operator free for it) that another holds,
    # so one may be left for the next tick, but none is moved twice.
    leftover = absence.reroute_unanswered(timezone.now())
    moved = [r.conversation_id for result in [*results, leftover] for r in result]
    assert len(moved) == len(set(moved)) == 4
    assert Assignment.objects.filter(kind="unanswered").count() == 4
    assert not Conversation.objects.filter(operator=a, status="assigned").exists()


@pytest.mark.django_db(transaction=True)
def test_schedulers_at_once_run_whole_ticks_once(staff):
    _policy(offline_requeue_minutes=10, unanswered_reroute_minutes=5)
    away = _holding(staff, "away", 2)
    quiet = _operator(staff, "quiet")
    _write("q1")
    planned = _operator(staff, "planned")
    _write("p1")
    b = _operator(staff, "b", capacity=20)
    _absence(planned, timezone.now())
    _age(11, conversations=[_conversation("q1")], operators=[away, quiet])
    OperatorState.objects.filter(user__in=[b, planned]).update(console_seen_at=timezone.now())
    now = timezone.now()
    reports = _race(lambda: absence.routing_tick(now))
    # A step may leave something another scheduler held to the next tick; never twice.
    reports.append(absence.routing_tick(timezone.now()))
    assert all(report.failed == () for report in reports)
    assert [u for r in reports for u in r.away] == [quiet.pk]
    assert [d.operator_id for r in reports for d in r.requeued] == [away.pk]
    assert [d.operator_id for r in reports for d in r.absences] == [planned.pk]
    assert [x.from_operator_id for r in reports for x in r.rerouted] == [quiet.pk]
    assert Conversation.objects.filter(operator=b, status="assigned").count() == 4
    assert DerivationBatch.objects.count() == 2


def test_tick_gives_waiting_conversations_to_an_operator_with_room(staff):
    """The safety net for a slot freed while its operator's row was busy elsewhere."""
    op = _operator(staff, "op", capacity=0)
    _write("c1")
    assert _conversation("c1").status == "queued"
    OperatorState.objects.filter(user_id=op.pk).update(capacity=1)  # room, nobody told
    report = absence.routing_tick(timezone.now())
    assert report.drained == (1,)
    assert _conversation("c1").operator_id == op.pk
