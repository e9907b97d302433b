"""Back-office bridge selectors (reads): the customer's link, action requests, consent,
eligibility and the types a user may start.  Plain dicts ready for JSON, the same shape
the console events carry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from backoffice_bridge.actions import (
    PERM_APPROVE_ACTIONS,
    ActionType,
    action_type_get,
    action_types,
)
from backoffice_bridge.models import ActionRequest, Consent, CustomerLink, RequestStatus
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
        "status_read_at": _iso(link.refreshed_at or link.linked_at),
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
        "on_behalf": action.on_behalf,
        "confirmation_expires_at": _iso(req.confirmation_expires_at),
        "confirmed_at": _iso(req.confirmed_at),
        # The maker's choice: tell the customer in the chat when it is done.
        "notify_customer": bool((req.outcome or {}).get("notify_customer")),
    }


def _requests() -> Any:
    return ActionRequest.objects.select_related("maker", "checker")


def access_action_request(
    *, actor: AbstractBaseUser, request_id: Any, lock: bool = False
) -> ActionRequest:
    """A request for ``actor``: checkers see every one, a maker their own (even once the
    conversation moved to someone else: they may still cancel it); others those of
    conversations they may see.  NotFound alike for missing and forbidden."""
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
    if req.maker_id != actor.pk and not actor.has_perm(PERM_APPROVE_ACTIONS):
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


# --- consent and eligibility (seed 001) ------------------------------------------------------

#: Seed 001's words, exactly: the console shows them on a disabled action and the refusal
#: of a start carries them.
DISABLED_NEW = "Disabled as the customer is new"
DISABLED_LOCKED = "Disabled as the customer is locked"
DISABLED_SUSPENDED = "Disabled as the customer is suspended"
DISABLED_NO_CONSENT = "Disabled as the customer has not consented"
DISABLED_NOT_LINKED = "Disabled as the customer is not linked to a bank user"
_STATUS_REASONS = {
    "new": ("customer_new", DISABLED_NEW),
    "locked": ("customer_locked", DISABLED_LOCKED),
    "suspended": ("customer_suspended", DISABLED_SUSPENDED),
}


def consent_dict(consent: Consent, *, at: datetime | None = None) -> dict[str, Any]:
    at = at or timezone.now()
    return {
        "id": consent.pk,
        "customer_id": str(consent.customer_id),
        "bank_user_id": consent.bank_user_id,
        "link_id": consent.link_id,
        "conversation_id": str(consent.conversation_id) if consent.conversation_id else None,
        "scope": list(consent.scope) or None,
        "evidence": consent.evidence,
        "evidence_reference": consent.evidence_reference,
        "recorded_by": staff_label(consent.recorded_by),
        "recorded_at": _iso(consent.recorded_at),
        "expires_at": _iso(consent.expires_at),
        "revoked_by": staff_label(consent.revoked_by),
        "revoked_at": _iso(consent.revoked_at),
        "revoke_reason": consent.revoke_reason,
        "valid": consent.revoked_at is None and consent.expires_at > at,
    }


def _consents(*, customer_id: Any, bank_user_id: str) -> Any:
    return (
        Consent.objects.select_related("recorded_by", "revoked_by")
        .filter(customer_id=customer_id, bank_user_id=bank_user_id)
        .order_by("-recorded_at", "-id")
    )


def _covers(consent: Consent, action_name: str) -> bool:
    return not consent.scope or action_name in consent.scope


def consent_state(
    consents: list[Consent], *, action_name: str, at: datetime
) -> tuple[Consent | None, str]:
    """The valid consent covering ``action_name`` (newest first), or None and why: none,
    expired, revoked (the newest covering one) or out_of_scope."""
    covering = [c for c in consents if _covers(c, action_name)]
    for consent in covering:
        if consent.revoked_at is None and consent.expires_at > at:
            return consent, "valid"
    if covering:
        newest = covering[0]
        return None, "revoked" if newest.revoked_at is not None else "expired"
    return None, "out_of_scope" if consents else "none"


def consent_valid_get(
    *, customer_id: Any, bank_user_id: str, action_type: str, at: datetime | None = None
) -> Consent | None:
    """The customer's current valid consent for ``action_type`` on this bank user."""
    found, _ = consent_state(
        list(_consents(customer_id=customer_id, bank_user_id=bank_user_id)),
        action_name=action_type,
        at=at or timezone.now(),
    )
    return found


def consents_for_conversation(
    *, actor: AbstractBaseUser, conversation_id: Any, at: datetime | None = None
) -> dict[str, Any]:
    """Every consent recorded for the conversation's linked bank user (newest first, each
    with ``valid``); ``bank_user_id`` None and no consents when the customer is unlinked."""
    conversation = access_conversation(actor=actor, conversation_id=conversation_id)
    link = live_link(customer_id=conversation.customer_id)
    if link is None:
        return {"bank_user_id": None, "consents": []}
    rows = _consents(customer_id=conversation.customer_id, bank_user_id=link.bank_user_id)
    at = at or timezone.now()
    return {"bank_user_id": link.bank_user_id, "consents": [consent_dict(c, at=at) for c in rows]}


@dataclass(frozen=True)
class Ineligible:
    """Why an on-behalf action is disabled: ``code`` (``action_disabled`` or
    ``consent_required``), ``reason`` for machines, ``message`` for people."""

    code: str
    reason: str
    message: str
    consent: str = ""


def on_behalf_eligibility(
    *,
    action: type[ActionType],
    link: CustomerLink | None,
    consents: list[Consent],
    at: datetime,
) -> Ineligible | None:
    """None when an on-behalf ``action`` may start for the linked bank user: an active
    account (the status the link last read from the back office) and a valid consent
    covering the type.  The account's status is checked first (seed 001's order)."""
    if link is None:
        return Ineligible("action_disabled", "customer_not_linked", DISABLED_NOT_LINKED)
    status = (link.snapshot or {}).get("status")
    if status in _STATUS_REASONS:
        reason, message = _STATUS_REASONS[status]
        return Ineligible("action_disabled", reason, message)
    if status != "active":
        return Ineligible(
            "action_disabled", "customer_status", f"Disabled as the customer is {status}"
        )
    found, state = consent_state(consents, action_name=action.name, at=at)
    if found is None:
        return Ineligible("consent_required", "no_consent", DISABLED_NO_CONSENT, consent=state)
    return None


def action_types_for(
    *, actor: AbstractBaseUser, conversation_id: Any = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The types ``actor`` may see, each with ``allowed`` (the permission), ``enabled``
    and ``disabled_reason``.  On-behalf types are not offered at all without their
    permission (seed 001: the button is hidden); with it, for a conversation, they are
    disabled with seed 001's reason when the bank user is new, locked or suspended or
    has not consented.  The status is the one the link last read (docs/backoffice.md)."""
    link = None
    consents: list[Consent] = []
    if conversation_id is not None:
        conversation = access_conversation(actor=actor, conversation_id=conversation_id)
        link = live_link(customer_id=conversation.customer_id)
        if link is not None:
            consents = list(
                _consents(customer_id=conversation.customer_id, bank_user_id=link.bank_user_id)
            )
    at = now or timezone.now()
    offered = []
    for action in action_types():
        allowed = actor.has_perm(action.permission)
        if action.on_behalf and not allowed:
            continue
        entry = action.describe() | {"allowed": allowed, "enabled": allowed}
        entry["disabled_reason"] = None if allowed else "You may not start this action."
        entry["disabled_code"] = None if allowed else "permission_denied"
        if allowed and action.on_behalf and conversation_id is not None:
            refusal = on_behalf_eligibility(action=action, link=link, consents=consents, at=at)
            if refusal is not None:
                entry["enabled"] = False
                entry["disabled_reason"] = refusal.message
                entry["disabled_code"] = refusal.reason
        offered.append(entry)
    return offered
