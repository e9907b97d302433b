"""Routing services for absence without an admin at hand, run by the scheduler (hub.scheduler).

Four policies, each safe to run from several scheduler processes at once: every service
first reads candidates without locks (an idle tick costs a few indexed reads and no
transaction), then handles each candidate in its own transaction, re-reading it under a
``SELECT … FOR UPDATE SKIP LOCKED`` with the same conditions.  A row another scheduler holds
is skipped, and a row it has already changed no longer matches, so nothing is done twice;
what one scheduler skipped because another held it is taken on the next tick.
On SQLite (the embedded default) transactions are ``BEGIN IMMEDIATE`` and the re-read under
the write lock does the same job.

* ``away_after_grace``: an online operator with no open console anywhere becomes away.
* ``requeue_absent_operators``: an operator away or offline for long enough loses their
  conversations to the others (or to the queue).
* ``scheduled_absences_start``: a planned absence that has begun moves the operator's
  conversations, to the chosen colleague or spread.
* ``reroute_unanswered``: a customer who has waited too long for an answer gets another
  operator, if one is free.

``routing_tick`` runs the four in turn; each service returns what it did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from chat.events import console_event_append
from hub.exceptions import HubError
from routing.models import Assignment, OperatorState, Presence, ScheduledAbsence
from routing.services import (
    conversation_route,
    operator_conversations_derive,
    operator_pick,
    operator_slot_freed,
    queues_drain,
    routing_settings_get,
)

logger = logging.getLogger(__name__)

ABSENCE_REASON = "absence"
# At most this many conversations are re-routed per tick; the rest wait for the next one,
# so one tick never holds the scheduler (or the embedded default's database thread) long.
REROUTE_BATCH = 200


@dataclass(frozen=True)
class Derived:
    """An operator's conversations moved by the hub (``batch_id`` None: nothing to move)."""

    operator_id: int
    count: int
    batch_id: int | None = None
    per_target: dict[str, int] = field(default_factory=dict)
    absence_id: int | None = None


@dataclass(frozen=True)
class Rerouted:
    conversation_id: str
    from_operator_id: int
    to_operator_id: int


@dataclass(frozen=True)
class TickReport:
    """What one ``routing_tick`` did, and which of its steps failed (logged)."""

    away: tuple[int, ...] = ()
    requeued: tuple[Derived, ...] = ()
    absences: tuple[Derived, ...] = ()
    rerouted: tuple[Rerouted, ...] = ()
    drained: tuple[int, ...] = ()
    failed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return any(
            (self.away, self.requeued, self.absences, self.rerouted, self.drained, self.failed)
        )

    def __str__(self) -> str:
        parts = [
            f"{len(self.away)} away",
            f"{len(self.requeued)} operators requeued",
            f"{len(self.absences)} absences started",
            f"{len(self.rerouted)} rerouted",
        ]
        if self.failed:
            parts.append(f"failed: {', '.join(self.failed)}")
        return ", ".join(parts)


def _assigned() -> QuerySet:
    from chat.models import Conversation, ConversationStatus

    return Conversation.objects.filter(status=ConversationStatus.ASSIGNED)


def _derived(summary: dict[str, Any], *, absence_id: int | None = None) -> Derived:
    return Derived(
        operator_id=summary["from_operator_id"],
        count=summary["count"],
        batch_id=summary["batch_id"],
        per_target=summary["per_target"],
        absence_id=absence_id,
    )


# --- presence ---------------------------------------------------------------------------
def away_grace(grace_seconds: int) -> timedelta:
    """The effective grace: never below two console-seen intervals, or an operator whose
    console is open (but whose process refreshes ``console_seen_at`` only every
    ``HUB_CONSOLE_SEEN_SECONDS``) would flicker to away."""
    seen_every = float(getattr(settings, "HUB_CONSOLE_SEEN_SECONDS", 10.0))
    return timedelta(seconds=max(float(grace_seconds), 2 * seen_every))


def away_after_grace(now: datetime | None = None) -> list[int]:
    """Online operators with no sign of life for the away grace become away; returns their
    user ids.

    The last sign of life is the later of ``console_seen_at`` (refreshed by every process
    holding one of their consoles) and ``presence_changed_at`` (going online is one), so an
    operator who just came online over the API is not sent away before a console could
    have been seen.  Emits ``routing.presence_changed`` (supervisors), as ``presence_set``
    does; nothing is pulled from or taken away from the operator here.
    """
    now = now or timezone.now()
    cutoff = now - away_grace(routing_settings_get().away_grace_seconds)
    stale = (
        OperatorState.objects.filter(presence=Presence.ONLINE, presence_changed_at__lt=cutoff)
        .filter(Q(console_seen_at__lt=cutoff) | Q(console_seen_at__isnull=True))
        .order_by("pk")
    )
    if not stale.exists():
        return []
    with transaction.atomic():
        states = list(stale.select_for_update(skip_locked=True))
        if not states:
            return []
        user_ids = [state.user_id for state in states]
        OperatorState.objects.filter(pk__in=[state.pk for state in states]).update(
            presence=Presence.AWAY, presence_changed_at=now
        )
        for user_id in user_ids:
            console_event_append(
                kind="routing.presence_changed",
                payload={"user_id": user_id, "presence": Presence.AWAY.value},
            )
    logger.info("operators away after the grace period (no console): %s", user_ids)
    return user_ids


# --- absent operators' conversations ------------------------------------------------------
def requeue_absent_operators(now: datetime | None = None) -> list[Derived]:
    """When ``offline_requeue_minutes`` is set: operators away or offline for at least that
    long who still hold conversations have them derived (spread over the online operators
    who serve their types; those nobody can take wait in the queue).

    One transaction per operator, holding their state row (``SKIP LOCKED``) from the check
    to the derivation.  An operator the derivation refuses (e.g. a disabled account) is
    logged and retried on the next tick.  Emits what ``operator_conversations_derive``
    emits, with reason ``absence``.
    """
    minutes = routing_settings_get().offline_requeue_minutes
    if not minutes:
        return []
    now = now or timezone.now()
    absent = OperatorState.objects.filter(
        presence__in=[Presence.AWAY, Presence.OFFLINE],
        presence_changed_at__lte=now - timedelta(minutes=minutes),
    ).filter(Exists(_assigned().filter(operator_id=OuterRef("user_id"))))
    done: list[Derived] = []
    for user_id in list(absent.order_by("pk").values_list("user_id", flat=True)):
        try:
            with transaction.atomic():
                state = (
                    absent.filter(user_id=user_id)
                    .select_for_update(skip_locked=True, of=("self",))
                    .first()
                )
                if state is None:  # another scheduler has it, or it came back meanwhile
                    continue
                summary = operator_conversations_derive(
                    actor=None,
                    from_operator_id=user_id,
                    to_operator_id=None,
                    reason=ABSENCE_REASON,
                )
        except (HubError, DatabaseError):
            logger.warning("could not requeue absent operator %s", user_id, exc_info=True)
            continue
        done.append(_derived(summary))
    if done:
        logger.info("absent operators' conversations derived: %s", done)
    return done


def _absence_derive(absence: ScheduledAbsence) -> dict[str, Any]:
    """Derive to the chosen colleague; if they cannot take them all (offline, absent,
    unqualified, full), spread instead: the absent operator's customers must not wait on
    someone who is gone."""
    if absence.to_operator_id is not None:
        try:
            return operator_conversations_derive(
                actor=None,
                from_operator_id=absence.operator_id,
                to_operator_id=absence.to_operator_id,
                reason=ABSENCE_REASON,
            )
        except HubError as exc:
            logger.warning(
                "absence %s: cannot derive to operator %s (%s); spreading instead",
                absence.pk,
                absence.to_operator_id,
                exc.message,
            )
    return operator_conversations_derive(
        actor=None,
        from_operator_id=absence.operator_id,
        to_operator_id=None,
        reason=ABSENCE_REASON,
    )


def scheduled_absences_start(now: datetime | None = None) -> list[Derived]:
    """Absences that have begun and were not yet handled: derive the operator's
    conversations (to ``to_operator`` or spread, reason ``absence``) and set
    ``derived_at``.  An absence with nothing active, or one already over when first seen
    (the scheduler was down throughout), is only marked.

    One transaction per absence, holding its row (``SKIP LOCKED``).  A derivation refused
    even when spread (e.g. a disabled account) leaves the absence unmarked, logged, for
    the next tick.  Routing itself already refuses the operator during the window.
    """
    now = now or timezone.now()
    due = ScheduledAbsence.objects.filter(derived_at__isnull=True, starts_at__lte=now)
    done: list[Derived] = []
    for absence_id in list(due.order_by("starts_at", "pk").values_list("pk", flat=True)):
        try:
            with transaction.atomic():
                absence = (
                    due.filter(pk=absence_id)
                    .select_for_update(skip_locked=True, of=("self",))
                    .first()
                )
                if absence is None:
                    continue
                # Marked first: the derivation's event log lock is then held to commit.
                absence.derived_at = now
                absence.save(update_fields=["derived_at"])
                active = (
                    absence.ends_at > now
                    and _assigned().filter(operator_id=absence.operator_id).exists()
                )
                if active:
                    result = _derived(_absence_derive(absence), absence_id=absence.pk)
                else:
                    result = Derived(
                        operator_id=absence.operator_id, count=0, absence_id=absence.pk
                    )
        except (HubError, DatabaseError):
            logger.warning("could not start absence %s", absence_id, exc_info=True)
            continue
        done.append(result)
    if done:
        logger.info("scheduled absences started: %s", done)
    return done


# --- unanswered customers -----------------------------------------------------------------
def unanswered(now: datetime, minutes: int) -> QuerySet:
    """Assigned conversations whose customer has waited at least ``minutes`` for an answer
    from the operator who holds them.

    *Not answered*: no message written by a person on the hub's side (outbound with an
    author; the hub's own queue and menu messages do not count) since the customer's last
    message.  Reading is not answering, so the read marker plays no part.  The wait is
    counted from the later of the customer's last message and the assignment, so a
    conversation just moved to someone gives them the full time too (no ping-pong every
    tick).
    """
    from chat.models import Direction, Message

    cutoff = now - timedelta(minutes=minutes)
    answer = Message.objects.filter(
        conversation_id=OuterRef("pk"),
        direction=Direction.OUTBOUND,
        author__isnull=False,
        created_at__gte=OuterRef("last_customer_message_at"),
    )
    return (
        _assigned()
        .filter(last_customer_message_at__lte=cutoff, assigned_at__lte=cutoff)
        .filter(~Exists(answer))
    )


def reroute_unanswered(now: datetime | None = None) -> list[Rerouted]:
    """When ``unanswered_reroute_minutes`` is set: a customer waiting that long (see
    ``unanswered``) gets another free operator who serves the type (Assignment kind
    ``unanswered``), and the first operator's freed slot pulls from the queue as after a
    transfer.  When nobody else is free the conversation stays where it is: moving it to
    the queue would only make the customer wait longer, and its operator may still answer.

    One transaction per conversation, its row locked ``SKIP LOCKED`` (a customer writing
    right now holds it; it is looked at again next tick).  At most ``REROUTE_BATCH`` per
    call.  Emits ``routing.conversation_unassigned`` and ``routing.conversation_assigned``
    (and whatever the freed slot pulls).
    """
    minutes = routing_settings_get().unanswered_reroute_minutes
    if not minutes:
        return []
    now = now or timezone.now()
    waiting = unanswered(now, minutes)
    ids = list(waiting.order_by("last_customer_message_at").values_list("pk", flat=True))
    done: list[Rerouted] = []
    for conversation_id in ids[:REROUTE_BATCH]:
        try:
            with transaction.atomic():
                conversation = (
                    waiting.filter(pk=conversation_id)
                    .select_for_update(skip_locked=True, of=("self",))
                    .select_related("customer", "operator", "query_type")
                    .first()
                )
                if conversation is None:
                    continue
                previous = conversation.operator
                exclude = frozenset({previous.pk})
                # Look first: conversation_route would send it to the queue if nobody
                # else is free.  The operator found stays locked for the route below.
                free = operator_pick(
                    query_type_id=conversation.query_type_id, exclude_user_ids=exclude
                )
                if free is None:
                    continue
                conversation_route(
                    conversation=conversation,
                    exclude_user_ids=exclude,
                    kind=Assignment.Kind.UNANSWERED,
                    tell_position=False,
                )
                operator_slot_freed(
                    operator=previous, exclude_conversation_ids=frozenset({conversation.pk})
                )
        except (HubError, DatabaseError):
            logger.warning("could not reroute conversation %s", conversation_id, exc_info=True)
            continue
        done.append(
            Rerouted(
                conversation_id=str(conversation.pk),
                from_operator_id=previous.pk,
                to_operator_id=conversation.operator_id,
            )
        )
    if done:
        logger.info("unanswered conversations rerouted: %s", done)
    return done


# --- the tick ---------------------------------------------------------------------------
def _queues_drain_step(now: datetime) -> tuple[int, ...]:
    """Waiting conversations to online operators with room (see routing.services)."""
    assigned = queues_drain()
    return (assigned,) if assigned else ()


def routing_tick(now: datetime | None = None) -> TickReport:
    """Run the four policies once, in the order that avoids double work (an absence's
    conversations move as a batch before any of them is re-routed one by one).  A step
    that fails is logged and the next one still runs: this is the scheduler's boundary,
    where an unexpected error must not stop the other policies."""
    now = now or timezone.now()
    steps = (
        ("away", away_after_grace),
        ("requeued", requeue_absent_operators),
        ("absences", scheduled_absences_start),
        ("rerouted", reroute_unanswered),
        ("drained", _queues_drain_step),
    )
    results: dict[str, tuple[Any, ...]] = {}
    failed: list[str] = []
    for name, step in steps:
        try:
            results[name] = tuple(step(now))
        except Exception:  # the scheduler's boundary: log, run the other steps
            logger.exception("routing tick: %s failed", name)
            failed.append(name)
    return TickReport(**results, failed=tuple(failed))
