"""Routing read layer: what a console needs to offer routing choices (query types,
resolution reasons, transfer targets), and the user look-ups of the derivation command.

Every read here is a fixed number of queries whatever the number of rows: the options are
fetched on every console (re)connect.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, Min, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from hub.roles import (
    PERM_BATCH_DERIVE,
    PERM_DERIVE,
    PERM_FORCE_DERIVATION,
    PERM_HANDLE,
)
from routing.models import Assignment, OperatorState, Presence, QueryType, ResolutionReason


def _handler_ids() -> Any:
    """Active users holding ``chat.handle_conversation`` (through a group, directly, or as
    superusers): the same people ``user.has_perm(PERM_HANDLE)`` admits as transfer targets."""
    app_label, codename = PERM_HANDLE.split(".")
    via_group = Q(
        groups__permissions__codename=codename,
        groups__permissions__content_type__app_label=app_label,
    )
    direct = Q(
        user_permissions__codename=codename,
        user_permissions__content_type__app_label=app_label,
    )
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(via_group | direct | Q(is_superuser=True))
        .values("pk")
    )


def _display_name(first: str, last: str, username: str) -> str:
    return f"{first} {last}".strip() or username


def _operators() -> list[dict[str, Any]]:
    """Every operator with presence, current load, capacity and skills, in two queries."""
    from chat.models import Conversation, ConversationStatus

    load = (
        Conversation.objects.filter(operator_id=OuterRef("pk"), status=ConversationStatus.ASSIGNED)
        .order_by()
        .values("operator_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = list(
        get_user_model()
        .objects.filter(pk__in=_handler_ids())
        .annotate(load=Coalesce(Subquery(load), 0))
        .values(
            "pk",
            "username",
            "first_name",
            "last_name",
            "load",
            "operator_state__presence",
            "operator_state__capacity",
        )
        .order_by("username")
    )
    skills: dict[int, list[int]] = {}
    links = (
        OperatorState.query_types.through.objects.filter(
            operatorstate__user_id__in=[row["pk"] for row in rows]
        )
        .order_by("querytype_id")
        .values_list("operatorstate__user_id", "querytype_id")
    )
    for user_id, type_id in links:
        skills.setdefault(user_id, []).append(type_id)
    # A user who never had a state row is offline with the default capacity.
    default_capacity = OperatorState._meta.get_field("capacity").default
    return [
        {
            "id": row["pk"],
            "name": _display_name(row["first_name"], row["last_name"], row["username"]),
            "presence": row["operator_state__presence"] or Presence.OFFLINE.value,
            "load": row["load"],
            "capacity": (
                row["operator_state__capacity"]
                if row["operator_state__capacity"] is not None
                else default_capacity
            ),
            "query_type_ids": skills.get(row["pk"], []),
        }
        for row in rows
    ]


def _resolutions() -> list[dict[str, Any]]:
    """Active reasons with the types they apply to (empty: every type), in two queries."""
    reasons = list(ResolutionReason.objects.filter(active=True).values("id", "name"))
    types: dict[int, list[int]] = {}
    links = (
        ResolutionReason.query_types.through.objects.filter(resolutionreason__active=True)
        .order_by("querytype_id")
        .values_list("resolutionreason_id", "querytype_id")
    )
    for reason_id, type_id in links:
        types.setdefault(reason_id, []).append(type_id)
    return [{**reason, "query_type_ids": types.get(reason["id"], [])} for reason in reasons]


def routing_options(*, actor: AbstractBaseUser) -> dict[str, Any]:
    """The choices a console offers: active query types (menu order), active resolution
    reasons, and — only for users who may transfer (``routing.derive_conversations``) —
    the operators they can transfer or derive to, plus what the user may do.  Five
    queries at most."""
    query_types = list(
        QueryType.objects.filter(active=True)
        .order_by("menu_position", "name")
        .values("id", "code", "name", "priority")
    )
    may_derive = actor.has_perm(PERM_DERIVE)
    return {
        "query_types": query_types,
        "resolutions": _resolutions(),
        "operators": _operators() if may_derive else [],
        # What this user may do, so a console offers exactly that (the services check).
        "can": {
            "transfer": may_derive,
            "batch_derive": actor.has_perm(PERM_BATCH_DERIVE),
            "force": actor.has_perm(PERM_FORCE_DERIVATION),
        },
    }


def user_id_by_username(*, username: str) -> int | None:
    """The id of the user with this user name, or None (the derivation command's input)."""
    return (
        get_user_model()
        .objects.filter(**{get_user_model().USERNAME_FIELD: username})
        .values_list("pk", flat=True)
        .first()
    )


def usernames(*, user_ids: list[int]) -> dict[int, str]:
    """User names by id, in one query (to print a derivation plan)."""
    model = get_user_model()
    return dict(model.objects.filter(pk__in=user_ids).values_list("pk", model.USERNAME_FIELD))


# A conversation's routing timeline shows at most this many changes of hands (newest).
TIMELINE_LIMIT = 200


def conversation_routing_timeline(*, conversation_id: Any) -> list[dict[str, Any]]:
    """Every change of hands of one conversation, oldest first, with the names a timeline
    shows: who had it, who has it, who decided (None: the hub), why, and the note."""
    rows = list(
        Assignment.objects.filter(conversation_id=conversation_id)
        .select_related("from_operator", "to_operator", "actor")
        .order_by("-id")[:TIMELINE_LIMIT]
    )
    rows.reverse()

    def person(user: Any) -> dict[str, Any] | None:
        if user is None:
            return None
        return {"id": user.pk, "name": user.get_full_name() or user.get_username()}

    return [
        {
            "id": row.pk,
            "kind": row.kind,
            "from": person(row.from_operator),
            "to": person(row.to_operator),
            "actor": person(row.actor),
            "note": row.note,
            "batch_id": row.batch_id,
            "created_at": row.created_at.isoformat(),
        }
        for row in rows
    ]


def queue_waiting_for(*, actor: AbstractBaseUser) -> dict[str, Any]:
    """How many conversations wait in the queue for the types this user serves, and since
    when the oldest waits: the console's "queue I may see" line for operators, who get no
    queue events.  Skills as routing reads them (none: every type; an untyped conversation
    goes to anyone); a conversation still waiting for the customer's menu answer is not
    routable yet and is not counted.  One query."""
    from chat.models import Conversation, ConversationStatus

    skills = OperatorState.query_types.through.objects.filter(
        operatorstate__user_id=actor.pk
    ).values("querytype_id")
    serves = ~Exists(skills) | Q(query_type_id__in=skills) | Q(query_type__isnull=True)
    row = (
        Conversation.objects.filter(status=ConversationStatus.QUEUED)
        .exclude(query_type__isnull=True, type_menu_asked__gt=0)
        .filter(serves)
        .aggregate(waiting=Count("pk"), oldest=Min("last_customer_message_at"))
    )
    oldest = row["oldest"]
    return {"waiting": row["waiting"], "oldest_at": oldest.isoformat() if oldest else None}
