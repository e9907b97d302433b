"""The customer's confirmation in the chat (domain services): sensitive action types
(``ActionType.needs_confirmation``; configurable per type with the setting
``BACKOFFICE_CONFIRM_ACTION_TYPES``) wait ``awaiting_confirmation`` until the customer
answers a one-time code the hub sends them on their channel.

- ``confirmation_prompt_send`` (inside ``action_request_create``'s transaction): a random
  six-digit code, stored as a SHA-256 only, valid ``BACKOFFICE_CONFIRM_MINUTES`` (10), sent
  with ``chat.services.system_message_send`` — on WhatsApp it goes through the outbox.
- ``inbound_confirmation_handle`` (registered in ``chat.hooks``): an inbound message that
  holds six digits is looked at after its commit, in its own transaction
  (``customer_confirmation_answer``); other messages cost nothing.
- The answer: the code (alone, or after YES/SI/OK) confirms: the request goes on to the
  checker (``pending``) or, without one, is approved and executed; ``NO <code>`` declines
  (rejected).  A wrong code counts; ``BACKOFFICE_CONFIRM_MAX_ATTEMPTS`` (3) wrong answers
  reject it.  A code past its time expires the request.  Each outcome is audited (wrong
  and late codes as refused attempts), announced and acknowledged to the customer.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backoffice_bridge.actions import (
    STATUS_APPROVED,
    STATUS_EXPIRED,
    STATUS_REJECTED,
    action_type_get,
)
from backoffice_bridge.audit import audit_append
from backoffice_bridge.models import ActionRequest, RequestStatus
from backoffice_bridge.selectors import request_dict

if TYPE_CHECKING:
    from chat.models import Conversation, Message

logger = logging.getLogger(__name__)

_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
_DECLINE = re.compile(r"^\W*(no|non|nein|não|nao)\b", re.IGNORECASE)


def confirmation_minutes() -> int:
    return int(getattr(settings, "BACKOFFICE_CONFIRM_MINUTES", 10))


def confirmation_max_attempts() -> int:
    return int(getattr(settings, "BACKOFFICE_CONFIRM_MAX_ATTEMPTS", 3))


def _code_hash(req: ActionRequest, code: str) -> str:
    # Salted with the request's own random key: a code is only worth anything for its request.
    return hashlib.sha256(f"{req.idempotency_key}:{code}".encode()).hexdigest()


def confirmation_prompt_send(
    *, req: ActionRequest, conversation: Conversation, at: datetime
) -> str:
    """Give ``req`` a one-time code and send the customer the prompt on the conversation
    (inside the caller's transaction).  Returns the code (tests read it from the chat)."""
    from chat.services import system_message_send

    code = f"{secrets.randbelow(1_000_000):06d}"
    minutes = confirmation_minutes()
    req.confirmation_code_hash = _code_hash(req, code)
    req.confirmation_expires_at = at + timedelta(minutes=minutes)
    audit_append(
        action="request.confirmation_sent",
        actor=None,
        conversation_id=req.conversation_id,
        on_behalf_of=req.bank_user_id,
        object_type="request",
        object_id=req.pk,
        request_id=req.pk,
        after={"expires_at": req.confirmation_expires_at},
    )
    label = action_type_get(req.action_type).label
    message = system_message_send(
        conversation=conversation,
        text=(
            f'Our agent asked to do this for you: "{label}". To confirm, reply YES {code} '
            f"within {minutes} minutes. If you did not ask for it, reply NO {code}."
        ),
    )
    req.confirmation_message_id = message["id"]
    req.save(
        update_fields=[
            "confirmation_code_hash",
            "confirmation_expires_at",
            "confirmation_message_id",
        ]
    )
    return code


def inbound_confirmation_handle(*, conversation: Conversation, message: Message) -> None:
    """``chat.hooks`` inbound handler: no query and no lock inside the message's
    transaction; a message with a six-digit code is answered after it commits."""
    if not _CODE.search(message.text or ""):
        return
    conversation_id, customer_id = conversation.pk, conversation.customer_id
    text, message_id = message.text, message.id
    transaction.on_commit(
        lambda: customer_confirmation_answer(
            conversation_id=conversation_id,
            customer_id=customer_id,
            text=text,
            message_id=message_id,
        ),
        robust=True,
    )


def _audit(action: str, req: ActionRequest, *, before: Any, after: Any, outcome: str) -> None:
    audit_append(
        action=action,
        actor=None,
        actor_role="customer",
        actor_name=f"customer {req.customer_id}",
        conversation_id=req.conversation_id,
        on_behalf_of=req.bank_user_id,
        object_type="request",
        object_id=req.pk,
        request_id=req.pk,
        before=before,
        after=after,
        outcome=outcome,
    )


def customer_confirmation_answer(
    *,
    conversation_id: Any,
    customer_id: Any,
    text: str,
    message_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """The customer's answer to a confirmation prompt (their message ``text``): confirm,
    decline, a wrong code or a late one.  None when the customer has no request awaiting
    confirmation (the six digits were about something else).  The hub's reply goes on
    ``conversation_id``; the request may have come from another of the customer's
    conversations.  Returns the request as the console sees it."""
    from backoffice_bridge.services import _announce, _execute_on_commit
    from chat.models import Conversation
    from chat.services import system_message_send

    codes = _CODE.findall(text or "")
    if not codes:
        return None
    declined = bool(_DECLINE.match(text))
    at = now or timezone.now()
    with transaction.atomic():
        # The conversation first, then requests: the order action_request_create locks in.
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("customer", "operator", "query_type")
            .filter(pk=conversation_id, customer_id=customer_id)
            .first()
        )
        if conversation is None:
            return None
        waiting = list(
            ActionRequest.objects.select_for_update(of=("self",))
            .select_related("maker", "checker")
            .filter(customer_id=customer_id, status=RequestStatus.AWAITING_CONFIRMATION)
            .order_by("-created_at", "-id")
        )
        if not waiting:
            return None
        matched = next(
            (r for r in waiting for c in codes if _code_hash(r, c) == r.confirmation_code_hash),
            None,
        )
        evidence = {"message_id": message_id}
        if matched is None:
            req = waiting[0]  # the newest prompt is the one being answered
            req.confirmation_attempts += 1
            req.save(update_fields=["confirmation_attempts"])
            _audit(
                "request.confirm",
                req,
                before={"status": req.status},
                after={
                    "error": "wrong_code",
                    "attempts": req.confirmation_attempts,
                    **evidence,
                },
                outcome="refused",
            )
            if req.confirmation_attempts >= confirmation_max_attempts():
                _finish(
                    req,
                    RequestStatus.REJECTED,
                    STATUS_REJECTED,
                    at=at,
                    reason=(
                        f"The customer's confirmation failed {req.confirmation_attempts} times."
                    ),
                )
                reply = "That code is not right, so nothing was done. Our agent can start again."
            else:
                reply = "That code is not right. Please check it and answer again."
            system_message_send(conversation=conversation, text=reply)
            return request_dict(req)
        req = matched
        before = {"status": req.status, "business_status": req.business_status}
        if req.confirmation_expires_at is not None and req.confirmation_expires_at <= at:
            _audit(
                "request.confirm",
                req,
                before=before,
                after={"error": "expired", **evidence},
                outcome="refused",
            )
            _finish(
                req,
                RequestStatus.EXPIRED,
                STATUS_EXPIRED,
                at=at,
                reason="The customer did not confirm in time.",
            )
            system_message_send(
                conversation=conversation,
                text="This code has expired, so nothing was done. Our agent can start again.",
            )
            return request_dict(req)
        if declined:
            _audit(
                "request.decline",
                req,
                before=before,
                after={"declined": True, **evidence},
                outcome="ok",
            )
            _finish(
                req,
                RequestStatus.REJECTED,
                STATUS_REJECTED,
                at=at,
                reason="The customer declined in the chat.",
            )
            system_message_send(conversation=conversation, text="Understood: nothing was done.")
            return request_dict(req)
        action = action_type_get(req.action_type)
        req.confirmed_at = at
        if action.needs_checker:
            req.status = RequestStatus.PENDING
            req.business_status = action.pending_status
            req.expires_at = at + timedelta(minutes=settings.BACKOFFICE_REQUEST_TTL_MINUTES)
        else:
            req.status = RequestStatus.APPROVED
            req.business_status = STATUS_APPROVED
            req.decided_at = at
        req.save(
            update_fields=["confirmed_at", "status", "business_status", "expires_at", "decided_at"]
        )
        _audit(
            "request.confirm",
            req,
            before=before,
            after={"status": req.status, "business_status": req.business_status, **evidence},
            outcome="ok",
        )
        system_message_send(conversation=conversation, text="Thank you, confirmed.")
        _announce(
            "backoffice.request_confirmed",
            conversation_id=req.conversation_id,
            payload={"request": request_dict(req)},
        )
        if req.status == RequestStatus.APPROVED:
            _execute_on_commit(req.pk)
        return request_dict(req)


def _finish(
    req: ActionRequest, status: str, business_status: str, *, at: datetime, reason: str
) -> None:
    """End an unconfirmed request (rejected or expired): audited and announced."""
    from backoffice_bridge.services import _announce

    before = {"status": req.status, "business_status": req.business_status}
    req.status = status
    req.business_status = business_status
    req.decided_at = at
    req.reason = reason
    req.save(update_fields=["status", "business_status", "decided_at", "reason"])
    _audit(
        "request.reject" if status == RequestStatus.REJECTED else "request.expire",
        req,
        before=before,
        after={"status": status, "business_status": business_status, "reason": reason},
        outcome="ok",
    )
    kind = "rejected" if status == RequestStatus.REJECTED else "expired"
    _announce(
        f"backoffice.request_{kind}",
        conversation_id=req.conversation_id,
        payload={"request": request_dict(req)},
    )
