"""Routing services: presence and the placeholder assignment policy.

``operator_pick`` is the one replaceable policy function (first free operator: online, with
the handle permission, under capacity, least loaded, then longest since last assignment).
The routing issue replaces it with skills, query types and queues.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from chat.events import console_event_append
from hub.exceptions import PermissionDenied, ValidationFailed
from hub.roles import PERM_HANDLE
from routing.models import OperatorState, Presence

if TYPE_CHECKING:
    from chat.models import Conversation


def operator_state_get(*, user_id: int) -> OperatorState:
    state, _ = OperatorState.objects.get_or_create(user_id=user_id)
    return state


def _handlers() -> QuerySet:
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__permissions__codename="handle_conversation") | Q(is_superuser=True))
    )


def operator_pick(*, exclude_user_ids: frozenset[int] = frozenset()) -> OperatorState | None:
    """The operator a new conversation goes to, locked, or None when nobody is free.

    The database ranks online operators with free capacity (least loaded, then longest since
    their last assignment) and locks the best row it can (``SKIP LOCKED``: a concurrent
    router holding the best one takes the next instead of waiting for it or giving up).  The
    load is counted again under the lock, so an operator is never overfilled, and the cost
    does not grow with the number of operators online.
    """
    from chat.models import Conversation, ConversationStatus

    load = (
        Conversation.objects.filter(
            operator_id=OuterRef("user_id"), status=ConversationStatus.ASSIGNED
        )
        .order_by()
        .values("operator_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    ranked = (
        OperatorState.objects.filter(presence=Presence.ONLINE, user__in=_handlers())
        .exclude(user_id__in=exclude_user_ids)
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
        current = Conversation.objects.filter(
            operator_id=state.user_id, status=ConversationStatus.ASSIGNED
        ).count()
        if current < state.capacity:
            return state
        tried.add(state.pk)  # filled by a router that committed meanwhile: next one


def conversation_route(*, conversation: Conversation) -> Conversation:
    """Assign a queued conversation to a free operator, or leave it queued.

    Runs inside the caller's transaction with the conversation row locked.  Emits
    ``routing.conversation_assigned`` (to the operator's stream) or
    ``routing.conversation_queued`` (supervisors only).
    """
    from chat.models import ConversationStatus
    from chat.selectors import conversation_dict

    state = operator_pick()
    now = timezone.now()
    if state is None:
        console_event_append(
            kind="routing.conversation_queued",
            payload={"conversation": conversation_dict(conversation)},
            conversation_id=conversation.pk,
        )
        return conversation
    conversation.operator = state.user
    conversation.status = ConversationStatus.ASSIGNED
    conversation.assigned_at = now
    conversation.save(update_fields=["operator", "status", "assigned_at"])
    OperatorState.objects.filter(pk=state.pk).update(last_assigned_at=now)
    console_event_append(
        kind="routing.conversation_assigned",
        payload={"conversation": conversation_dict(conversation)},
        conversation_id=conversation.pk,
        operator_id=state.user_id,
    )
    return conversation


def _queue_drain_locked(*, state: OperatorState, user: AbstractBaseUser) -> int:
    """Give an online operator (row locked by the caller) queued conversations, oldest
    first, up to their free capacity.  Emits ``routing.conversation_assigned`` for each."""
    from chat.models import Conversation, ConversationStatus
    from chat.selectors import conversation_dict

    if state.presence != Presence.ONLINE:
        return 0
    load = Conversation.objects.filter(
        operator_id=state.user_id, status=ConversationStatus.ASSIGNED
    ).count()
    free = max(state.capacity - load, 0)
    if not free:
        return 0
    waiting = list(
        Conversation.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer")
        .filter(status=ConversationStatus.QUEUED)
        .order_by("created_at")[:free]
    )
    for conversation in waiting:
        now = timezone.now()
        conversation.operator = user
        conversation.status = ConversationStatus.ASSIGNED
        conversation.assigned_at = now
        conversation.save(update_fields=["operator", "status", "assigned_at"])
        state.last_assigned_at = now
        state.save(update_fields=["last_assigned_at"])
        console_event_append(
            kind="routing.conversation_assigned",
            payload={"conversation": conversation_dict(conversation)},
            conversation_id=conversation.pk,
            operator_id=state.user_id,
        )
    return len(waiting)


def operator_slot_freed(*, operator: AbstractBaseUser) -> int:
    """An operator's conversation ended: pull the next queued ones to them if online.

    Runs inside the caller's transaction.  Returns how many conversations were assigned.
    """
    state = OperatorState.objects.select_for_update().filter(user_id=operator.pk).first()
    if state is None:
        return 0
    return _queue_drain_locked(state=state, user=operator)


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
        changed = state.presence != presence
        if changed:
            state.presence = presence
            state.presence_changed_at = timezone.now()
            state.save(update_fields=["presence", "presence_changed_at"])
        _queue_drain_locked(state=state, user=actor)
        if changed:
            console_event_append(
                kind="routing.presence_changed",
                payload={"user_id": actor.pk, "presence": presence},
            )
    return state
