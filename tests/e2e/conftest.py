"""Shared set-up of the end-to-end tests: a fresh, migrated PostgreSQL database with staff
users, ready for daphne processes (tests/harness.py) to be started on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.client import STAFF_PASSWORD
from tests.harness import create_staff, fresh_postgres, hub_env, migrate


def prepare_hub(
    database_url: str | None,
    redis_url: str | None,
    staff: dict[str, dict[str, Any]],
    **extra: str,
) -> dict[str, str]:
    """Migrate, create the staff users (``{"op": {"role": "Operator", "online": True,
    "capacity": 100}}``, all with STAFF_PASSWORD) and return the hub processes' env."""
    env = hub_env(database_url, redis_url, **extra)
    migrate(env)
    for username, spec in staff.items():
        create_staff(
            env,
            username,
            spec.get("role", "Operator"),
            STAFF_PASSWORD,
            online=spec.get("online", False),
            capacity=spec.get("capacity"),
        )
    return env


@pytest.fixture
def fresh_db() -> Iterator[str]:
    """URL of a new, empty PostgreSQL database (dropped afterwards)."""
    with fresh_postgres() as url:
        yield url
