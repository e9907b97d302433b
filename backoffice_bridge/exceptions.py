"""Domain errors of the back-office bridge (HubError subclasses, rendered like the rest)."""

from __future__ import annotations

from hub.exceptions import ErrorCode, HubError


class BackofficeUnavailableError(HubError):
    """The back office did not answer (5xx, timeouts, connection errors) after the client's
    bounded retries, or is not configured.  ``data.reason`` says which."""

    code = ErrorCode.INTERNAL_ERROR
    status = 503
    default_message = "The bank's back office is not answering; try again in a moment."


class BackofficeRefusedError(HubError):
    """The back office refused a read (4xx other than 404) — its reason is in the message."""

    code = ErrorCode.INVALID_VALUE
    status = 422
    default_message = "The bank's back office refused the request."
