"""Loaded with ``-p tests.shape`` (pyproject addopts), before pytest-django reads settings:
the in-process suite runs on the local PostgreSQL with the in-memory channel layer.

tests/e2e start real daphne processes on PostgreSQL + Redis and tests/embedded the
no-configuration shape; each passes its own environment to the processes it starts.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse, urlunparse

from tests.services import require_postgres

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
# One database per test run (pytest-django creates test_hub_<pid>), so that two runs on one
# machine (a developer and CI, or parallel sessions) do not drop each other's database.
_base = urlparse(require_postgres())
os.environ["DATABASE_URL"] = urlunparse(_base._replace(path=f"/hub_{os.getpid()}"))
os.environ.pop("REDIS_URL", None)
# Worker threads close their connection after each call, so the test database can be dropped.
os.environ["HUB_DB_CONN_MAX_AGE"] = "0"
# Short intervals so tests of the watchdog finish quickly.
os.environ.setdefault("HUB_WS_REVALIDATE_SECONDS", "0.5")
os.environ.setdefault("HUB_CONSOLE_SAFETY_POLL_SECONDS", "1")
