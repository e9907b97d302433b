"""Service: order every open socket of a user to close (logout, account disabled)."""

from __future__ import annotations

from django.db import transaction

from chat.events import publish_now, user_group


def user_sockets_close(*, user_id: int, reason: str, session_key: str | None = None) -> None:
    """Ring the user's group after commit; consumers close with 4401 and the reason.

    With ``session_key`` (a logout) only the sockets of that browser session close; an
    account being disabled closes every socket of the user.
    """
    message = {"type": "user.close", "reason": reason, "session_key": session_key}
    transaction.on_commit(lambda: publish_now([(user_group(user_id), message)]))
