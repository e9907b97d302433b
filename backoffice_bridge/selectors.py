"""Back-office bridge selectors (reads): the customer's link, action requests, the types
a user may start.  Plain dicts ready for JSON, the same shape the console events carry."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from backoffice_bridge.actions import (
    PERM_APPROVE_ACTIONS,
    action_type_get,
    action_types,
)
from backoffice_bridge.models import ActionRequest, CustomerLink, RequestStatus
from chat.selectors import access_conversation
from hub.exceptions import NotFound, PermissionDenied, ValidationFailed

BANK_USER_FIELDS = (
    "id",
    "user_name",
    "first_name",
    "last_name",
    "mobile",
    "email",
    "personal_id",
    "core_banking_id",
    "system_user_id",
    "status",
    "limits",
    "temporary_limits",
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def staff_label(user: AbstractBaseUser | None) -> dict[str, Any] | None:
    if user is None:
        return None
    name = user.get_full_name() or user.get_username()  # type: ignore[attr-defined]
    return {"id": user.pk, "name": name}


def bank_user_dict(user: dict[str, Any]) -> dict[str, Any]:
    """What the hub shows of a bank user (only the fields it knows)."""
    return {name: user.get(name) for name in BANK_USER_FIELDS}


def link_dict(link: CustomerLink) -> dict[str, Any]:
    return {
        "id": link.pk,
        "customer_id": str(link.customer_id),
        "bank_user_id": link.bank_user_id,
        "bank_user": link.snapshot,
        "conversation_id": str(link.conversation_id) if link.conversation_id else None,
        "linked_by": staff_label(link.linked_by),
        "linked_at": _iso(link.linked_at),
        "unlinked_by": staff_label(link.unlinked_by),
        "unlinked_at": _iso(link.unlinked_at),
    }


def live_link(*, customer_id: Any, lock: bool = False) -> CustomerLink | None:
    qs = CustomerLink.objects.select_related("linked_by", "unlinked_by").filter(
        customer_id=customer_id, unlinked_at__isnull=True
    )
    if lock:
        qs = qs.select_for_update(of=("self",))
    return qs.first()


def customer_link_get(*, actor: AbstractBaseUser, conversation_id: Any) -> dict[str, Any] | None:
    """The bank user linked to the conversation's customer, for every staff member who may
    see the conversation (the console calls this when it opens one); None when unlinked."""
    conversation = access_conversation(actor=actor, conversation_id=conversation_id)
    link = live_link(customer_id=conversation.customer_id)
    return link_dict(link) if link is not None else None


def request_dict(req: ActionRequest) -> dict[str, Any]:
    action = action_type_get(req.action_type)
    return {
        "id": req.pk,
        "action_type": req.action_type,
        "label": action.label,
        "params": req.params,
        "needs_checker": action.needs_checker,
        "conversation_id": str(req.conversation_id),
        "customer_id": str(req.customer_id),
        "bank_user_id": req.bank_user_id,
        "status": req.status,
        "business_status": req.business_status,
        "maker": staff_label(req.maker),
        "checker": staff_label(req.checker),
        "created_at": _iso(req.created_at),
        "expires_at": _iso(req.expires_at),
        "picked_at": _iso(req.picked_at),
        "decided_at": _iso(req.decided_at),
        "reason": req.reason,
        "finished_at": _iso(req.finished_at),
        "outcome": req.outcome,
        "revert_due_at": _iso(req.revert_due_at),
        "reverted_at": _iso(req.reverted_at),
    }


def _requests() -> Any:
    return ActionRequest.objects.select_related("maker", "checker")


def access_action_request(
    *, actor: AbstractBaseUser, request_id: Any, lock: bool = False
) -> ActionRequest:
    """A request for ``actor``: checkers see every one; others those of conversations
    they may see.  NotFound alike for missing and forbidden."""
    try:
        pk = int(request_id)
    except (TypeError, ValueError):
        raise NotFound("No such request.", request_id=str(request_id)) from None
    qs = _requests()
    if lock:
        qs = qs.select_for_update(of=("self",))
    req = qs.filter(pk=pk).first()
    if req is None:
        raise NotFound("No such request.", request_id=pk)
    if not actor.has_perm(PERM_APPROVE_ACTIONS):
        try:
            access_conversation(actor=actor, conversation_id=req.conversation_id)
        except NotFound:
            raise NotFound("No such request.", request_id=pk) from None
    return req


def action_request_get(*, actor: AbstractBaseUser, request_id: Any) -> dict[str, Any]:
    return request_dict(access_action_request(actor=actor, request_id=request_id))


def action_requests_for_approval(
    *, actor: AbstractBaseUser, statuses: list[str] | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """The checkers' list "Requests sent for approval" (pending and picked by default),
    oldest first."""
    if not actor.has_perm(PERM_APPROVE_ACTIONS):
        raise PermissionDenied("Only checkers see the requests sent for approval.")
    wanted = statuses or [RequestStatus.PENDING, RequestStatus.PICKED]
    valid = set(RequestStatus.values)
    for status in wanted:
        if status not in valid:
            raise ValidationFailed(
                f"Unknown status {status!r}.", field="status", choices=sorted(valid)
            )
    rows = _requests().filter(status__in=wanted).order_by("created_at", "id")[: max(1, limit)]
    return [request_dict(r) for r in rows]


def action_requests_for_conversation(
    *, actor: AbstractBaseUser, conversation_id: Any
) -> list[dict[str, Any]]:
    """Every request started from this conversation, newest first."""
    conversation = access_conversation(actor=actor, conversation_id=conversation_id)
    rows = _requests().filter(conversation_id=conversation.pk).order_by("-created_at", "-id")
    return [request_dict(r) for r in rows]


def action_types_for(*, actor: AbstractBaseUser) -> list[dict[str, Any]]:
    """The declared types, each with whether ``actor`` may start it."""
    return [t.describe() | {"allowed": actor.has_perm(t.permission)} for t in action_types()]
