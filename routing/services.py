"""Routing services: who answers each query, queues, presence, transfers and derivations.

``operator_pick`` is the one replaceable assignment policy: an online operator who serves
the conversation's query type and has a free slot — the least loaded, then the one who has
waited longest since their last assignment.  Everything else here (queues, transfers, batch
derivation, absence) calls it or respects the same rules.  Every change of hands is an
``Assignment`` row (the audit record and the timeline entry) and console events in the
same transaction.  Out of hours (the query type's opening hours,
``scheduling.selectors.service_open_for``) nobody is picked and the queue is not drained:
conversations wait for the opening.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from chat.events import console_event_append
from hub.exceptions import Conflict, ErrorCode, NotFound, PermissionDenied, ValidationFailed
from hub.roles import PERM_BATCH_DERIVE, PERM_DERIVE, PERM_FORCE_DERIVATION, PERM_HANDLE
from routing.models import (
    Assignment,
    DerivationBatch,
    OperatorState,
    Presence,
    QueryType,
    ResolutionReason,
    RoutingSettings,
    ScheduledAbsence,
)
from scheduling.selectors import open_types_filter, service_open_for

if TYPE_CHECKING:
    from chat.models import Conversation

# Conversations per console event when a derivation moves many at once: ~130 KB per
# event, well below a browser's or client's message limit, and few enough events that a
# derivation of 10,000 appends 81 rows, not 201.
DERIVATION_EVENT_CHUNK = 250
# The assignment note of a conversation that waits because its service is closed.
OUT_OF_HOURS = "Out of hours: waits for the opening."


def routing_settings_get() -> RoutingSettings:
    settings_row, _ = RoutingSettings.objects.get_or_create(pk=1)
    return settings_row


def operator_state_get(*, user_id: int) -> OperatorState:
    state, _ = OperatorState.objects.get_or_create(user_id=user_id)
    return state


def _handlers() -> QuerySet:
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__permissions__codename="handle_conversation") | Q(is_superuser=True))
    )


def _assigned_load(user_id: Any) -> QuerySet:
    from chat.models import Conversation, ConversationStatus

    return Conversation.objects.filter(operator_id=user_id, status=ConversationStatus.ASSIGNED)


def _absent_now() -> QuerySet:
    now = timezone.now()
    return ScheduledAbsence.objects.filter(starts_at__lte=now, ends_at__gt=now)


def _serves(query_type_id: int | None) -> Q:
    """Operators who serve a type: those with the type among their skills, and those with
    no skills at all (who serve every type).  A conversation without a type (no types are
    configured) may go to anyone."""
    if query_type_id is None:
        return Q()
    return Q(query_types=query_type_id) | Q(query_types__isnull=True)


def operator_pick(
    *, query_type_id: int | None = None, exclude_user_ids: frozenset[int] = frozenset()
) -> OperatorState | None:
    """The operator a conversation of this type goes to, locked, or None when nobody is free.

    The database ranks online operators who serve the type and have free capacity (least
    loaded, then longest since their last assignment) and locks the best row it can
    (``SKIP LOCKED``: a concurrent router holding the best one takes the next instead of
    waiting).  The load is counted again under the lock, so an operator is never
    overfilled by routers on other processes.  None while the type's service is closed:
    operators never receive queries out of hours.
    """
    if not service_open_for(query_type_id):
        return None
    load = (
        _assigned_load(OuterRef("user_id"))
        .order_by()
        .values("operator_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    eligible = (
        OperatorState.objects.filter(_serves(query_type_id))
        .filter(presence=Presence.ONLINE, user__in=_handlers())
        .exclude(user_id__in=exclude_user_ids)
        .exclude(user_id__in=_absent_now().values("operator_id"))
        .values("pk")
    )
    ranked = (
        OperatorState.objects.filter(pk__in=eligible)
        .annotate(load=Coalesce(Subquery(load), 0))
        .filter(load__lt=F("capacity"))
        .order_by("load", F("last_assigned_at").asc(nulls_first=True), "pk")
    )
    tried: set[int] = set()
    while True:
        state = (
            ranked.exclude(pk__in=tried)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("user")
            .first()
        )
        if state is None:
            return None
        if _assigned_load(state.user_id).count() < state.capacity:
            return state
        tried.add(state.pk)  # filled by a router that committed meanwhile: next one


# --- recording a change of hands ----------------------------------------------------------
def _assignment_dict(assignment: Assignment) -> dict[str, Any]:
    return {
        "id": assignment.pk,
        "kind": assignment.kind,
        "from_operator_id": assignment.from_operator_id,
        "to_operator_id": assignment.to_operator_id,
        "actor_id": assignment.actor_id,
        "note": assignment.note,
        "batch_id": assignment.batch_id,
        "created_at": assignment.created_at.isoformat(),
    }


def _hand_over(
    conversation: Conversation,
    *,
    to_user: AbstractBaseUser | None,
    kind: str,
    actor: AbstractBaseUser | None = None,
    note: str = "",
) -> Assignment:
    """Give a locked conversation to ``to_user`` (None: back to the queue), record it and
    tell both operators' consoles.  The caller checked every rule."""
    from chat.models import ConversationStatus
    from chat.selectors import conversation_dict

    now = timezone.now()
    previous = conversation.operator_id
    conversation.operator = to_user
    conversation.status = ConversationStatus.ASSIGNED if to_user else ConversationStatus.QUEUED
    conversation.assigned_at = now if to_user else None
    conversation.save(update_fields=["operator", "status", "assigned_at"])
    if to_user is not None:
        OperatorState.objects.filter(user_id=to_user.pk).update(last_assigned_at=now)
    assignment = Assignment.objects.create(
        conversation=conversation,
        kind=kind,
        from_operator_id=previous,
        to_operator=to_user,
        actor=actor,
        note=note,
    )
    record = _assignment_dict(assignment)
    if previous is not None and previous != conversation.operator_id:
        console_event_append(
            kind="routing.conversation_unassigned",
            payload={"conversation_id": str(conversation.pk), "assignment": record},
            conversation_id=conversation.pk,
            operator_id=previous,
        )
    console_event_append(
        kind="routing.conversation_assigned" if to_user else "routing.conversation_queued",
        payload={"conversation": conversation_dict(conversation), "assignment": record},
        conversation_id=conversation.pk,
        operator_id=conversation.operator_id,
    )
    return assignment


def conversation_assign_started(
    conversation: Conversation, *, actor: AbstractBaseUser, note: str = ""
) -> Assignment:
    """A conversation the bank starts (proactive outreach) goes to the staff member who
    starts it, whatever their presence or load: they write first and the customer's answer
    must come back to them.  ``conversation`` is new and unassigned, inside the caller's
    transaction.  Records the change of hands and announces it like any assignment."""
    return _hand_over(
        conversation, to_user=actor, kind=Assignment.Kind.OUTREACH, actor=actor, note=note[:2000]
    )


def queue_position(conversation: Conversation) -> int:
    """1-based place of a queued conversation in its type's queue (priority, then age)."""
    from chat.models import Conversation, ConversationStatus

    return (
        Conversation.objects.filter(
            status=ConversationStatus.QUEUED,
            query_type_id=conversation.query_type_id,
            created_at__lt=conversation.created_at,
        ).count()
        + 1
    )


def conversation_route(
    *,
    conversation: Conversation,
    exclude_user_ids: frozenset[int] = frozenset(),
    kind: str = Assignment.Kind.ROUTED,
    actor: AbstractBaseUser | None = None,
    note: str = "",
    tell_position: bool = True,
) -> Conversation:
    """Assign a queued conversation (row locked by the caller) to a free operator who
    serves its type, or leave it waiting in its type's queue and, if configured, tell the
    customer their position.  A conversation still waiting for the customer's answer to
    the type menu is not routed.  While its service is closed it waits without a position
    message (the out-of-hours autoreply tells the customer when it opens).

    Emits ``routing.conversation_assigned`` or ``routing.conversation_queued``.
    """
    if conversation.query_type_id is None and conversation.type_menu_asked:
        return conversation
    if not service_open_for(conversation.query_type_id):
        queued_kind = kind if kind != Assignment.Kind.ROUTED else Assignment.Kind.QUEUED
        _hand_over(
            conversation, to_user=None, kind=queued_kind, actor=actor, note=note or OUT_OF_HOURS
        )
        return conversation
    state = operator_pick(
        query_type_id=conversation.query_type_id, exclude_user_ids=exclude_user_ids
    )
    if state is not None:
        _hand_over(conversation, to_user=state.user, kind=kind, actor=actor, note=note)
        return conversation
    queued_kind = kind if kind != Assignment.Kind.ROUTED else Assignment.Kind.QUEUED
    _hand_over(conversation, to_user=None, kind=queued_kind, actor=actor, note=note)
    template = routing_settings_get().queue_position_message
    if tell_position and template:
        from chat.services import system_message_send

        text = template.replace("{position}", str(queue_position(conversation)))
        system_message_send(conversation=conversation, text=text)
    return conversation


def _queue_drain_locked(
    *, state: OperatorState, exclude_conversation_ids: frozenset[Any] = frozenset()
) -> int:
    """Give an online operator (row locked by the caller) the queued conversations they
    serve, highest priority then oldest first, up to their free capacity; never those whose
    service is closed now."""
    from chat.models import Conversation, ConversationStatus

    if state.presence != Presence.ONLINE or _absent_now().filter(operator_id=state.user_id):
        return 0
    free = state.capacity - _assigned_load(state.user_id).count()
    if free <= 0:
        return 0
    waiting = (
        Conversation.objects.filter(status=ConversationStatus.QUEUED)
        .exclude(query_type__isnull=True, type_menu_asked__gt=0)
        .exclude(pk__in=exclude_conversation_ids)
    )
    in_hours = open_types_filter()
    if in_hours is not None:
        waiting = waiting.filter(in_hours)
    skills = list(state.query_types.values_list("pk", flat=True))
    if skills:
        waiting = waiting.filter(Q(query_type_id__in=skills) | Q(query_type__isnull=True))
    waiting = list(
        waiting.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer", "query_type")
        .order_by(F("query_type__priority").desc(nulls_last=True), "created_at")[:free]
    )
    for conversation in waiting:
        _hand_over(conversation, to_user=state.user, kind=Assignment.Kind.ROUTED)
    return len(waiting)


def operator_slot_freed(
    *, operator: AbstractBaseUser, exclude_conversation_ids: frozenset[Any] = frozenset()
) -> int:
    """An operator's conversation ended or moved away: pull the next queued ones to them if
    online (never ``exclude_conversation_ids``: one they just handed back).  Runs inside the
    caller's transaction.  Returns how many were assigned."""
    # SKIP LOCKED: this runs after the transaction appended console events, i.e. while it
    # holds the event log's lock; waiting here for a router that holds this operator's row
    # and waits for the event log would deadlock.  A row locked elsewhere means someone is
    # routing to this operator right now; ``queues_drain`` (scheduler) catches anything left.
    state = (
        OperatorState.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("user")
        .filter(user_id=operator.pk)
        .first()
    )
    if state is None:
        return 0
    return _queue_drain_locked(state=state, exclude_conversation_ids=exclude_conversation_ids)


def queues_drain() -> int:
    """Give every online operator with room the waiting conversations they serve: the
    scheduler's safety net for a slot freed while its operator's row was busy.  Each
    operator in a short transaction of its own, rows skipped when locked."""
    if not _queued_conversations().exists():
        return 0
    assigned = 0
    online = OperatorState.objects.filter(presence=Presence.ONLINE).order_by("pk")
    for user_id in list(online.values_list("user_id", flat=True)):
        with transaction.atomic():
            assigned += operator_slot_freed(operator=get_user_model()(pk=user_id))
        if not _queued_conversations().exists():
            break
    return assigned


def _queued_conversations() -> QuerySet:
    from chat.models import Conversation, ConversationStatus

    return Conversation.objects.filter(status=ConversationStatus.QUEUED)


def presence_set(*, actor: AbstractBaseUser, presence: str) -> OperatorState:
    """Set the actor's presence; coming online pulls queued conversations to them.

    Raises PermissionDenied for users who do not take conversations and ValidationFailed
    for an unknown presence.  Emits ``routing.presence_changed`` and, for each conversation
    pulled from the queue, ``routing.conversation_assigned``.
    """
    if presence not in Presence.values:
        raise ValidationFailed(
            f"presence must be one of {', '.join(Presence.values)}.", field="presence"
        )
    if not actor.has_perm(PERM_HANDLE):
        raise PermissionDenied("Only staff who answer conversations have a presence.")
    with transaction.atomic():
        state, _ = OperatorState.objects.select_for_update().get_or_create(user_id=actor.pk)
        state.user = actor
        changed = state.presence != presence
        if changed:
            state.presence = presence
            state.presence_changed_at = timezone.now()
            state.save(update_fields=["presence", "presence_changed_at"])
        _queue_drain_locked(state=state)
        if changed:
            console_event_append(
                kind="routing.presence_changed",
                payload={"user_id": actor.pk, "presence": presence},
            )
    return state


def operator_profile_set(
    *,
    actor: AbstractBaseUser | None,
    user_id: int,
    query_type_codes: list[str] | None = None,
    capacity: int | None = None,
) -> OperatorState:
    """Set the query types an operator serves and/or their capacity (``actor`` None: a
    management command run by an administrator).  Coordinators and admins only.  A new type
    or more room pulls waiting conversations to them at once.  Raises PermissionDenied,
    NotFound (user, or an unknown or retired type code) and ValidationFailed (capacity)."""
    from hub.roles import PERM_MANAGE_ROUTING

    if actor is not None and not actor.has_perm(PERM_MANAGE_ROUTING):
        raise PermissionDenied("Only coordinators and admins can change operators' skills.")
    if capacity is not None and not 0 <= capacity <= 100:
        raise ValidationFailed("capacity must be between 0 and 100.", field="capacity")
    with transaction.atomic():
        user, state = _operator_for_derivation(user_id, field="user_id")
        state.user = user
        if query_type_codes is not None:
            types = list(QueryType.objects.filter(code__in=query_type_codes, active=True))
            unknown = sorted(set(query_type_codes) - {t.code for t in types})
            if unknown:
                raise NotFound(
                    f"No active query type {', '.join(unknown)}.",
                    field="query_types",
                    unknown=unknown,
                )
            state.query_types.set(types)
        if capacity is not None:
            state.capacity = capacity
            state.save(update_fields=["capacity"])
        _queue_drain_locked(state=state)
        return state


def operators_console_seen(*, user_ids: list[int]) -> int:
    """Record that these users have a console open on this process now.  Every process
    calls it for its consoles every ``HUB_CONSOLE_SEEN_SECONDS``; an online operator not
    seen for the away grace period has no console anywhere (routing.absence)."""
    if not user_ids:
        return 0
    with transaction.atomic():
        # In id order and skipping rows being routed to: many processes do this at once,
        # and waiting on a busy operator row here could deadlock with a router.
        ids = list(
            OperatorState.objects.select_for_update(skip_locked=True)
            .filter(user_id__in=user_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        return OperatorState.objects.filter(pk__in=ids).update(console_seen_at=timezone.now())


# --- transfers ------------------------------------------------------------------------
def _operator_for_derivation(user_id: int, *, field: str) -> tuple[AbstractBaseUser, OperatorState]:
    """An existing, active operator and their state row, locked; NotFound otherwise."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.has_perm(PERM_HANDLE):
        raise NotFound(f"No operator with id {user_id}.", field=field, operator_id=user_id)
    state, _ = OperatorState.objects.get_or_create(user_id=user.pk)
    state = OperatorState.objects.select_for_update().get(pk=state.pk)
    return user, state


def _source_operator(user_id: int) -> AbstractBaseUser:
    """The operator whose conversations are derived: any account that exists — a disabled
    one (someone who left the bank) or one whose role was removed still holds conversations
    that must move."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound(
            f"No operator with id {user_id}.", field="from_operator_id", operator_id=user_id
        )
    return user


def _check_target(
    state: OperatorState,
    *,
    query_type_ids: set[int | None],
    incoming: int,
    force: bool,
) -> None:
    """Refuse a target who is not online, is absent, does not serve a type, or is full."""
    if state.presence != Presence.ONLINE:
        raise Conflict(
            f"The operator is {state.presence}; only online operators receive conversations.",
            code=ErrorCode.OPERATOR_UNAVAILABLE,
            operator_id=state.user_id,
            presence=state.presence,
        )
    if _absent_now().filter(operator_id=state.user_id).exists():
        raise Conflict(
            "The operator is on a scheduled absence.",
            code=ErrorCode.OPERATOR_UNAVAILABLE,
            operator_id=state.user_id,
        )
    skills = set(state.query_types.values_list("pk", flat=True))
    missing = {t for t in query_type_ids if t is not None} - skills if skills else set()
    if missing:
        names = sorted(QueryType.objects.filter(pk__in=missing).values_list("name", flat=True))
        raise Conflict(
            f"The operator does not serve: {', '.join(names)}.",
            code=ErrorCode.OPERATOR_UNQUALIFIED,
            operator_id=state.user_id,
            query_types=names,
        )
    load = _assigned_load(state.user_id).count()
    if load + incoming > state.capacity and not force:
        raise Conflict(
            f"The operator has {load} of {state.capacity} conversations; "
            f"{incoming} more would exceed their capacity.",
            code=ErrorCode.OPERATOR_AT_CAPACITY,
            operator_id=state.user_id,
            load=load,
            capacity=state.capacity,
            incoming=incoming,
        )


def conversation_transfer(
    *,
    actor: AbstractBaseUser,
    conversation_id: Any,
    to_operator_id: int | None,
    note: str = "",
    force: bool = False,
) -> dict[str, Any]:
    """Move one open conversation to another operator (``None``: back to the queue, then
    routed to someone else if anyone is free).

    Coordinators and admins only (PermissionDenied otherwise); ``force`` (beyond the
    target's capacity) is for admins.  Raises NotFound (conversation or operator), Conflict
    with ``conversation_closed``, ``operator_unavailable``, ``operator_unqualified``,
    ``operator_at_capacity``, or ``conflict`` when it is already theirs.  Emits
    ``routing.conversation_unassigned`` to the old operator, ``routing.conversation_assigned``
    (or ``_queued``) to the new one; the old operator's freed slot pulls from the queue.
    """
    from chat.models import ConversationStatus
    from chat.selectors import access_conversation, conversation_dict

    if not actor.has_perm(PERM_DERIVE):
        raise PermissionDenied("Only coordinators and admins can transfer conversations.")
    if force and not actor.has_perm(PERM_FORCE_DERIVATION):
        raise PermissionDenied("Only admins can transfer beyond an operator's capacity.")
    note = note.strip()[:2000]
    with transaction.atomic():
        conversation = access_conversation(actor=actor, conversation_id=conversation_id, lock=True)
        if conversation.status == ConversationStatus.CLOSED:
            raise Conflict("The conversation is closed.", code=ErrorCode.CONVERSATION_CLOSED)
        previous = conversation.operator
        if to_operator_id is None:
            if previous is None:
                raise Conflict("The conversation is already waiting in the queue.")
            # Back to routing: someone else free takes it at once, or it waits.
            conversation_route(
                conversation=conversation,
                exclude_user_ids=frozenset({previous.pk}),
                kind=Assignment.Kind.REQUEUED,
                actor=actor,
                note=note,
                tell_position=False,
            )
        else:
            if conversation.operator_id == to_operator_id:
                raise Conflict("The conversation is already assigned to this operator.")
            target, state = _operator_for_derivation(to_operator_id, field="to_operator_id")
            _check_target(
                state,
                query_type_ids={conversation.query_type_id},
                incoming=1,
                force=force,
            )
            _hand_over(
                conversation,
                to_user=target,
                kind=Assignment.Kind.TRANSFERRED,
                actor=actor,
                note=note,
            )
        if previous is not None:
            operator_slot_freed(
                operator=previous, exclude_conversation_ids=frozenset({conversation.pk})
            )
        return conversation_dict(conversation)


# --- batch derivation -----------------------------------------------------------------
@dataclass(frozen=True)
class DerivationPlan:
    """Where each of an operator's active conversations would go (None: the queue)."""

    from_operator_id: int
    to_operator_id: int | None
    moves: list[tuple[Any, int | None]]

    def as_dict(self) -> dict[str, Any]:
        per_target: dict[str, int] = {}
        for _, target in self.moves:
            key = "queue" if target is None else str(target)
            per_target[key] = per_target.get(key, 0) + 1
        return {
            "from_operator_id": self.from_operator_id,
            "to_operator_id": self.to_operator_id,
            "mode": "spread" if self.to_operator_id is None else "to_operator",
            "count": len(self.moves),
            "per_target": per_target,
            "conversation_ids": [str(c) for c, _ in self.moves],
        }


def _derivation_plan_locked(
    *, from_user: AbstractBaseUser, to_operator_id: int | None, force: bool
) -> tuple[DerivationPlan, list[dict[str, Any]], dict[int, AbstractBaseUser]]:
    """Lock the source operator's active conversations and decide where each goes.

    To one operator: every rule of a single transfer, for all at once.  Spread: each
    conversation, highest priority first, to the online operator serving its type with the
    most free capacity (counting what this plan already gave them); those nobody can take
    wait in the queue.  The conversations come back as plain rows (routing.store).
    """
    from routing import store

    rows = store.operator_conversations_locked(from_user.pk)
    for row in rows:  # ids as the console and the set-based statements take them
        row["id"] = str(row["id"])
    if not rows:
        raise Conflict(
            "The operator has no active conversations to derive.",
            code=ErrorCode.NOTHING_TO_DERIVE,
            operator_id=from_user.pk,
        )
    targets: dict[int, AbstractBaseUser] = {}
    if to_operator_id is not None:
        if to_operator_id == from_user.pk:
            raise ValidationFailed("Choose another operator to derive to.", field="to_operator_id")
        target, state = _operator_for_derivation(to_operator_id, field="to_operator_id")
        _check_target(
            state,
            query_type_ids={row["query_type_id"] for row in rows},
            incoming=len(rows),
            force=force,
        )
        targets[target.pk] = target
        moves = [(row["id"], target.pk) for row in rows]
        return DerivationPlan(from_user.pk, to_operator_id, moves), rows, targets

    free = _spread_capacity(exclude_user_id=from_user.pk)
    moves = []
    for row in rows:
        best = None
        for user_id, (room, skills, _user) in free.items():
            if room <= 0 or (skills and row["query_type_id"] not in skills):
                continue
            if best is None or room > free[best][0]:
                best = user_id
        if best is not None:
            room, skills, user = free[best]
            free[best] = (room - 1, skills, user)
            targets[best] = user
        moves.append((row["id"], best))
    return DerivationPlan(from_user.pk, None, moves), rows, targets


def _spread_capacity(*, exclude_user_id: int) -> dict[int, tuple[int, set[int], AbstractBaseUser]]:
    """Online, present operators other than the source: (free slots, skills, user), rows
    locked so that concurrent routing cannot fill the slots this plan counts on."""
    from chat.models import Conversation, ConversationStatus

    states = list(
        OperatorState.objects.select_for_update(of=("self",))
        .filter(presence=Presence.ONLINE, user__in=_handlers())
        .exclude(user_id=exclude_user_id)
        .exclude(user_id__in=_absent_now().values("operator_id"))
        .select_related("user")
        .order_by("pk")
    )
    loads = dict(
        Conversation.objects.filter(
            status=ConversationStatus.ASSIGNED, operator_id__in=[s.user_id for s in states]
        )
        .values("operator_id")
        .annotate(n=Count("pk"))
        .values_list("operator_id", "n")
    )
    skills: dict[int, set[int]] = {}
    for user_id, type_id in OperatorState.query_types.through.objects.filter(
        operatorstate__in=states
    ).values_list("operatorstate__user_id", "querytype_id"):
        skills.setdefault(user_id, set()).add(type_id)
    return {
        s.user_id: (s.capacity - loads.get(s.user_id, 0), skills.get(s.user_id, set()), s.user)
        for s in states
    }


def _derive_check(actor: AbstractBaseUser, force: bool) -> None:
    if not actor.has_perm(PERM_BATCH_DERIVE):
        raise PermissionDenied("Only admins can derive all of an operator's conversations.")
    if force and not actor.has_perm(PERM_FORCE_DERIVATION):
        raise PermissionDenied("Only admins can derive beyond an operator's capacity.")


def derivation_preview(
    *,
    actor: AbstractBaseUser | None,
    from_operator_id: int,
    to_operator_id: int | None,
    force: bool,
) -> dict[str, Any]:
    """What ``operator_conversations_derive`` would move, and where, without moving it
    (``actor`` None: a management command run by an administrator)."""
    if actor is not None:
        _derive_check(actor, force)
    with transaction.atomic():
        from_user = _source_operator(from_operator_id)
        plan, _, _ = _derivation_plan_locked(
            from_user=from_user, to_operator_id=to_operator_id, force=force
        )
        return plan.as_dict()


def operator_conversations_derive(
    *,
    actor: AbstractBaseUser | None,
    from_operator_id: int,
    to_operator_id: int | None,
    force: bool = False,
    note: str = "",
    reason: str = "manual",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Move every active conversation of one operator to another, or spread them over the
    online operators who serve their types (``to_operator_id=None``) — all or nothing, in
    one transaction.

    The source's conversation rows are locked first, so a customer message racing the
    derivation waits and is then stored and announced to the new operator; nothing is
    delivered to the old one after the move.  Records one ``DerivationBatch`` with its
    count and one ``Assignment`` per conversation.  ``actor=None`` is the hub itself
    (absence policies, management commands).  Emits, in chunks of 100 conversations,
    ``routing.conversations_unassigned`` to the old operator's stream and
    ``routing.conversations_assigned`` (``_queued`` for the queue) to each target's, and
    ``routing.derivation_completed`` to supervisors.  ``progress(done, total)`` is called
    as rows are written.
    """
    from chat.models import ConversationStatus, Customer
    from chat.selectors import conversation_payload, operator_label
    from routing import store

    if actor is not None:
        _derive_check(actor, force)
    note = note.strip()[:2000]
    with transaction.atomic():
        from_user = _source_operator(from_operator_id)
        plan, rows, targets = _derivation_plan_locked(
            from_user=from_user, to_operator_id=to_operator_id, force=force
        )
        total = len(rows)
        now = timezone.now()
        batch = DerivationBatch.objects.create(
            actor=actor,
            from_operator=from_user,
            to_operator_id=to_operator_id,
            mode=DerivationBatch.Mode.SPREAD
            if to_operator_id is None
            else DerivationBatch.Mode.TO_OPERATOR,
            reason=reason,
            forced=force,
            note=note,
            count=total,
        )
        by_target: dict[int | None, list[Any]] = {}
        for conversation_id, target in plan.moves:
            by_target.setdefault(target, []).append(conversation_id)
        for target, ids in by_target.items():
            store.conversations_hand_to(ids=ids, operator_id=target, now=now)
        OperatorState.objects.filter(user_id__in=[t for t in by_target if t]).update(
            last_assigned_at=now
        )
        all_ids = [row["id"] for row in rows]
        store.assignments_record(
            ids=all_ids,
            kind=Assignment.Kind.BATCH if reason == "manual" else Assignment.Kind.ABSENCE,
            from_operator_id=from_user.pk,
            actor_id=actor.pk if actor else None,
            batch_id=batch.pk,
            note=note,
            now=now,
        )
        if progress:
            progress(total // 2, total)
        # Console events, in chunks: the old operator's consoles drop the conversations,
        # each target's consoles receive theirs (the queue's go to supervisors).
        target_of = dict(plan.moves)
        labels = {user_id: operator_label(user) for user_id, user in targets.items()}
        payloads: dict[Any, dict[str, Any]] = {}
        for row in rows:
            target = target_of[row["id"]]
            row.update(
                operator_id=target,
                status=ConversationStatus.ASSIGNED if target else ConversationStatus.QUEUED,
                assigned_at=now if target else None,
            )
            payloads[row["id"]] = conversation_payload(
                row,
                customer_name=Customer.label(
                    display_name=row["customer__display_name"], customer_id=row["customer_id"]
                ),
                operator=labels.get(target),
                query_type=(
                    {
                        "id": row["query_type_id"],
                        "code": row["query_type__code"],
                        "name": row["query_type__name"],
                    }
                    if row["query_type_id"] is not None
                    else None
                ),
            )
        batch_info = {"id": batch.pk, "reason": reason, "actor_id": actor.pk if actor else None}
        for start in range(0, total, DERIVATION_EVENT_CHUNK):
            console_event_append(
                kind="routing.conversations_unassigned",
                payload={
                    "conversation_ids": all_ids[start : start + DERIVATION_EVENT_CHUNK],
                    "batch": batch_info,
                },
                operator_id=from_user.pk,
            )
        done = 0
        for target, ids in by_target.items():
            for start in range(0, len(ids), DERIVATION_EVENT_CHUNK):
                chunk = ids[start : start + DERIVATION_EVENT_CHUNK]
                console_event_append(
                    kind="routing.conversations_assigned"
                    if target
                    else "routing.conversations_queued",
                    payload={"conversations": [payloads[c] for c in chunk], "batch": batch_info},
                    operator_id=target,
                )
                done += len(chunk)
                if progress:
                    progress(total // 2 + done // 2, total)
        summary = {**plan.as_dict(), "batch_id": batch.pk, "reason": reason}
        summary.pop("conversation_ids")
        console_event_append(kind="routing.derivation_completed", payload={"batch": summary})
        # A source who is still online (derived from, not absent) now has room: it goes to
        # other waiting conversations, never back to the ones just moved to the queue.
        operator_slot_freed(
            operator=from_user, exclude_conversation_ids=frozenset(by_target.get(None, ()))
        )
        if progress:
            progress(total, total)
        return summary


# --- query types -----------------------------------------------------------------------
def conversation_type_set(
    *, actor: AbstractBaseUser, conversation_id: Any, query_type_id: int
) -> dict[str, Any]:
    """Correct a conversation's query type (its operator, or a supervisor).  It stays with
    its operator if they serve the new type; otherwise it is routed again.  Emits
    ``routing.conversation_type_changed`` and whatever the re-routing emits."""
    from chat.models import ConversationStatus
    from chat.selectors import access_conversation, conversation_dict
    from hub.roles import can_supervise

    with transaction.atomic():
        conversation = access_conversation(
            actor=actor,
            conversation_id=conversation_id,
            lock=True,
            act=not can_supervise(actor),
        )
        if conversation.status == ConversationStatus.CLOSED:
            raise Conflict("The conversation is closed.", code=ErrorCode.CONVERSATION_CLOSED)
        query_type = QueryType.objects.filter(pk=query_type_id, active=True).first()
        if query_type is None:
            raise NotFound(
                f"No active query type with id {query_type_id}.",
                field="query_type_id",
                query_type_id=query_type_id,
            )
        if conversation.query_type_id == query_type.pk:
            return conversation_dict(conversation)
        conversation.query_type = query_type
        conversation.save(update_fields=["query_type"])
        console_event_append(
            kind="routing.conversation_type_changed",
            payload={"conversation": conversation_dict(conversation), "actor_id": actor.pk},
            conversation_id=conversation.pk,
            operator_id=conversation.operator_id,
        )
        operator = conversation.operator
        if operator is not None:
            skills = set(
                OperatorState.objects.filter(user_id=operator.pk).values_list(
                    "query_types", flat=True
                )
            ) - {None}
            if skills and query_type.pk not in skills:
                conversation_route(
                    conversation=conversation,
                    exclude_user_ids=frozenset({operator.pk}),
                    kind=Assignment.Kind.TYPE_CHANGED,
                    actor=actor,
                )
                operator_slot_freed(
                    operator=operator, exclude_conversation_ids=frozenset({conversation.pk})
                )
        elif conversation.status == ConversationStatus.QUEUED:
            conversation_route(conversation=conversation, tell_position=False)
        return conversation_dict(conversation)


# --- closing and reopening ------------------------------------------------------------
def resolutions_for_type(*, query_type_id: int | None) -> QuerySet[ResolutionReason]:
    """Active reasons an operator may close a conversation of this type with."""
    reasons = ResolutionReason.objects.filter(active=True)
    if query_type_id is None:
        return reasons.filter(query_types__isnull=True)
    return reasons.filter(Q(query_types=query_type_id) | Q(query_types__isnull=True)).distinct()


def resolution_check(
    *,
    query_type_id: int | None,
    resolution_id: int | None,
    required: bool = True,
    field: str = "resolution_id",
) -> ResolutionReason | None:
    """The reason a close gives, checked against the conversation's type.  None is allowed
    only while no reason is configured for the type (a hub being set up), or when the
    caller does not require one (``required=False``)."""
    allowed = resolutions_for_type(query_type_id=query_type_id)
    if resolution_id is None:
        if required and allowed.exists():
            raise ValidationFailed(
                "Choose a resolution reason.",
                code=ErrorCode.RESOLUTION_REQUIRED,
                field=field,
                allowed=list(allowed.values("id", "name")),
            )
        return None
    reason = allowed.filter(pk=resolution_id).first()
    if reason is None:
        raise ValidationFailed(
            f"Resolution {resolution_id} is not an active reason valid for this query type.",
            code=ErrorCode.RESOLUTION_REQUIRED,
            field=field,
            allowed=list(allowed.values("id", "name")),
        )
    return reason


def conversation_reopen(*, conversation: Conversation) -> None:
    """A customer wrote within the reopen window of a close (row locked, status already
    queued): back to the operator who closed it if they are free, otherwise routed (out of
    hours: it waits for the opening)."""
    operator_id = conversation.operator_id
    if operator_id is not None and service_open_for(conversation.query_type_id):
        preferred = (
            OperatorState.objects.filter(
                user_id=operator_id, presence=Presence.ONLINE, user__in=_handlers()
            )
            .filter(_serves(conversation.query_type_id))
            .exclude(user_id__in=_absent_now().values("operator_id"))
            .select_for_update(of=("self",))
            .select_related("user")
            .first()
        )
        if preferred is not None and _assigned_load(operator_id).count() < preferred.capacity:
            _hand_over(conversation, to_user=preferred.user, kind=Assignment.Kind.REOPENED)
            return
    conversation_route(conversation=conversation, kind=Assignment.Kind.REOPENED)
