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
    their last assignment) and returns the best; only that row is locked, and its load is
    counted again under the lock, so two processes assigning at once never overfill an
    operator and the cost does not grow with the number of operators online.
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
    for _attempt in range(5):
        best = ranked.values_list("pk", flat=True).first()
        if best is None:
            return None
        state = (
            OperatorState.objects.select_for_update(of=("self",))
            .select_related("user")
            .get(pk=best)
        )
        current = Conversation.objects.filter(
            operator_id=state.user_id, status=ConversationStatus.ASSIGNED
        ).count()
        if state.presence == Presence.ONLINE and current < state.capacity:
            return state
        # Filled (or went away) while we ranked: rank again.
    return None


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


def presence_set(*, actor: AbstractBaseUser, presence: str) -> OperatorState:
    """Set the actor's presence; coming online pulls queued conversations to them.

    Raises PermissionDenied for users who do not take conversations and ValidationFailed
    for an unknown presence.  Emits ``routing.presence_changed`` and, for each conversation
    pulled from the queue, ``routing.conversation_assigned``.
    """
    from chat.models import Conversation, ConversationStatus
    from chat.selectors import conversation_dict

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
        if presence == Presence.ONLINE:
            waiting = (
                Conversation.objects.select_for_update(skip_locked=True)
                .filter(status=ConversationStatus.QUEUED)
                .order_by("created_at")
            )
            load = Conversation.objects.filter(
                operator_id=actor.pk, status=ConversationStatus.ASSIGNED
            ).count()
            free = max(state.capacity - load, 0)
            for conversation in waiting[:free]:
                now = timezone.now()
                conversation.operator = actor
                conversation.status = ConversationStatus.ASSIGNED
                conversation.assigned_at = now
                conversation.save(update_fields=["operator", "status", "assigned_at"])
                state.last_assigned_at = now
                state.save(update_fields=["last_assigned_at"])
                console_event_append(
                    kind="routing.conversation_assigned",
                    payload={"conversation": conversation_dict(conversation)},
                    conversation_id=conversation.pk,
                    operator_id=actor.pk,
                )
        if changed:
            console_event_append(
                kind="routing.presence_changed",
                payload={"user_id": actor.pk, "presence": presence},
            )
    return state
