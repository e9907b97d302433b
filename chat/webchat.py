"""Web chat visitor identities: kept importable from here; the channel adapter lives in
``chat.channels.webchat``."""

from chat.channels.webchat import (
    VISITOR_TOKEN_MAX_AGE,
    visitor_from_token,
    visitor_token_issue,
    visitor_token_renew,
)

__all__ = [
    "VISITOR_TOKEN_MAX_AGE",
    "visitor_from_token",
    "visitor_token_issue",
    "visitor_token_renew",
]
