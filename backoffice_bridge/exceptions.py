"""Domain errors of the back-office bridge (HubError subclasses, rendered like the rest)."""

from __future__ import annotations

from hub.exceptions import Conflict, ErrorCode, HubError


class BackofficeUnavailableError(HubError):
    """The back office did not answer (5xx, timeouts, connection errors) after the client's
    bounded retries, or is not configured: ``503 backoffice_unavailable``, ``data.reason``
    ``backoffice_unavailable`` or ``backoffice_not_configured`` (a client retries later;
    nothing was changed at the bank by a read)."""

    code = ErrorCode.BACKOFFICE_UNAVAILABLE
    status = 503
    default_message = "The bank's back office is not answering; try again in a moment."


class BackofficeRefusedError(HubError):
    """The back office refused a read (4xx other than 404) — its reason is in the message."""

    code = ErrorCode.INVALID_VALUE
    status = 422
    default_message = "The bank's back office refused the request."


class ActionDisabled(Conflict):
    """An on-behalf action for a bank user who is new, locked or suspended: the message is
    seed 001's ("Disabled as the customer is locked"), ``data.reason`` says which."""

    code = ErrorCode.ACTION_DISABLED
    default_message = "Disabled for this customer."


class ConsentRequired(Conflict):
    """An on-behalf action without the customer's valid recorded consent for it ("Disabled
    as the customer has not consented"); ``data.consent`` says none, expired, revoked or
    out_of_scope."""

    code = ErrorCode.CONSENT_REQUIRED
    default_message = "Disabled as the customer has not consented"
