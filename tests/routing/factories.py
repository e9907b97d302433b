"""Test factories for routing: operators with skills and capacity."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hub.roles import Role
from routing.models import QueryType
from routing.services import operator_state_get, presence_set


def operator_make(
    staff: Callable[..., Any],
    name: str,
    *,
    types: Iterable[QueryType] = (),
    capacity: int = 5,
    online: bool = True,
) -> Any:
    """An operator with this capacity and these skills, then (if ``online``) online, so that
    coming online pulls from the queue what they really serve."""
    user = staff(name, Role.OPERATOR)
    state = operator_state_get(user_id=user.pk)
    state.capacity = capacity
    state.save()
    state.query_types.set(list(types))
    if online:
        presence_set(actor=user, presence="online")
    return user
