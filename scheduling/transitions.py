"""Scheduling services run by the scheduler (hub.scheduler, job ``scheduling.transitions``):
the opening and closing transitions of the service, on time.

* ``held_conversations_release`` (opening): conversations held out of hours whose service
  is open again are routed (to a free operator, or into the queue with its position).
* ``waiting_conversations_close`` (closing): conversations still waiting in the queue
  when their service closes are handled as an out-of-hours message would be: the
  autoreply (once per closed period) and held or closed.

Each conversation is its own short transaction that re-reads its rows under
``SELECT … FOR UPDATE SKIP LOCKED`` with the same conditions, as routing.absence does: a
row another scheduler (or a customer's message) holds is skipped and taken on the next
tick; a row another scheduler has finished no longer matches.  The out-of-hours record is
unique per conversation and closed period, so even a race past the locks cannot reply
twice.  An idle tick is a few indexed reads and no transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from hub.exceptions import HubError
from routing.models import Assignment
from routing.services import conversation_route
from scheduling import hours as logic
from scheduling.models import OutOfHoursRecord, Schedule
from scheduling.selectors import hours_of, schedule_governing
from scheduling.services import out_of_hours_handle

logger = logging.getLogger(__name__)

# At most this many conversations per step and tick; the rest wait for the next tick.
TRANSITION_BATCH = 500
OPENED_NOTE = "The service opened."


@dataclass(frozen=True)
class TransitionReport:
    """What one tick did: conversations routed at the opening (``released``), and those
    held or closed at the closing."""

    released: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return any((self.released, self.held, self.closed, self.failed))

    def __str__(self) -> str:
        parts = [
            f"{len(self.released)} routed at the opening",
            f"{len(self.held)} held",
            f"{len(self.closed)} closed out of hours",
        ]
        if self.failed:
            parts.append(f"failed: {', '.join(self.failed)}")
        return ", ".join(parts)


class _OpenCache:
    """Whether each query type's service is open at one instant, computed once per tick."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self._open: dict[int | None, bool] = {}

    def __call__(self, query_type_id: int | None) -> bool:
        if query_type_id not in self._open:
            schedule = schedule_governing(query_type_id=query_type_id)
            self._open[query_type_id] = schedule is None or logic.is_open(
                hours_of(schedule), self.at
            )
        return self._open[query_type_id]


def _waiting_conversations() -> QuerySet:
    from chat.models import Conversation, ConversationStatus

    return Conversation.objects.filter(status=ConversationStatus.QUEUED).exclude(
        query_type__isnull=True, type_menu_asked__gt=0
    )


def held_conversations_release(now: datetime | None = None) -> list[str]:
    """Route the conversations held out of hours whose service is open at ``now``; returns
    their ids.  A held conversation that is no longer waiting (closed, or transferred by a
    coordinator) is just released.  Emits what ``conversation_route`` emits (note: the
    service opened)."""
    from chat.models import Conversation, ConversationStatus

    now = now or timezone.now()
    held = OutOfHoursRecord.objects.filter(
        action=OutOfHoursRecord.Action.HELD, released_at__isnull=True
    )
    candidates = list(
        held.order_by("created_at").values_list("pk", "conversation_id", "query_type_id")[
            :TRANSITION_BATCH
        ]
    )
    if not candidates:
        return []
    is_open = _OpenCache(now)
    done: list[str] = []
    left_waiting = False
    for record_id, conversation_id, _ in (c for c in candidates if is_open(c[2])):
        try:
            with transaction.atomic():
                record = held.filter(pk=record_id).select_for_update(skip_locked=True).first()
                if record is None:  # another scheduler has it or released it
                    continue
                conversation = (
                    Conversation.objects.filter(pk=conversation_id)
                    .select_for_update(skip_locked=True, of=("self",))
                    .select_related("customer", "query_type")
                    .first()
                )
                if conversation is None:  # a customer's message holds it: next tick
                    continue
                # Every record of this conversation still held: the hold is over.
                OutOfHoursRecord.objects.filter(
                    conversation_id=conversation_id,
                    action=OutOfHoursRecord.Action.HELD,
                    released_at__isnull=True,
                ).update(released_at=now)
                if conversation.status != ConversationStatus.QUEUED:
                    continue  # closed or transferred meanwhile: nothing to route
                if not is_open(conversation.query_type_id):  # its type changed meanwhile
                    continue
                conversation_route(
                    conversation=conversation, kind=Assignment.Kind.ROUTED, note=OPENED_NOTE
                )
                left_waiting |= conversation.status == ConversationStatus.QUEUED
        except (HubError, DatabaseError):
            logger.warning("could not route held conversation %s", conversation_id, exc_info=True)
            continue
        done.append(str(conversation_id))
    if left_waiting:
        _free_operators_drain()
    if done:
        logger.info("service opened: %s held conversations routed", len(done))
    return done


def _free_operators_drain() -> int:
    """Online operators with room pull what waits.  Routing skips an operator another
    router holds (``SKIP LOCKED``), so with several schedulers routing at one opening a
    conversation can find every free operator held and stay queued; nothing else would
    pull it before the next freed slot.  Here each operator's row is waited for."""
    from routing.models import OperatorState, Presence
    from routing.services import operator_slot_freed

    pulled = 0
    online = OperatorState.objects.filter(presence=Presence.ONLINE).select_related("user")
    for state in online.order_by("pk"):
        try:
            with transaction.atomic():
                pulled += operator_slot_freed(operator=state.user)
        except (HubError, DatabaseError):
            logger.warning("could not drain the queue to %s", state.user_id, exc_info=True)
    return pulled


def waiting_conversations_close(now: datetime | None = None) -> tuple[list[str], list[str]]:
    """Conversations waiting in the queue while their service is closed at ``now`` and not
    yet handled in this closed period: the autoreply and held or closed, as if the customer
    had just written (``out_of_hours_handle``, without their language or time zone).
    Returns the ids held and the ids closed."""
    if not Schedule.objects.exists():
        return [], []
    now = now or timezone.now()
    is_open = _OpenCache(now)
    # Handled in the current period already: a record at least as recent as the last
    # closing (the record's closed_since is that closing).
    waiting = _waiting_conversations().filter(
        ~Exists(
            OutOfHoursRecord.objects.filter(
                conversation_id=OuterRef("pk"), released_at__isnull=True
            )
        )
    )
    candidates = [
        (pk, type_id)
        for pk, type_id in waiting.order_by("created_at").values_list("pk", "query_type_id")[
            : TRANSITION_BATCH * 4
        ]
        if not is_open(type_id)
    ][:TRANSITION_BATCH]
    held: list[str] = []
    closed: list[str] = []
    for conversation_id, _ in candidates:
        try:
            with transaction.atomic():
                conversation = (
                    waiting.filter(pk=conversation_id)
                    .select_for_update(skip_locked=True, of=("self",))
                    .select_related("customer", "query_type")
                    .first()
                )
                if conversation is None:
                    continue
                record = out_of_hours_handle(conversation=conversation, at=now)
        except (HubError, DatabaseError):
            logger.warning(
                "could not handle waiting conversation %s", conversation_id, exc_info=True
            )
            continue
        if record is None:
            continue
        target = held if record.action == OutOfHoursRecord.Action.HELD else closed
        target.append(str(conversation_id))
    if held or closed:
        logger.info("service closed: %s conversations held, %s closed", len(held), len(closed))
    return held, closed


def hours_transitions(now: datetime | None = None) -> TransitionReport:
    """The scheduler's job: the opening first (a conversation released now must not be
    taken for one waiting at a closing), then the closing.  A step that fails is logged
    and the other still runs (the scheduler's boundary)."""
    now = now or timezone.now()
    released: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    failed: list[str] = []
    try:
        released = tuple(held_conversations_release(now))
    except Exception:  # the scheduler's boundary: log, run the other step
        logger.exception("hours transitions: opening failed")
        failed.append("opening")
    try:
        held_ids, closed_ids = waiting_conversations_close(now)
        held, closed = tuple(held_ids), tuple(closed_ids)
    except Exception:  # the scheduler's boundary
        logger.exception("hours transitions: closing failed")
        failed.append("closing")
    return TransitionReport(released=released, held=held, closed=closed, failed=tuple(failed))
