"""Back-office bridge services (writes): linking a customer to a bank user, and the
maker-checker life of an action request.

    pending ──pick──▶ picked ──approve──▶ approved ──claim──▶ executing ──▶ done | failed
       │  ◀─release──    │                                        (second service)
       ├──────┴── reject ──▶ rejected        └── expiry (job) ──▶ expired
       └──────┴── cancel (the maker) ──▶ cancelled

Rules: only a checker (``backoffice_bridge.approve_actions``) picks, approves or rejects;
the maker never does (checked here and by a database constraint) but may cancel their
own undecided request; one checker holds a request at a time (row lock); an approval is
the only way to the back office.  The approval answers at once: after it committed the
call is queued on the process's bounded executor (``backoffice_bridge.executor``), never
run inside a transaction or in the approving request's thread — the executor first moves
approved → executing with a conditional UPDATE so two approvals, two processes or the
scheduler's sweep execute it once, and the sweep takes what no executor did.  The outcome
is recorded by ``action_outcome_record``, posted on the conversation as an internal note
(console event ``backoffice.action_outcome``: chat has no internal notes yet) and, when
the maker chose it, told to the customer in their language on their channel.

Console events (``chat.events.console_event_append``) go to the conversation's operator
stream and the supervisors' stream — Coordinators and Admins, who are the checkers.

Every transition appends an audit entry in its transaction, before its console event
(``backoffice_bridge.audit``); every refused attempt is audited by ``@audited``.  On-behalf
types are gated by consent and the bank user's status (``selectors.on_behalf_eligibility``)
and types that need it wait for the customer's confirmation in the chat
(``backoffice_bridge.confirmation``).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from backoffice_bridge.actions import (
    PERM_APPROVE_ACTIONS,
    PERM_START_ACTIONS,
    STATUS_APPROVED,
    STATUS_AWAITING_CUSTOMER,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_FAILED,
    STATUS_REJECTED,
    ActionType,
    action_type_get,
)
from backoffice_bridge.audit import audit_append, audited
from backoffice_bridge.client import (
    BackofficeError,
    BackofficeNotConfigured,
    BackofficeRefused,
    BackofficeUnavailable,
    assert_no_transaction,
    backoffice_call,
)
from backoffice_bridge.exceptions import (
    ActionDisabled,
    BackofficeRefusedError,
    BackofficeUnavailableError,
    ConsentRequired,
)
from backoffice_bridge.executor import execution_submit
from backoffice_bridge.models import (
    OPEN_STATUSES,
    ActionRequest,
    Consent,
    CustomerLink,
    RequestStatus,
)
from backoffice_bridge.selectors import (
    access_action_request,
    bank_user_dict,
    link_dict,
    live_link,
    on_behalf_eligibility,
    request_dict,
    staff_label,
)
from chat.channels.registry import adapter_for
from chat.events import console_event_append
from chat.models import Conversation, ConversationStatus
from chat.selectors import access_conversation
from chat.services import language_tag, system_message_send
from hub.exceptions import (
    Conflict,
    ErrorCode,
    HubError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)

logger = logging.getLogger(__name__)

SEARCH_FIELDS = (
    "user_name",
    "first_name",
    "last_name",
    "mobile",
    "email",
    "personal_id",
    "core_banking_id",
    "system_user_id",
)
REASON_MAX = 1000
#: What the maker may still cancel: nobody has decided it yet.
CANCELLABLE = (
    RequestStatus.AWAITING_CONFIRMATION,
    RequestStatus.PENDING,
    RequestStatus.PICKED,
)


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _require(actor: AbstractBaseUser, perm: str, message: str) -> None:
    if not actor.has_perm(perm):
        raise PermissionDenied(message)


def _translate(exc: BackofficeError, *, field: str = "") -> Exception:
    """A client failure as the HubError a view renders."""
    if isinstance(exc, BackofficeRefused):
        if exc.status == 404:
            return NotFound(
                "The back office knows no such bank user.", field=field, reason=exc.code
            )
        return BackofficeRefusedError(
            f"The back office refused: {exc.reason}", reason=exc.code, status=exc.status
        )
    if isinstance(exc, BackofficeNotConfigured):
        return BackofficeUnavailableError(reason="backoffice_not_configured")
    return BackofficeUnavailableError(reason="backoffice_unavailable", detail=exc.reason)


def _state(req: ActionRequest) -> dict[str, Any]:
    """What the audit log keeps of a request before and after a transition."""
    return {
        "status": req.status,
        "business_status": req.business_status,
        "checker_id": req.checker_id,
    }


def _audit_request(
    action: str,
    req: ActionRequest,
    *,
    actor: AbstractBaseUser | None,
    before: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> None:
    audit_append(
        action=action,
        actor=actor,
        conversation_id=req.conversation_id,
        on_behalf_of=req.bank_user_id,
        object_type="request",
        object_id=req.pk,
        request_id=req.pk,
        before=before,
        after=_state(req) | (extra or {}),
    )


def _audit_link(action: str, link: CustomerLink, *, actor: AbstractBaseUser, before: Any) -> None:
    audit_append(
        action=action,
        actor=actor,
        conversation_id=link.conversation_id,
        on_behalf_of=link.bank_user_id,
        object_type="link",
        object_id=link.pk,
        before=before,
        after={
            "bank_user_id": link.bank_user_id,
            "status": (link.snapshot or {}).get("status"),
            "unlinked_at": link.unlinked_at,
        },
    )


def _announce(kind: str, *, conversation_id: Any, payload: dict[str, Any]) -> None:
    """One console event on the conversation (last write of the transaction)."""
    operator_id = (
        Conversation.objects.filter(pk=conversation_id)
        .values_list("operator_id", flat=True)
        .first()
    )
    console_event_append(
        kind=kind, payload=payload, conversation_id=conversation_id, operator_id=operator_id
    )


# --- linking -----------------------------------------------------------------------------


def bank_users_search(
    *, actor: AbstractBaseUser, conversation_id: Any, query: str, field: str | None = None
) -> list[dict[str, Any]]:
    """Search the back office for the bank user behind a conversation's customer, in every
    column of seed 000's grid or the one named by ``field``.

    Errors: PermissionDenied (not a maker); NotFound (conversation); ValidationFailed
    (``q`` shorter than 2 or longer than 100 characters, unknown ``field``);
    BackofficeUnavailableError.  Calls the back office: never inside a transaction.
    """
    _require(actor, PERM_START_ACTIONS, "You may not search the bank's users.")
    access_conversation(actor=actor, conversation_id=conversation_id)
    query = (query or "").strip()
    if not 2 <= len(query) <= 100:
        raise ValidationFailed("The search needs 2 to 100 characters.", field="q", reason="length")
    if field is not None and field not in SEARCH_FIELDS:
        raise ValidationFailed(
            f"field must be one of: {', '.join(SEARCH_FIELDS)}.",
            field="field",
            choices=list(SEARCH_FIELDS),
        )
    try:
        users = backoffice_call(lambda c: c.users_search(query=query, field=field))
    except BackofficeError as exc:
        raise _translate(exc, field="q") from None
    return [bank_user_dict(u) for u in users]


@audited("customer.link")
def customer_link(
    *, actor: AbstractBaseUser, conversation_id: Any, bank_user_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """Link the conversation's customer to a bank user (read from the back office first,
    outside the transaction) and tell every console on the conversation
    (``backoffice.customer_linked``).  Linking the same user again returns the link.

    Errors: PermissionDenied; NotFound (conversation; bank user: ``field`` bank_user_id);
    Conflict ``reason=already_linked`` (another bank user: unlink first);
    BackofficeUnavailableError.
    """
    _require(actor, PERM_START_ACTIONS, "You may not link customers to bank users.")
    bank_user_id = (bank_user_id or "").strip()
    if not bank_user_id or len(bank_user_id) > 64:
        raise ValidationFailed(
            "bank_user_id is required (64 characters at most).", field="bank_user_id"
        )
    access_conversation(actor=actor, conversation_id=conversation_id)
    try:
        user = backoffice_call(lambda c: c.user_get(user_id=bank_user_id))
    except BackofficeError as exc:
        raise _translate(exc, field="bank_user_id") from None
    with transaction.atomic():
        conversation = access_conversation(actor=actor, conversation_id=conversation_id, lock=True)
        existing = live_link(customer_id=conversation.customer_id, lock=True)
        if existing is not None:
            if existing.bank_user_id == bank_user_id:
                return link_dict(existing)
            raise Conflict(
                "The customer is linked to another bank user; unlink first.",
                reason="already_linked",
                bank_user_id=existing.bank_user_id,
            )
        try:
            with transaction.atomic():
                link = CustomerLink.objects.create(
                    customer_id=conversation.customer_id,
                    bank_user_id=bank_user_id,
                    snapshot=bank_user_dict(user),
                    conversation=conversation,
                    linked_by=actor,
                    linked_at=_now(now),
                    refreshed_at=_now(now),
                )
        except IntegrityError:
            raise Conflict(
                "Someone linked this customer at the same moment; reload.", reason="already_linked"
            ) from None
        _audit_link("customer.link", link, actor=actor, before=None)
        payload = {"link": link_dict(link)}
        _announce("backoffice.customer_linked", conversation_id=conversation.pk, payload=payload)
    return payload["link"]


@audited("customer.unlink")
def customer_unlink(
    *, actor: AbstractBaseUser, conversation_id: Any, now: datetime | None = None
) -> dict[str, Any]:
    """End the customer's live link (kept as history); ``backoffice.customer_unlinked``.

    Errors: PermissionDenied; NotFound (conversation, or no live link).
    """
    _require(actor, PERM_START_ACTIONS, "You may not unlink customers from bank users.")
    with transaction.atomic():
        conversation = access_conversation(actor=actor, conversation_id=conversation_id, lock=True)
        link = live_link(customer_id=conversation.customer_id, lock=True)
        if link is None:
            raise NotFound("The customer is not linked to a bank user.", reason="not_linked")
        link.unlinked_at = _now(now)
        link.unlinked_by = actor
        link.save(update_fields=["unlinked_at", "unlinked_by"])
        _audit_link("customer.unlink", link, actor=actor, before={"unlinked_at": None})
        payload = {"link": link_dict(link)}
        _announce("backoffice.customer_unlinked", conversation_id=conversation.pk, payload=payload)
    return payload["link"]


def _snapshot_store(
    link_id: int, user: dict[str, Any], *, at: datetime, actor: AbstractBaseUser | None
) -> CustomerLink | None:
    """Store a fresh read of the bank user on the live link (inside a transaction); an
    audit entry when the status changed.  None when the link ended meanwhile."""
    link = (
        CustomerLink.objects.select_for_update(of=("self",))
        .select_related("linked_by", "unlinked_by")
        .filter(pk=link_id, unlinked_at__isnull=True)
        .first()
    )
    if link is None:
        return None
    before = (link.snapshot or {}).get("status")
    link.snapshot = bank_user_dict(user)
    link.refreshed_at = at
    link.save(update_fields=["snapshot", "refreshed_at"])
    if before != link.snapshot.get("status"):
        audit_append(
            action="customer.status_refresh",
            actor=actor,
            conversation_id=link.conversation_id,
            on_behalf_of=link.bank_user_id,
            object_type="link",
            object_id=link.pk,
            before={"status": before},
            after={"status": link.snapshot.get("status")},
        )
    return link


def _bank_user_read(bank_user_id: str) -> dict[str, Any]:
    try:
        return backoffice_call(lambda c: c.user_get(user_id=bank_user_id))
    except BackofficeError as exc:
        raise _translate(exc, field="bank_user_id") from None


@audited("customer.status_refresh")
def customer_link_refresh(
    *, actor: AbstractBaseUser, conversation_id: Any, now: datetime | None = None
) -> dict[str, Any]:
    """Read the linked bank user again from the back office (the status the eligibility
    gate uses is the one read last: at link time, here, before an on-behalf action starts
    and from an executed action's answer).  ``backoffice.link_refreshed``.

    Errors: PermissionDenied (not a maker); NotFound (conversation, no live link);
    BackofficeUnavailableError.
    """
    _require(actor, PERM_START_ACTIONS, "You may not read the bank's users.")
    conversation = access_conversation(actor=actor, conversation_id=conversation_id)
    link = live_link(customer_id=conversation.customer_id)
    if link is None:
        raise NotFound("The customer is not linked to a bank user.", reason="not_linked")
    user = _bank_user_read(link.bank_user_id)
    with transaction.atomic():
        fresh = _snapshot_store(link.pk, user, at=_now(now), actor=actor)
        if fresh is None:
            raise NotFound("The customer is not linked to a bank user.", reason="not_linked")
        payload = {"link": link_dict(fresh)}
        _announce("backoffice.link_refreshed", conversation_id=conversation.pk, payload=payload)
    return payload["link"]


# --- maker --------------------------------------------------------------------------------


def _refuse_conflict(req: ActionRequest) -> Conflict:
    return Conflict(
        "A request for this bank user is already open; it must be decided first.",
        reason="conflicting_request",
        request_id=req.pk,
        action_type=req.action_type,
        business_status=req.business_status,
    )


def _refuse_ineligible(
    action: type[ActionType], link: CustomerLink | None, *, at: datetime
) -> None:
    """Consent and status gate of on-behalf types (seed 001): the exact reason or nothing."""
    consents = []
    if link is not None:
        consents = list(
            Consent.objects.filter(customer_id=link.customer_id, bank_user_id=link.bank_user_id)
            .order_by("-recorded_at", "-id")
            .select_for_update(of=("self",))  # a revoke racing the start waits for it
        )
    refusal = on_behalf_eligibility(action=action, link=link, consents=consents, at=at)
    if refusal is None:
        return
    data = {"reason": refusal.reason, "action_type": action.name}
    if refusal.code == "consent_required":
        raise ConsentRequired(refusal.message, consent=refusal.consent, **data)
    raise ActionDisabled(refusal.message, **data)


@audited("request.create")
def action_request_create(
    *,
    actor: AbstractBaseUser,
    conversation_id: Any,
    action_type: str,
    params: Any,
    notify_customer: bool | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The maker's request, saved at once with its business status ("To Be Inactivated")
    and announced to the checkers (``backoffice.request_created``).  A type without a
    checker is approved by the same step and executed after commit.  A type that needs
    the customer's confirmation waits ``awaiting_confirmation`` and the customer gets a
    one-time code in the chat (``backoffice_bridge.confirmation``).

    ``notify_customer``: tell the customer in the chat when it is done (the type's
    message, in their language); None takes the type's default.  Kept in the request's
    ``outcome`` until then (``{"notify_customer": …}``).

    On-behalf types re-read the bank user's status from the back office first, then need
    an active account and a valid consent covering the type: ActionDisabled
    (``action_disabled``: "Disabled as the customer is new" / locked / suspended) or
    ConsentRequired (``consent_required``: "… has not consented"; ``data.consent`` none,
    expired, revoked or out_of_scope).

    Errors: ValidationFailed (``action_type`` unknown; ``params.<name>`` missing, wrong
    type, negative, above the bank's maximum…); PermissionDenied (the type's permission);
    NotFound (conversation); Conflict ``reason`` customer_not_linked or
    conflicting_request; BackofficeUnavailableError (an on-behalf status read).  Every
    refusal is audited.
    """
    action = action_type_get(action_type)
    _require(actor, action.permission, f"You may not start '{action.name}'.")
    cleaned = action.clean(params)
    notify = _notify_choice(action, notify_customer)
    at = _now(now)
    if action.on_behalf:
        # The status at the moment of acting, not the cached one; stored in its own
        # transaction so the console sees it even when the start is then refused.
        conversation = access_conversation(actor=actor, conversation_id=conversation_id)
        current = live_link(customer_id=conversation.customer_id)
        if current is not None:
            user = _bank_user_read(current.bank_user_id)
            with transaction.atomic():
                _snapshot_store(current.pk, user, at=at, actor=actor)
    with transaction.atomic():
        conversation = access_conversation(actor=actor, conversation_id=conversation_id, lock=True)
        link = live_link(customer_id=conversation.customer_id)
        if link is None:
            raise Conflict(
                "Link the customer to a bank user before starting an action.",
                reason="customer_not_linked",
            )
        if action.on_behalf:
            _refuse_ineligible(action, link, at=at)
        open_request = (
            ActionRequest.objects.select_for_update()
            .filter(
                bank_user_id=link.bank_user_id,
                conflict_group=action.group(),
                status__in=OPEN_STATUSES,
            )
            .first()
        )
        if open_request is not None:
            raise _refuse_conflict(open_request)
        confirm = action.needs_confirmation()
        auto = not action.needs_checker and not confirm
        if confirm:
            status, business = RequestStatus.AWAITING_CONFIRMATION, STATUS_AWAITING_CUSTOMER
        elif auto:
            status, business = RequestStatus.APPROVED, STATUS_APPROVED
        else:
            status, business = RequestStatus.PENDING, action.pending_status
        req = ActionRequest(
            action_type=action.name,
            params=cleaned,
            conversation=conversation,
            customer_id=conversation.customer_id,
            bank_user_id=link.bank_user_id,
            conflict_group=action.group(),
            status=status,
            business_status=business,
            maker=actor,
            created_at=at,
            expires_at=at + timedelta(minutes=settings.BACKOFFICE_REQUEST_TTL_MINUTES),
            decided_at=at if auto else None,
            idempotency_key=uuid.uuid4().hex,
            outcome={"notify_customer": notify},
        )
        try:
            with transaction.atomic():
                req.save()
        except IntegrityError:
            winner = ActionRequest.objects.filter(
                bank_user_id=link.bank_user_id,
                conflict_group=action.group(),
                status__in=OPEN_STATUSES,
            ).first()
            if winner is None:
                raise
            raise _refuse_conflict(winner) from None
        _audit_request(
            "request.create",
            req,
            actor=actor,
            before=None,
            extra={"action_type": action.name, "params": cleaned, "notify_customer": notify},
        )
        if confirm:
            from backoffice_bridge.confirmation import confirmation_prompt_send

            confirmation_prompt_send(req=req, conversation=conversation, at=at)
        payload = {"request": request_dict(req)}
        _announce("backoffice.request_created", conversation_id=conversation.pk, payload=payload)
        if auto:
            _execute_on_commit(req.pk)
    return payload["request"]


def _notify_choice(action: type[ActionType], choice: Any) -> bool:
    if choice is None:
        return action.notifies_by_default()
    if not isinstance(choice, bool):
        raise ValidationFailed(
            "notify_customer must be true or false.",
            code=ErrorCode.WRONG_TYPE,
            field="notify_customer",
            reason="wrong_type",
        )
    if choice and not action.customer_messages:
        raise ValidationFailed(
            f"'{action.name}' has no message for the customer.",
            field="notify_customer",
            reason="no_customer_message",
        )
    return choice


# --- checker ------------------------------------------------------------------------------


def _check_decidable(req: ActionRequest, *, actor: AbstractBaseUser, at: datetime) -> None:
    """The refusals every checker step shares, most important first."""
    if req.maker_id == actor.pk:
        raise PermissionDenied(
            "Nobody approves, rejects or picks up their own request.",
            reason="own_request",
            request_id=req.pk,
        )
    if req.status == RequestStatus.EXPIRED or (
        req.status in (RequestStatus.PENDING, RequestStatus.PICKED) and req.expires_at <= at
    ):
        raise Conflict(
            "The request expired before it was decided.",
            reason="expired",
            request_id=req.pk,
            expires_at=req.expires_at.isoformat(),
        )
    if req.status == RequestStatus.AWAITING_CONFIRMATION:
        raise Conflict(
            "The customer has not confirmed this request in the chat yet.",
            reason="awaiting_confirmation",
            request_id=req.pk,
        )
    if req.status not in (RequestStatus.PENDING, RequestStatus.PICKED):
        raise Conflict(
            "The request was already decided.",
            reason="already_decided",
            request_id=req.pk,
            status=req.status,
            checker=staff_label(req.checker),
        )
    if req.status == RequestStatus.PICKED and req.checker_id != actor.pk:
        raise Conflict(
            "Another checker holds this request.",
            reason="picked_by_other",
            request_id=req.pk,
            picked_by=staff_label(req.checker),
            picked_at=req.picked_at.isoformat() if req.picked_at else None,
        )


def _checker_step(actor: AbstractBaseUser, request_id: Any) -> ActionRequest:
    _require(actor, PERM_APPROVE_ACTIONS, "Only checkers decide back-office requests.")
    return access_action_request(actor=actor, request_id=request_id, lock=True)


@audited("request.pick")
def action_request_pick(
    *, actor: AbstractBaseUser, request_id: Any, now: datetime | None = None
) -> dict[str, Any]:
    """A checker takes the request (seed 000's "Pick Up"); others then see who holds it.
    Picking what one already holds returns it.  ``backoffice.request_picked``.

    Errors: PermissionDenied (not a checker; ``reason=own_request``); NotFound; Conflict
    ``reason`` expired, already_decided or picked_by_other (with ``picked_by``).
    """
    at = _now(now)
    with transaction.atomic():
        req = _checker_step(actor, request_id)
        _check_decidable(req, actor=actor, at=at)
        if req.status == RequestStatus.PICKED:
            return request_dict(req)
        before = _state(req)
        req.status = RequestStatus.PICKED
        req.checker = actor
        req.picked_at = at
        req.save(update_fields=["status", "checker", "picked_at"])
        _audit_request("request.pick", req, actor=actor, before=before)
        payload = {"request": request_dict(req)}
        _announce("backoffice.request_picked", conversation_id=req.conversation_id, payload=payload)
    return payload["request"]


@audited("request.release")
def action_request_release(
    *, actor: AbstractBaseUser, request_id: Any, now: datetime | None = None
) -> dict[str, Any]:
    """The holder puts the request back in the list.  ``backoffice.request_released``.

    Errors: those of ``action_request_pick``; Conflict ``reason=not_picked``.
    """
    at = _now(now)
    with transaction.atomic():
        req = _checker_step(actor, request_id)
        _check_decidable(req, actor=actor, at=at)
        if req.status != RequestStatus.PICKED:
            raise Conflict("Nobody holds this request.", reason="not_picked", request_id=req.pk)
        before = _state(req)
        req.status = RequestStatus.PENDING
        req.checker = None
        req.picked_at = None
        req.save(update_fields=["status", "checker", "picked_at"])
        _audit_request("request.release", req, actor=actor, before=before)
        payload = {"request": request_dict(req)}
        _announce(
            "backoffice.request_released", conversation_id=req.conversation_id, payload=payload
        )
    return payload["request"]


@audited("request.approve")
def action_request_approve(
    *, actor: AbstractBaseUser, request_id: Any, now: datetime | None = None
) -> dict[str, Any]:
    """Approve (picking it up if nobody holds it).  Commits ``approved`` with
    ``backoffice.request_approved`` and returns it at once: the back-office call is queued
    on the process's executor after that commit (or taken by the scheduler's sweep) and
    its outcome arrives as ``backoffice.action_outcome``.

    Errors: those of ``action_request_pick``.  Two checkers approving at once: the row lock
    lets one in; the other gets Conflict ``already_decided``.
    """
    at = _now(now)
    with transaction.atomic():
        req = _checker_step(actor, request_id)
        _check_decidable(req, actor=actor, at=at)
        before = _state(req)
        req.status = RequestStatus.APPROVED
        req.checker = actor
        req.picked_at = req.picked_at or at
        req.decided_at = at
        req.business_status = STATUS_APPROVED
        req.save(update_fields=["status", "checker", "picked_at", "decided_at", "business_status"])
        _audit_request("request.approve", req, actor=actor, before=before)
        payload = {"request": request_dict(req)}
        _announce(
            "backoffice.request_approved", conversation_id=req.conversation_id, payload=payload
        )
        _execute_on_commit(req.pk)
    return payload["request"]


@audited("request.reject")
def action_request_reject(
    *, actor: AbstractBaseUser, request_id: Any, reason: str, now: datetime | None = None
) -> dict[str, Any]:
    """Reject with a reason; nothing reaches the back office.  ``backoffice.request_rejected``.

    Errors: ValidationFailed (``reason`` empty or too long); those of ``action_request_pick``.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A rejection needs a reason.", field="reason", reason="missing")
    if len(reason) > REASON_MAX:
        raise ValidationFailed(
            f"The reason is longer than {REASON_MAX} characters.", field="reason", reason="too_long"
        )
    at = _now(now)
    with transaction.atomic():
        req = _checker_step(actor, request_id)
        _check_decidable(req, actor=actor, at=at)
        before = _state(req)
        req.status = RequestStatus.REJECTED
        req.checker = actor
        req.picked_at = req.picked_at or at
        req.decided_at = at
        req.reason = reason
        req.business_status = STATUS_REJECTED
        req.save(
            update_fields=[
                "status",
                "checker",
                "picked_at",
                "decided_at",
                "reason",
                "business_status",
            ]
        )
        _audit_request("request.reject", req, actor=actor, before=before, extra={"reason": reason})
        payload = {"request": request_dict(req)}
        _announce(
            "backoffice.request_rejected", conversation_id=req.conversation_id, payload=payload
        )
    return payload["request"]


@audited("request.cancel")
def action_request_cancel(
    *, actor: AbstractBaseUser, request_id: Any, reason: str = "", now: datetime | None = None
) -> dict[str, Any]:
    """The maker withdraws their own request before anyone decided it (``pending``,
    ``picked`` or ``awaiting_confirmation``): ``cancelled`` ("Cancelled"), nothing reaches
    the back office, a customer who was asked for their code is told it was withdrawn.
    ``backoffice.request_cancelled``.

    Errors: NotFound; PermissionDenied ``reason=not_maker`` (anyone else: a checker
    rejects instead); ValidationFailed (``reason`` too long); Conflict ``reason`` expired,
    or already_decided (approved, executing, done, failed, rejected, cancelled; with
    ``status``) — the row lock orders a cancel and an approval racing: one wins.
    """
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise ValidationFailed(
            f"The reason is longer than {REASON_MAX} characters.", field="reason", reason="too_long"
        )
    at = _now(now)
    with transaction.atomic():
        seen = access_action_request(actor=actor, request_id=request_id)
        # The conversation before the request: the order a new request locks in (the
        # customer may be told on it).
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("customer")
            .get(pk=seen.conversation_id)
        )
        req = access_action_request(actor=actor, request_id=seen.pk, lock=True)
        if req.maker_id != actor.pk:
            raise PermissionDenied(
                "Only the maker of a request may cancel it; a checker rejects it.",
                reason="not_maker",
                request_id=req.pk,
                maker=staff_label(req.maker),
            )
        if req.status == RequestStatus.EXPIRED or (
            req.status in (RequestStatus.PENDING, RequestStatus.PICKED) and req.expires_at <= at
        ):
            raise Conflict(
                "The request expired before it was cancelled.",
                reason="expired",
                request_id=req.pk,
                expires_at=req.expires_at.isoformat(),
            )
        if req.status not in CANCELLABLE:
            raise Conflict(
                f"The request is already {req.get_status_display().lower()}; it can no longer "
                "be cancelled.",
                reason="already_decided",
                request_id=req.pk,
                status=req.status,
                business_status=req.business_status,
                checker=staff_label(req.checker),
            )
        before = _state(req)
        asked_customer = req.status == RequestStatus.AWAITING_CONFIRMATION
        req.status = RequestStatus.CANCELLED
        req.business_status = STATUS_CANCELLED
        req.decided_at = at
        req.reason = reason
        req.save(update_fields=["status", "business_status", "decided_at", "reason"])
        _audit_request("request.cancel", req, actor=actor, before=before, extra={"reason": reason})
        if asked_customer:
            _customer_tell(
                conversation,
                "Our agent withdrew the request, so nothing was done. "
                "You do not need to answer the code.",
                at=at,
            )
        payload = {"request": request_dict(req)}
        _announce(
            "backoffice.request_cancelled", conversation_id=req.conversation_id, payload=payload
        )
    return payload["request"]


def action_requests_expire(*, now: datetime | None = None, batch: int = 200) -> int:
    """Scheduler job: pending and picked requests past ``expires_at``, and requests whose
    customer did not confirm before ``confirmation_expires_at``, become expired
    (``backoffice.request_expired``, audited as ``request.expire``), each in its own short
    transaction that skips rows a checker holds locked right now (the next run takes them)."""
    at = _now(now)
    undecided = Q(status__in=[RequestStatus.PENDING, RequestStatus.PICKED], expires_at__lte=at) | Q(
        status=RequestStatus.AWAITING_CONFIRMATION, confirmation_expires_at__lte=at
    )
    due = list(ActionRequest.objects.filter(undecided).values_list("pk", flat=True)[:batch])
    expired = 0
    for pk in due:
        with transaction.atomic():
            req = (
                ActionRequest.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("maker", "checker")
                .filter(undecided, pk=pk)
                .first()
            )
            if req is None:
                continue
            before = _state(req)
            unconfirmed = req.status == RequestStatus.AWAITING_CONFIRMATION
            req.status = RequestStatus.EXPIRED
            req.business_status = STATUS_EXPIRED
            req.decided_at = at
            if unconfirmed:
                req.reason = "The customer did not confirm in time."
            req.save(update_fields=["status", "business_status", "decided_at", "reason"])
            _audit_request(
                "request.expire",
                req,
                actor=None,
                before=before,
                extra={"unconfirmed": unconfirmed},
            )
            _announce(
                "backoffice.request_expired",
                conversation_id=req.conversation_id,
                payload={"request": request_dict(req)},
            )
            expired += 1
    return expired


# --- execution (outside any transaction) --------------------------------------------------


def _execute_on_commit(request_id: int) -> None:
    # Queued on the process's executor once the approval committed (the approving
    # request answers at once); robust: a failure to queue is logged and left to the
    # scheduler's sweep, never raised into the caller whose approval already committed.
    transaction.on_commit(lambda: execution_submit(request_id), robust=True)


def _claim(request_id: int, *, at: datetime) -> bool:
    """approved → executing, or a stale executing (its executor died) again; one winner."""
    stale_before = at - timedelta(seconds=settings.BACKOFFICE_EXECUTE_LEASE_SECONDS)
    claimable = Q(status=RequestStatus.APPROVED) | Q(
        status=RequestStatus.EXECUTING, executing_since__lt=stale_before
    )
    return bool(
        ActionRequest.objects.filter(claimable, pk=request_id).update(
            status=RequestStatus.EXECUTING, executing_since=at, attempts=F("attempts") + 1
        )
    )


def action_request_execute(
    *, request_id: int, now: datetime | None = None
) -> dict[str, Any] | None:
    """Perform an approved request at the back office, once: claim it (conditional
    UPDATE), call outside any transaction with the request's idempotency key, record the
    outcome.  None when someone else has it.  A back office that stays unavailable
    leaves it approved for the sweep until ``BACKOFFICE_EXECUTE_MAX_ATTEMPTS``."""
    assert_no_transaction()
    at = _now(now)
    with transaction.atomic():
        if not _claim(request_id, at=at):
            return None
        req = ActionRequest.objects.get(pk=request_id)
        _audit_request(
            "request.execute",
            req,
            actor=None,
            before={"status": RequestStatus.APPROVED},
            extra={"attempt": req.attempts},
        )
    action = action_type_get(req.action_type)
    try:
        result = backoffice_call(
            lambda c: action.execute(
                c,
                bank_user_id=req.bank_user_id,
                params=req.params,
                idempotency_key=req.idempotency_key,
            )
        )
    except BackofficeRefused as exc:
        failure = {"reason": exc.reason, "code": exc.code, "status": exc.status}
        return action_outcome_record(request_id=request_id, result=None, failure=failure)
    except (BackofficeUnavailable, BackofficeNotConfigured) as exc:
        if req.attempts < settings.BACKOFFICE_EXECUTE_MAX_ATTEMPTS:
            with transaction.atomic():
                ActionRequest.objects.filter(pk=request_id, status=RequestStatus.EXECUTING).update(
                    status=RequestStatus.APPROVED, executing_since=None
                )
                req.status = RequestStatus.APPROVED
                _audit_request(
                    "request.execute_deferred",
                    req,
                    actor=None,
                    before={"status": RequestStatus.EXECUTING},
                    extra={"attempt": req.attempts, "error": exc.reason},
                )
            logger.warning("request %s: back office unavailable (%s); retried later", req.pk, exc)
            return None
        code = (
            "backoffice_not_configured"
            if isinstance(exc, BackofficeNotConfigured)
            else str(ErrorCode.BACKOFFICE_UNAVAILABLE)
        )
        failure = {"reason": exc.reason, "code": code, "status": None}
        return action_outcome_record(request_id=request_id, result=None, failure=failure)
    return action_outcome_record(request_id=request_id, result=result, failure=None)


def action_outcome_record(
    *,
    request_id: int,
    result: dict[str, Any] | None,
    failure: dict[str, Any] | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The second service: done (with the back office's answer) or failed (with its
    reason), the customer's message when the maker chose it (done only; in the
    conversation's language, on its channel, unless the conversation is closed or its
    reply window is: then recorded as not sent), and the internal note on the
    conversation (``backoffice.action_outcome``), all in one transaction.  Recording
    twice keeps the first."""
    at = _now(now)
    conversation_id = (
        ActionRequest.objects.filter(pk=request_id).values_list("conversation_id", flat=True).get()
    )
    with transaction.atomic():
        # The conversation first (the customer's message updates it), then the request:
        # the order action_request_create locks in.
        conversation = Conversation.objects.select_for_update(of=("self",)).get(pk=conversation_id)
        req = (
            ActionRequest.objects.select_for_update(of=("self",))
            .select_related("maker", "checker")
            .get(pk=request_id)
        )
        if req.status != RequestStatus.EXECUTING:
            return request_dict(req)
        before = _state(req)
        action = action_type_get(req.action_type)
        notify = bool((req.outcome or {}).get("notify_customer"))
        if failure is None:
            req.status = RequestStatus.DONE
            req.business_status = action.done_status
            req.outcome = {"result": result or {}}
            duration = action.duration()
            if duration is not None:
                req.revert_due_at = at + duration
            note = action.note(
                bank_user_id=req.bank_user_id, params=req.params, result=result or {}
            )
        else:
            req.status = RequestStatus.FAILED
            req.business_status = STATUS_FAILED
            req.outcome = dict(failure)
            note = f"{action.label} failed for bank user {req.bank_user_id}: {failure['reason']}"
        req.outcome["notify_customer"] = notify
        told: dict[str, Any] | None = None
        if notify and failure is None:
            told = _outcome_tell(action, req, conversation, result or {}, at=at)
            req.outcome["customer_message"] = told
            note = f"{note} {_told_note(told)}"
        req.finished_at = at
        req.save(
            update_fields=["status", "business_status", "outcome", "finished_at", "revert_due_at"]
        )
        _audit_request(
            "request.outcome", req, actor=None, before=before, extra={"outcome": req.outcome}
        )
        _link_status_from_answer(req, result, at=at)
        if failure is None and hasattr(action, "on_done"):  # e.g. a case: the hub's record
            action.on_done(req=req, result=result or {}, at=at)
        payload = {
            "request": request_dict(req),
            "note": note,
            "visibility": "internal",
            "customer_message": told,
        }
        _announce("backoffice.action_outcome", conversation_id=req.conversation_id, payload=payload)
    return payload["request"]


def _customer_tell(conversation: Conversation, text: str, *, at: datetime) -> dict[str, Any]:
    """Send the customer a hub message on the conversation's channel (inside the caller's
    transaction, as ``chat.services.system_message_send`` does for every hub message),
    unless it cannot reach them: the conversation is closed, the channel is not
    configured, or its reply window (WhatsApp: 24 h after the customer's last message)
    is closed — free text may not go then, only a template.  ``{sent, message_id}`` or
    ``{sent: False, reason}``."""
    if conversation.status == ConversationStatus.CLOSED:
        return {"sent": False, "reason": "conversation_closed"}
    adapter = adapter_for(conversation.channel)
    if not adapter.enabled():
        return {"sent": False, "reason": "channel_not_configured", "channel": adapter.label}
    closes_at = adapter.reply_window_closes_at(
        last_customer_message_at=conversation.last_customer_message_at,
        opened_at=conversation.created_at,
    )
    if closes_at is not None and at >= closes_at:
        return {
            "sent": False,
            "reason": "reply_window_closed",
            "channel": adapter.label,
            "closed_at": closes_at.isoformat(),
        }
    try:
        with transaction.atomic():  # a savepoint: a failed send never loses the outcome
            message = system_message_send(conversation=conversation, text=text)
    except (HubError, DatabaseError) as exc:
        logger.warning("customer message on %s not stored: %s", conversation.pk, exc)
        return {"sent": False, "reason": "send_failed"}
    return {"sent": True, "message_id": message["id"]}


def _outcome_tell(
    action: type[ActionType],
    req: ActionRequest,
    conversation: Conversation,
    result: dict[str, Any],
    *,
    at: datetime,
) -> dict[str, Any]:
    """The type's customer message for a done request, in the conversation's language
    (English when the type has no translation for it), sent when it can reach them."""
    language = language_tag(conversation.language) or language_tag(settings.LANGUAGE_CODE)
    rendered = action.customer_message(language=language, params=req.params, result=result, at=at)
    if rendered is None:
        return {"sent": False, "reason": "no_customer_message"}
    used, text = rendered
    return {"language": used, "text": text} | _customer_tell(conversation, text, at=at)


_NOT_TOLD = {
    "conversation_closed": "the conversation is closed",
    "no_customer_message": "this action has no message for the customer",
    "send_failed": "the message could not be stored",
}


def _told_note(told: dict[str, Any]) -> str:
    """The internal note's sentence on the customer's message."""
    if told.get("sent"):
        return f"The customer was told in the chat ({told.get('language')})."
    reason = told.get("reason", "")
    if reason == "reply_window_closed":
        why = (
            f"the {told.get('channel')} 24-hour reply window is closed (only a template "
            "can reach them)"
        )
    elif reason == "channel_not_configured":
        why = f"the {told.get('channel')} channel is not configured"
    else:
        why = _NOT_TOLD.get(reason, reason)
    return f"The customer was NOT told: {why}."


def _link_status_from_answer(
    req: ActionRequest, result: dict[str, Any] | None, *, at: datetime
) -> None:
    """An answer that carries the bank user (block, unblock…) refreshes the live link's
    snapshot, so the eligibility gate sees the status the action just set."""
    user = (result or {}).get("user")
    if not isinstance(user, dict) or user.get("id") != req.bank_user_id:
        return
    link = live_link(customer_id=req.customer_id)
    if link is not None and link.bank_user_id == req.bank_user_id:
        _snapshot_store(link.pk, user, at=at, actor=None)


def _revert(action: type[ActionType], req: ActionRequest) -> dict[str, Any]:
    return backoffice_call(
        lambda c: action.revert(
            c, bank_user_id=req.bank_user_id, idempotency_key=f"{req.idempotency_key}:revert"
        )
    )


def temporary_actions_revert(*, now: datetime | None = None, batch: int = 100) -> dict[str, int]:
    """Scheduler job: undo temporary actions (limits) whose time is up, at the back office
    (idempotency key ``<key>:revert``), record it on the request and post it on the
    conversation (``backoffice.action_reverted``).  Each is claimed for a lease first, so
    several schedulers revert it once; an unavailable back office is retried next run."""
    at = _now(now)
    counts = {"reverted": 0, "failed": 0, "retry": 0}
    due = list(
        ActionRequest.objects.filter(
            status=RequestStatus.DONE, revert_due_at__lte=at, reverted_at__isnull=True
        )
        .filter(Q(revert_claimed_until__isnull=True) | Q(revert_claimed_until__lt=at))
        .values_list("pk", flat=True)[:batch]
    )
    if due:  # only work reaches the back office: an idle run is fine anywhere
        assert_no_transaction()
    lease = timedelta(seconds=settings.BACKOFFICE_EXECUTE_LEASE_SECONDS)
    for pk in due:
        claimed = (
            ActionRequest.objects.filter(pk=pk, reverted_at__isnull=True, revert_due_at__lte=at)
            .filter(Q(revert_claimed_until__isnull=True) | Q(revert_claimed_until__lt=at))
            .update(revert_claimed_until=at + lease)
        )
        if not claimed:
            continue
        req = ActionRequest.objects.get(pk=pk)
        action = action_type_get(req.action_type)
        try:
            result: dict[str, Any] | None = _revert(action, req)
            failure = None
        except BackofficeRefused as exc:
            result, failure = None, {"reason": exc.reason, "code": exc.code, "status": exc.status}
        except (BackofficeUnavailable, BackofficeNotConfigured) as exc:
            logger.warning("revert of request %s: %s; retried next run", pk, exc)
            counts["retry"] += 1
            continue
        action_revert_record(request_id=pk, result=result, failure=failure, now=at)
        counts["failed" if failure else "reverted"] += 1
    return counts


def action_revert_record(
    *,
    request_id: int,
    result: dict[str, Any] | None,
    failure: dict[str, Any] | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record a revert (or its refusal, which stops automatic retries) and post it."""
    at = _now(now)
    with transaction.atomic():
        req = (
            ActionRequest.objects.select_for_update(of=("self",))
            .select_related("maker", "checker")
            .get(pk=request_id)
        )
        if req.reverted_at is not None:
            return request_dict(req)
        before = _state(req)
        action = action_type_get(req.action_type)
        if failure is None:
            req.reverted_at = at
            req.revert_outcome = {"result": result or {}}
            req.business_status = action.reverted_status or req.business_status
            note = f"{action.label} for bank user {req.bank_user_id} reverted by the hub."
        else:
            req.revert_outcome = failure
            req.revert_due_at = None  # a refusal is a decision: staff must look at it
            note = (
                f"Reverting {action.label.lower()} for bank user {req.bank_user_id} failed: "
                f"{failure['reason']}"
            )
        req.revert_claimed_until = None
        req.save(
            update_fields=[
                "reverted_at",
                "revert_outcome",
                "business_status",
                "revert_due_at",
                "revert_claimed_until",
            ]
        )
        _audit_request(
            "request.revert",
            req,
            actor=None,
            before=before,
            extra={"ok": failure is None, "revert_outcome": req.revert_outcome},
        )
        payload = {
            "request": request_dict(req),
            "note": note,
            "visibility": "internal",
            "ok": failure is None,
        }
        _announce(
            "backoffice.action_reverted", conversation_id=req.conversation_id, payload=payload
        )
    return payload["request"]


def backoffice_tick(*, now: datetime | None = None) -> dict[str, Any]:
    """The scheduler job ``backoffice_bridge.tick``: expire, execute what an approval's
    process did not (a crash after commit, an unavailable back office), revert."""
    at = _now(now)
    report: dict[str, Any] = {}
    expired = action_requests_expire(now=at)
    if expired:
        report["expired"] = expired
    stale_before = at - timedelta(seconds=settings.BACKOFFICE_EXECUTE_LEASE_SECONDS)
    waiting = list(
        ActionRequest.objects.filter(
            Q(status=RequestStatus.APPROVED)
            | Q(status=RequestStatus.EXECUTING, executing_since__lt=stale_before)
        ).values_list("pk", flat=True)[:100]
    )
    executed = 0
    for pk in waiting:
        if action_request_execute(request_id=pk, now=at) is not None:
            executed += 1
    if executed:
        report["executed"] = executed
    reverted = temporary_actions_revert(now=at)
    if any(reverted.values()):
        report["reverts"] = reverted
    return report
