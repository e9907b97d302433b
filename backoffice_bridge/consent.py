"""Consent services (writes): recording and revoking a customer's consent to on-behalf
actions (seed 001).  Seed 001's bank keeps a flag that an administrator sets by hand on
written consent; here staff record it from the conversation, with the evidence (what the
customer said and where: e.g. the chat message id), the scope (which on-behalf action
types, or all), and an expiry — and anyone who handles the customer can revoke it.

Each change is audited (``consent.record`` / ``consent.revoke``) and announced on the
conversation (``backoffice.consent_recorded`` / ``backoffice.consent_revoked``) in its
transaction; every refused attempt is audited too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from backoffice_bridge.actions import PERM_START_ACTIONS, action_types
from backoffice_bridge.audit import audit_append, audited
from backoffice_bridge.models import Consent
from backoffice_bridge.selectors import consent_dict, live_link
from backoffice_bridge.services import _announce
from chat.selectors import access_conversation
from hub.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed

EVIDENCE_MAX = 2000
REFERENCE_MAX = 200
REASON_MAX = 1000


def consent_days_default() -> int:
    """How long a consent lasts unless an expiry is given (``BACKOFFICE_CONSENT_DAYS``)."""
    return int(getattr(settings, "BACKOFFICE_CONSENT_DAYS", 90))


def consent_days_max() -> int:
    """The longest a consent may last (``BACKOFFICE_CONSENT_MAX_DAYS``)."""
    return int(getattr(settings, "BACKOFFICE_CONSENT_MAX_DAYS", 365))


def _clean_scope(scope: Any) -> list[str]:
    if scope is None:
        return []
    if not isinstance(scope, list) or not all(isinstance(n, str) for n in scope):
        raise ValidationFailed(
            "scope must be a list of action type names (empty: every on-behalf action).",
            field="scope",
            reason="wrong_type",
        )
    on_behalf = sorted(t.name for t in action_types() if t.on_behalf)
    for name in scope:
        if name not in on_behalf:
            raise ValidationFailed(
                f"'{name}' is not an on-behalf action type.",
                field="scope",
                reason="not_on_behalf",
                choices=on_behalf,
            )
    return sorted(set(scope))


def _consent_audit(action: str, consent: Consent, *, actor: AbstractBaseUser, before: Any) -> None:
    audit_append(
        action=action,
        actor=actor,
        conversation_id=consent.conversation_id,
        on_behalf_of=consent.bank_user_id,
        object_type="consent",
        object_id=consent.pk,
        before=before,
        after={
            "scope": consent.scope,
            "evidence": consent.evidence,
            "evidence_reference": consent.evidence_reference,
            "expires_at": consent.expires_at,
            "revoked_at": consent.revoked_at,
            "revoke_reason": consent.revoke_reason,
        },
    )


@audited("consent.record")
def consent_record(
    *,
    actor: AbstractBaseUser,
    conversation_id: Any,
    evidence: str,
    evidence_reference: str = "",
    scope: list[str] | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record the linked customer's consent to on-behalf actions.

    ``scope``: on-behalf type names, or None/empty for all of them.  ``expires_at``:
    later than now and at most ``BACKOFFICE_CONSENT_MAX_DAYS`` ahead (default
    ``BACKOFFICE_CONSENT_DAYS``).  A new consent does not end earlier ones.

    Errors: PermissionDenied (not a maker); NotFound (conversation); ValidationFailed
    (``evidence`` empty or too long, ``evidence_reference`` too long, ``scope`` not
    on-behalf types, ``expires_at`` past or too far); Conflict ``customer_not_linked``.
    """
    if not actor.has_perm(PERM_START_ACTIONS):
        raise PermissionDenied("You may not record a customer's consent.")
    evidence = (evidence or "").strip()
    if not evidence:
        raise ValidationFailed(
            "Say what the customer agreed to and how (the evidence).",
            field="evidence",
            reason="missing",
        )
    if len(evidence) > EVIDENCE_MAX:
        raise ValidationFailed(
            f"The evidence is longer than {EVIDENCE_MAX} characters.",
            field="evidence",
            reason="too_long",
        )
    reference = (evidence_reference or "").strip()
    if len(reference) > REFERENCE_MAX:
        raise ValidationFailed(
            f"The evidence reference is longer than {REFERENCE_MAX} characters.",
            field="evidence_reference",
            reason="too_long",
        )
    cleaned_scope = _clean_scope(scope)
    at = now or timezone.now()
    until = expires_at or at + timedelta(days=consent_days_default())
    if until <= at:
        raise ValidationFailed(
            "The consent must expire in the future.", field="expires_at", reason="in_the_past"
        )
    if until > at + timedelta(days=consent_days_max()):
        raise ValidationFailed(
            f"A consent lasts at most {consent_days_max()} days.",
            field="expires_at",
            reason="too_far",
            maximum_days=consent_days_max(),
        )
    with transaction.atomic():
        conversation = access_conversation(actor=actor, conversation_id=conversation_id, lock=True)
        link = live_link(customer_id=conversation.customer_id, lock=True)
        if link is None:
            raise Conflict(
                "Link the customer to a bank user before recording their consent.",
                reason="customer_not_linked",
            )
        consent = Consent.objects.create(
            customer_id=conversation.customer_id,
            bank_user_id=link.bank_user_id,
            link=link,
            conversation=conversation,
            scope=cleaned_scope,
            evidence=evidence,
            evidence_reference=reference,
            recorded_by=actor,
            recorded_at=at,
            expires_at=until,
        )
        _consent_audit("consent.record", consent, actor=actor, before=None)
        payload = {"consent": consent_dict(consent, at=at)}
        _announce("backoffice.consent_recorded", conversation_id=conversation.pk, payload=payload)
    return payload["consent"]


@audited("consent.revoke")
def consent_revoke(
    *,
    actor: AbstractBaseUser,
    conversation_id: Any,
    consent_id: Any,
    reason: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Revoke a consent of the conversation's customer (kept, with who, when and why).
    An on-behalf action started after the revoke commits is refused; one racing it waits
    for the consent row (``action_request_create`` locks it).

    Errors: PermissionDenied; NotFound (conversation; a consent of another customer is
    not found either); ValidationFailed (``reason`` empty or too long); Conflict
    ``already_revoked``.
    """
    if not actor.has_perm(PERM_START_ACTIONS):
        raise PermissionDenied("You may not revoke a customer's consent.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A revocation needs a reason.", field="reason", reason="missing")
    if len(reason) > REASON_MAX:
        raise ValidationFailed(
            f"The reason is longer than {REASON_MAX} characters.", field="reason", reason="too_long"
        )
    try:
        pk = int(consent_id)
    except (TypeError, ValueError):
        raise NotFound("No such consent.", consent_id=str(consent_id)) from None
    at = now or timezone.now()
    with transaction.atomic():
        conversation = access_conversation(actor=actor, conversation_id=conversation_id, lock=True)
        consent = (
            Consent.objects.select_for_update(of=("self",))
            .select_related("recorded_by", "revoked_by")
            .filter(pk=pk, customer_id=conversation.customer_id)
            .first()
        )
        if consent is None:
            raise NotFound("No such consent.", consent_id=pk)
        if consent.revoked_at is not None:
            raise Conflict(
                "This consent was already revoked.",
                reason="already_revoked",
                consent_id=pk,
                revoked_at=consent.revoked_at.isoformat(),
            )
        consent.revoked_at = at
        consent.revoked_by = actor
        consent.revoke_reason = reason
        consent.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        _consent_audit("consent.revoke", consent, actor=actor, before={"revoked_at": None})
        payload = {"consent": consent_dict(consent, at=at)}
        _announce("backoffice.consent_revoked", conversation_id=conversation.pk, payload=payload)
    return payload["consent"]
