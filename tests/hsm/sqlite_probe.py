"""Runs the hsm scenarios (tests/hsm/scenarios.py) on the database the environment names — a
freshly migrated SQLite file in test_scenarios_sqlite.py — and prints the results as JSON.
``python -m tests.hsm.sqlite_probe``."""

from __future__ import annotations

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from hub.accounts import staff_user_ensure  # noqa: E402
from hub.roles import Role  # noqa: E402
from tests.hsm import scenarios  # noqa: E402


def main() -> None:
    coordinator = staff_user_ensure(username="hsm-coord", password="pw-hsm", role=Role.COORDINATOR)
    print(json.dumps({"vendor": connection.vendor, "results": scenarios.run(coordinator)}))


if __name__ == "__main__":
    main()
