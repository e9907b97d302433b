"""Runs the search scenarios (tests/knowledge_base/scenarios.py) on the database the
environment names — a freshly migrated SQLite file in test_search_sqlite.py — and prints the
results as JSON.  ``python -m tests.knowledge_base.sqlite_probe``."""

from __future__ import annotations

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from hub.accounts import staff_user_ensure  # noqa: E402
from hub.roles import Role  # noqa: E402
from tests.knowledge_base import scenarios  # noqa: E402


def main() -> None:
    coordinator = staff_user_ensure(username="kb-coord", password="pw-kb", role=Role.COORDINATOR)
    ids = scenarios.seed(coordinator)
    conversation_ids = scenarios.conversations()
    results = scenarios.run(coordinator, conversation_ids)
    results.update(scenarios.sync_run(coordinator, ids, conversation_ids))
    print(json.dumps({"vendor": connection.vendor, "results": results}))


if __name__ == "__main__":
    main()
