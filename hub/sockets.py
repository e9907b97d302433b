"""Service: order every open socket of a user to close (logout, account disabled)."""

from __future__ import annotations

from django.db import transaction

from chat.events import publish_now, user_group


def user_sockets_close(*, user_id: int, reason: str) -> None:
    """Ring the user's group after commit; consumers close with 4401 and the reason."""
    message = {"type": "user.close", "reason": reason}
    transaction.on_commit(lambda: publish_now([(user_group(user_id), message)]))
