"""Suite-wide fixtures.  The environment (which database, which layer) is set by
tests/shape.py, loaded as a plugin before Django reads its settings."""

from __future__ import annotations

import pytest


@pytest.fixture
def staff(db):
    """Factory: ``staff("op1", Role.OPERATOR, online=True)`` → user."""
    from hub.accounts import staff_user_ensure
    from hub.roles import Role
    from routing.services import presence_set

    def make(username: str, role: Role = Role.OPERATOR, *, online: bool = False):
        user = staff_user_ensure(username=username, password="pw-" + username, role=role)
        if online:
            presence_set(actor=user, presence="online")
        return user

    return make
