"""Domain error model: every refusal the hub makes carries a stable code.

Services raise subclasses of :class:`HubError`; the HTTP middleware (``hub.errors``) renders
them as ``{"code", "message", "data"}`` and the WebSocket consumers as ``error`` frames.
The codes are part of the public protocol (docs/protocol.md): never rename one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # transport-level (frames and requests)
    INVALID_JSON = "invalid_json"
    INVALID_FRAME = "invalid_frame"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    FRAME_TOO_LARGE = "frame_too_large"
    RATE_LIMITED = "rate_limited"
    # authentication / authorisation
    NOT_AUTHENTICATED = "not_authenticated"
    INVALID_CREDENTIALS = "invalid_credentials"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    # domain
    CONVERSATION_CLOSED = "conversation_closed"
    CONFLICT = "conflict"
    OPERATOR_UNAVAILABLE = "operator_unavailable"  # offline, away or on a scheduled absence
    OPERATOR_UNQUALIFIED = "operator_unqualified"  # does not serve the query type
    OPERATOR_AT_CAPACITY = "operator_at_capacity"
    NOTHING_TO_DERIVE = "nothing_to_derive"
    RESOLUTION_REQUIRED = "resolution_required"  # closing needs a valid reason for the type
    STALE_VERSION = "stale_version"  # someone else saved the same settings first
    # a free-form reply outside the channel's customer-service window (WhatsApp: 24 h)
    REPLY_WINDOW_CLOSED = "reply_window_closed"
    # back-office on-behalf actions (docs/backoffice.md): the bank user is new, locked or
    # suspended, or the customer has no valid recorded consent for the action
    ACTION_DISABLED = "action_disabled"
    CONSENT_REQUIRED = "consent_required"
    # the bank's back office did not answer after the client's retries (or is not
    # configured): 503, ``data.reason`` backoffice_unavailable / backoffice_not_configured
    BACKOFFICE_UNAVAILABLE = "backoffice_unavailable"
    INTERNAL_ERROR = "internal_error"
    METHOD_NOT_ALLOWED = "method_not_allowed"


class HubError(Exception):
    """Base of every domain error: a code, an HTTP status, a readable message, data."""

    code: ErrorCode = ErrorCode.INVALID_VALUE
    status: int = 400
    default_message: str = "The request could not be processed."

    def __init__(
        self, message: str | None = None, *, code: ErrorCode | None = None, **data: Any
    ) -> None:
        self.message = message or self.default_message
        self.data = data
        if code is not None:  # a more precise code than the class's own
            self.code = code
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, "data": self.data}


class ValidationFailed(HubError):
    code = ErrorCode.INVALID_VALUE
    status = 400
    default_message = "A field has an invalid value."


class NotAuthenticated(HubError):
    code = ErrorCode.NOT_AUTHENTICATED
    status = 401
    default_message = "Authentication is required."


class InvalidCredentials(HubError):
    code = ErrorCode.INVALID_CREDENTIALS
    status = 401
    default_message = "The user name or password is not correct."


class PermissionDenied(HubError):
    code = ErrorCode.PERMISSION_DENIED
    status = 403
    default_message = "You are not allowed to do this."


class NotFound(HubError):
    """Raised alike for a missing row and a forbidden one, so ids cannot be probed."""

    code = ErrorCode.NOT_FOUND
    status = 404
    default_message = "Not found."


class Conflict(HubError):
    code = ErrorCode.CONFLICT
    status = 409
    default_message = "The request conflicts with the current state."


class ConversationClosed(Conflict):
    code = ErrorCode.CONVERSATION_CLOSED
    default_message = "The conversation is closed."


class ReplyWindowClosed(Conflict):
    """A free-form reply after the channel's customer-service window closed (WhatsApp: 24 h
    after the customer's last message); ``data.closed_at`` says when.  Templates still go."""

    code = ErrorCode.REPLY_WINDOW_CLOSED
    default_message = "The 24-hour reply window is closed: only an approved template can be sent."
