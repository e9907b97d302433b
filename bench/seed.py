"""Bench seeding: N operators of capacity 1 (the first ONLINE of them online, the rest
offline) and one Coordinator, each with an API token, through the hub's own services.
Prints JSON.

Run with the hub's environment: ``python -m bench.seed N [ONLINE]`` (settings:
bench.seed_settings).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.seed_settings"

import django

django.setup()

import hub.accounts  # noqa: E402
from hub.auth import api_token_issue  # noqa: E402
from hub.roles import Role, role_groups_ensure  # noqa: E402
from routing.services import operator_state_get, presence_set  # noqa: E402

PASSWORD = "bench-password"


def main(count: int, online: int) -> None:
    started = time.monotonic()
    # staff_user_ensure re-syncs the role groups on every call; once is enough here.
    groups = role_groups_ensure()
    hub.accounts.role_groups_ensure = lambda: groups  # type: ignore[assignment]
    operators = []
    for i in range(count):
        username = f"bench-op-{i:05d}"
        user = hub.accounts.staff_user_ensure(
            username=username, password=PASSWORD, role=Role.OPERATOR
        )
        state = operator_state_get(user_id=user.pk)
        state.capacity = 1
        state.save(update_fields=["capacity"])
        if i < online:
            presence_set(actor=user, presence="online")
        token, _ = api_token_issue(username=username, password=PASSWORD)
        operators.append(
            {"username": username, "user_id": user.pk, "token": token, "online": i < online}
        )
    supervisor = hub.accounts.staff_user_ensure(
        username="bench-supervisor", password=PASSWORD, role=Role.COORDINATOR
    )
    sup_token, _ = api_token_issue(username="bench-supervisor", password=PASSWORD)
    json.dump(
        {
            "operators": operators,
            "supervisor": {"user_id": supervisor.pk, "token": sup_token},
            "seconds": round(time.monotonic() - started, 2),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    total = int(sys.argv[1])
    main(total, int(sys.argv[2]) if len(sys.argv) > 2 else total)
