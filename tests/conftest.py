"""Suite-wide setup: the in-process tests run on the local PostgreSQL (real rows, real locks)
with the in-memory channel layer; tests/e2e start real daphne processes on PostgreSQL + Redis,
and tests/embedded the no-configuration shape."""

from __future__ import annotations

import os

from tests.services import require_postgres

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ["DATABASE_URL"] = require_postgres()
os.environ.pop("REDIS_URL", None)
# Fast, deterministic limits for the tests that exercise them.
os.environ.setdefault("HUB_WS_REVALIDATE_SECONDS", "0.5")
os.environ.setdefault("HUB_CONSOLE_SAFETY_POLL_SECONDS", "1")

import pytest  # noqa: E402


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
