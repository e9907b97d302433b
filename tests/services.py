"""Where the test suite finds PostgreSQL and Redis, and how it says they are missing.

No silent skips: a test that needs a service that is down fails with the command that
starts it.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

PG_URL = os.environ.get("HUB_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub")
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START = (
    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no"
)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def require_postgres() -> str:
    if not _reachable(PG_URL, 5432):
        raise RuntimeError(f"PostgreSQL is not reachable at {PG_URL}. Start it with: {PG_START}")
    return PG_URL


def require_redis() -> str:
    if not _reachable(REDIS_URL, 6379):
        raise RuntimeError(f"Redis is not reachable at {REDIS_URL}. Start it with: {REDIS_START}")
    return REDIS_URL
