"""Bench routing worker: the Django side of the routing benchmark (bench.routing), run with
the hub's environment as its own process so that the orchestrator never loads Django.

``python -m bench.routing_worker seed-derivation N``
    an Admin, operators A (online, holding N active conversations) and B (online, room for
    N); the conversations are written in two set-based SQL statements.  Prints JSON.
``python -m bench.routing_worker seed-operators N CAPACITY``
    N online operators of that capacity with API tokens.  Prints JSON.
``python -m bench.routing_worker derive``
    prints ``ready``, then for each ``FROM TO`` line on stdin runs
    ``operator_conversations_derive`` as the Admin and prints JSON with
    ``time.monotonic_ns()`` before and after (the same clock as the orchestrator's).

Settings: bench.seed_settings (a cheap password hasher: these passwords are never checked
again, the benchmark authenticates with the tokens printed here).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.seed_settings"

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402

import hub.accounts  # noqa: E402
from chat.models import Conversation, Customer  # noqa: E402
from hub.auth import api_token_issue  # noqa: E402
from hub.roles import Role, role_groups_ensure  # noqa: E402
from routing.models import OperatorState, QueryType  # noqa: E402
from routing.services import operator_conversations_derive, presence_set  # noqa: E402

PASSWORD = "bench-password"


def _staff(username: str, role: Role, *, capacity: int | None, online: bool) -> dict[str, Any]:
    user = hub.accounts.staff_user_ensure(username=username, password=PASSWORD, role=role)
    if capacity is not None:
        # Directly: the coordinator's service caps capacity at 100, the bench needs 10,000.
        state, _ = OperatorState.objects.get_or_create(user_id=user.pk)
        state.capacity = capacity
        state.save(update_fields=["capacity"])
    if online:
        presence_set(actor=user, presence="online")
    token, _ = api_token_issue(username=username, password=PASSWORD)
    return {"username": username, "user_id": user.pk, "token": token}


def _once_groups() -> None:
    """staff_user_ensure re-syncs the role groups on every call; once is enough here."""
    groups = role_groups_ensure()
    hub.accounts.role_groups_ensure = lambda: groups  # type: ignore[assignment]


def seed_derivation(count: int) -> dict[str, Any]:
    started = time.monotonic()
    _once_groups()
    admin = _staff("bench-admin", Role.ADMIN, capacity=None, online=False)
    a = _staff("bench-op-a", Role.OPERATOR, capacity=count, online=True)
    b = _staff("bench-op-b", Role.OPERATOR, capacity=count, online=True)
    query_type = QueryType.objects.create(code="payments", name="Payments", is_default=True)
    customers = connection.ops.quote_name(Customer._meta.db_table)
    conversations = connection.ops.quote_name(Conversation._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"WITH c AS (INSERT INTO {customers} (id, display_name, created_at) "
            "SELECT gen_random_uuid(), 'Bench customer ' || g, now() "
            "FROM generate_series(1, %s) g RETURNING id) "
            f"INSERT INTO {conversations} (id, customer_id, channel, status, operator_id, "
            "created_at, assigned_at, last_customer_message_at, last_message_at, "
            "operator_read_up_to, unread_count, query_type_id, type_menu_asked) "
            "SELECT gen_random_uuid(), c.id, 'webchat', 'assigned', %s, now(), now(), now(), "
            "now(), 0, 1, %s, 0 FROM c",
            [count, a["user_id"], query_type.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {customers}")
        cursor.execute(f"ANALYZE {conversations}")
    return {"admin": admin, "a": a, "b": b, "seconds": round(time.monotonic() - started, 2)}


def seed_operators(count: int, capacity: int) -> dict[str, Any]:
    started = time.monotonic()
    _once_groups()
    QueryType.objects.create(code="payments", name="Payments", is_default=True)
    operators = [
        _staff(f"bench-op-{i:03d}", Role.OPERATOR, capacity=capacity, online=True)
        for i in range(count)
    ]
    return {"operators": operators, "seconds": round(time.monotonic() - started, 2)}


def derive_loop() -> None:
    admin = get_user_model().objects.get(username="bench-admin")
    print("ready", flush=True)
    for line in sys.stdin:
        source, target = (int(x) for x in line.split())
        started = time.monotonic_ns()
        try:
            summary = operator_conversations_derive(
                actor=admin, from_operator_id=source, to_operator_id=target
            )
        except Exception as exc:  # reported (e.g. a deadlock) and the bench goes on
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}), flush=True)
            continue
        finished = time.monotonic_ns()
        print(
            json.dumps({"started_ns": started, "finished_ns": finished, "count": summary["count"]}),
            flush=True,
        )


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "seed-derivation":
        json.dump(seed_derivation(int(args[0])), sys.stdout)
    elif command == "seed-operators":
        json.dump(seed_operators(int(args[0]), int(args[1])), sys.stdout)
    elif command == "derive":
        derive_loop()
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
