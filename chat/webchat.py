"""Web chat channel: signed visitor identities.

A visitor gets a random id signed with the hub's secret.  The browser keeps the token (local
storage) and presents it on reconnect to see its history; nobody can forge another visitor's
token.  Nothing is written to the database until the visitor's first message.
"""

from __future__ import annotations

import uuid

from django.core import signing

_SALT = "hub.webchat.visitor"
# Visitors returning after this long start a fresh identity.
VISITOR_TOKEN_MAX_AGE = 60 * 60 * 24 * 90


def visitor_token_issue() -> tuple[str, str]:
    visitor_id = uuid.uuid4().hex
    return visitor_id, visitor_token_renew(visitor_id)


def visitor_token_renew(visitor_id: str) -> str:
    """A newly timestamped token for a known visitor (sent on every reconnect)."""
    return signing.dumps({"v": visitor_id}, salt=_SALT, compress=False)


def visitor_from_token(token: str) -> str | None:
    try:
        data = signing.loads(token, salt=_SALT, max_age=VISITOR_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    visitor = data.get("v") if isinstance(data, dict) else None
    return visitor if isinstance(visitor, str) else None
