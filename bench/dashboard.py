"""Bench: the analytics dashboard over 100,000 conversations and 1,000,000 messages.

``python -m bench.dashboard`` (``BENCH_ONLY=dashboard make bench``; part of ``make bench``).
A fresh PostgreSQL database is migrated, then a worker process (``--worker``) fills it with
set-based SQL (``INSERT … SELECT generate_series``, no ORM loop): 50 operators (40 online,
5 away), five query types, six resolution reasons, 100,000 customers and conversations over
the last 365 days (closed with a reason, except a few hundred queued and assigned now),
1,000,000 messages (ten per conversation), 100,000 routing assignments plus transfers,
5,000 out-of-hours records and 5,000 back-office requests in every status.  Then
``ANALYZE`` (what autovacuum would do after such a load), a bounded wait (60 s) for the
machine's load average to fall under 1, one warm-up, and ``ROUNDS``
rounds of the **full dashboard** as the page asks for it: ``dashboard_live`` +
``dashboard_period`` over the whole range + ``dashboard_period`` over the last month, each
serialised to JSON.  A filtered month (one type, one channel) is timed too, outside the
total.

Baseline, timed in the same rounds: ``SELECT count(*) FROM chat_message`` — one pass over
the million messages — so a busy machine shows in both figures.  Prints median and worst
per part and writes ``bench/results/dashboard.json`` and ``latest-dashboard.md``.
Target: the full dashboard under 1 s.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.worker import run_worker
from tests.harness import fresh_postgres, hub_env

RESULTS = Path(__file__).resolve().parent / "results"
CONVERSATIONS = int(os.environ.get("BENCH_DASHBOARD_CONVERSATIONS", "100000"))
MESSAGES_PER_CONVERSATION = 10
ROUNDS = int(os.environ.get("BENCH_DASHBOARD_ROUNDS", "7"))
OPERATORS = 50
TARGET_S = 1.0
DAYS = 365


def _seed(
    cursor: Any,
    *,
    operator_ids: list[int],
    type_ids: list[int],
    reason_ids: list[int],
    maker_id: int,
    checker_id: int,
) -> dict[str, float]:
    """Everything with set-based SQL; returns seconds per table."""
    n = CONVERSATIONS
    timings: dict[str, float] = {}

    def step(name: str, sql: str, params: list[Any] | None = None) -> None:
        t0 = time.monotonic()
        cursor.execute(sql, params or [])
        timings[name] = round(time.monotonic() - t0, 2)

    # Conversation i opens at a fixed point of the last DAYS days (plus a pseudo-random
    # minute), so every period has a predictable share; the last 0.5 % are still open.
    open_from = n - n // 200
    step(
        "customers",
        "INSERT INTO chat_customer (id, display_name, created_at) "
        "SELECT md5('c' || i)::uuid, 'Customer ' || i, now() - interval '400 days' "
        "FROM generate_series(1, %s) AS i",
        [n],
    )
    step(
        "conversations",
        """
        INSERT INTO chat_conversation (
            id, customer_id, channel, status, operator_id, created_at, assigned_at,
            first_operator_reply_at, last_customer_message_at, last_message_at, closed_at,
            operator_read_up_to, unread_count, last_message_id, query_type_id,
            type_menu_asked, language, resolution_id)
        SELECT md5('v' || i)::uuid, md5('c' || i)::uuid,
               CASE WHEN i %% 3 = 0 THEN 'whatsapp' ELSE 'webchat' END,
               CASE WHEN i <= %(open_from)s THEN 'closed'
                    WHEN i %% 2 = 0 THEN 'assigned' ELSE 'queued' END,
               CASE WHEN i <= %(open_from)s OR i %% 2 = 0
                    THEN (%(ops)s::bigint[])[1 + (i * 7) %% 40] END,
               t.opened,
               CASE WHEN i <= %(open_from)s OR i %% 2 = 0 THEN t.opened + interval '20 s' END,
               CASE WHEN i <= %(open_from)s OR i %% 2 = 0
                    THEN t.opened + ((i * 37) %% 900 + 15) * interval '1 s' END,
               t.opened + interval '4 min', t.opened + interval '5 min',
               CASE WHEN i <= %(open_from)s
                    THEN t.opened + ((i * 53) %% 7200 + 120) * interval '1 s' END,
               0, 0, NULL,
               (%(types)s::bigint[])[1 + i %% 5],
               0, '',
               CASE WHEN i <= %(open_from)s THEN (%(reasons)s::bigint[])[1 + (i * 11) %% 6] END
        FROM (SELECT i, now() - %(days)s * interval '1 day'
                        + (i::float8 / %(n)s) * %(days)s * interval '1 day'
                        - ((i * 13) %% 60) * interval '1 min'
                        - CASE WHEN i > %(open_from)s THEN interval '1 hour' ELSE interval '0' END
                        + CASE WHEN i > %(open_from)s THEN (i - %(open_from)s) * interval '1 s'
                               ELSE interval '0' END AS opened
              FROM generate_series(1, %(n)s) AS i) AS t
        """,
        {
            "n": n,
            "open_from": open_from,
            "ops": operator_ids,
            "types": type_ids,
            "reasons": reason_ids,
            "days": DAYS,
        },
    )
    step(
        "messages",
        """
        INSERT INTO chat_message (
            conversation_id, direction, author_id, text, channel, channel_message_id,
            created_at, kind, payload, delivery_status, status_at, provider_message_id,
            provider_error_code, provider_error_text, outbox_due_at, outbox_lease_until,
            outbox_attempts)
        SELECT c.id, CASE WHEN j %% 2 = 0 THEN 'in' ELSE 'out' END,
               CASE WHEN j %% 2 = 1 THEN c.operator_id END,
               'Message ' || j || ' about my card and a transfer', c.channel,
               'b' || c.customer_id || '-' || j,
               c.created_at + j * interval '30 s', 'text', '{}'::jsonb,
               CASE WHEN j %% 2 = 1 THEN 'delivered' ELSE '' END, NULL, NULL, '', '',
               NULL, NULL, 0
        FROM chat_conversation AS c CROSS JOIN generate_series(0, %s) AS j
        """,
        [MESSAGES_PER_CONVERSATION - 1],
    )
    step(
        "assignments",
        """
        INSERT INTO routing_assignment (
            conversation_id, kind, from_operator_id, to_operator_id, actor_id, batch_id,
            note, created_at)
        SELECT id, 'routed', NULL::int, operator_id, NULL::int, NULL::bigint, '', assigned_at
        FROM chat_conversation WHERE assigned_at IS NOT NULL
        UNION ALL
        SELECT id, 'transferred', operator_id, operator_id, NULL::int, NULL::bigint, '',
               assigned_at + interval '2 min'
        FROM chat_conversation WHERE assigned_at IS NOT NULL AND created_at::time < '02:00'
        UNION ALL
        SELECT id, 'queued', NULL::int, NULL::int, NULL::int, NULL::bigint, '', created_at
        FROM chat_conversation WHERE status = 'queued'
        """,
    )
    step(
        "out_of_hours",
        """
        INSERT INTO scheduling_outofhoursrecord (
            conversation_id, customer_id, channel, query_type_id, closed_since,
            next_opening, message_id, action, released_at, created_at)
        SELECT id, customer_id, channel, query_type_id, created_at - interval '3 h',
               created_at + interval '9 h', CASE WHEN n %% 4 <> 0 THEN n END,
               CASE WHEN n %% 3 = 0 THEN 'closed' ELSE 'held' END,
               CASE WHEN n %% 3 <> 0 AND status <> 'queued'
                    THEN created_at + interval '9 h' END,
               created_at
        FROM (SELECT c.*, row_number() OVER (ORDER BY created_at) AS n
              FROM chat_conversation AS c
              WHERE (hashtext(id::text) %% 20) = 0 OR status = 'queued') AS s
        """,
    )
    step(
        "backoffice",
        """
        INSERT INTO backoffice_bridge_actionrequest (
            action_type, params, conversation_id, customer_id, bank_user_id,
            conflict_group, status, business_status, maker_id, checker_id, created_at,
            expires_at, picked_at, decided_at, reason, idempotency_key, executing_since,
            finished_at, attempts, outcome, revert_due_at, revert_claimed_until,
            reverted_at, revert_outcome, confirmation_code_hash, confirmation_expires_at,
            confirmation_message_id, confirmation_attempts, confirmed_at)
        SELECT (ARRAY['block_user','unblock_user','temporary_limits','reset_password',
                      'dispute_transaction','stop_cheque'])[1 + k %% 6],
               '{}'::jsonb, c.id, c.customer_id, 'BU' || k, 'g' || k, s.status, s.status,
               %(maker)s, CASE WHEN s.decided THEN %(checker)s END,
               c.created_at + interval '3 min', c.created_at + interval '1 day', NULL,
               CASE WHEN s.decided
                    THEN c.created_at + interval '3 min' + ((k * 29) %% 3600 + 30)
                         * interval '1 s' END,
               '', md5('k' || k), NULL, NULL, 0, '{}'::jsonb, NULL, NULL, NULL,
               '{}'::jsonb, '', NULL, NULL, 0, NULL
        FROM (SELECT k, md5('v' || (k * 19))::uuid AS cid FROM generate_series(1, %(k)s) AS k)
             AS r
        JOIN chat_conversation AS c ON c.id = r.cid
        CROSS JOIN LATERAL (
            SELECT (ARRAY['done','done','done','failed','rejected','expired','pending'])
                   [1 + (r.k * 3) %% 7] AS status) AS s0
        CROSS JOIN LATERAL (SELECT s0.status,
                                   s0.status IN ('done','failed','rejected') AS decided) AS s
        """,
        {"k": min(5000, n // 20), "maker": maker_id, "checker": checker_id},
    )
    for table in (
        "chat_customer",
        "chat_conversation",
        "chat_message",
        "routing_assignment",
        "scheduling_outofhoursrecord",
        "backoffice_bridge_actionrequest",
    ):
        step(f"analyze {table}", f"ANALYZE {table}")
    return timings


def worker() -> None:
    """Seed and time, on the PostgreSQL database the environment names; prints JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.serializers.json import DjangoJSONEncoder
    from django.db import connection, transaction
    from django.utils import timezone

    from hub import dashboard
    from hub.accounts import staff_user_ensure
    from hub.roles import Role
    from routing.models import OperatorState, QueryType, ResolutionReason

    assert connection.vendor == "postgresql", "the dashboard bench runs on PostgreSQL"
    started = time.monotonic()
    admin = staff_user_ensure(username="bench-dash", password="bench-dash", role=Role.ADMIN)
    checker = staff_user_ensure(
        username="bench-checker", password="bench-checker", role=Role.COORDINATOR
    )
    User = get_user_model()
    with transaction.atomic():
        users = User.objects.bulk_create(
            [
                User(username=f"op{i:02d}", first_name="Operator", last_name=f"{i:02d}")
                for i in range(1, OPERATORS + 1)
            ]
        )
        group = Group.objects.get(name=Role.OPERATOR.value)
        User.groups.through.objects.bulk_create(
            [User.groups.through(user_id=u.pk, group_id=group.pk) for u in users]
        )
        OperatorState.objects.bulk_create(
            [
                OperatorState(
                    user_id=u.pk,
                    presence="online" if i < 40 else ("away" if i < 45 else "offline"),
                    capacity=5,
                )
                for i, u in enumerate(users)
            ]
        )
        types = [
            QueryType.objects.create(code=c, name=c.title(), menu_position=i, is_default=i == 0)
            for i, c in enumerate(["payments", "cards", "claims", "loans", "follow-up"])
        ]
        reasons = [
            ResolutionReason.objects.create(name=name, position=i)
            for i, name in enumerate(
                [
                    "Solved",
                    "Information given",
                    "Referred to branch",
                    "Duplicate",
                    "Spam",
                    "No answer from customer",
                ]
            )
        ]
        with connection.cursor() as cursor:
            seed_timings = _seed(
                cursor,
                operator_ids=[u.pk for u in users],
                type_ids=[t.pk for t in types],
                reason_ids=[r.pk for r in reasons],
                maker_id=admin.pk,
                checker_id=checker.pk,
            )
    # ANALYZE inside the transaction saw the rows; run it again now they are committed.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    seeded_s = time.monotonic() - started
    # The seeding's own load decays first; other work on the machine may not.
    waited = _quiet_machine()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM chat_conversation), (SELECT count(*) FROM "
            "chat_message), (SELECT count(*) FROM routing_assignment), (SELECT count(*) "
            "FROM scheduling_outofhoursrecord), (SELECT count(*) FROM "
            "backoffice_bridge_actionrequest), (SELECT min(created_at) FROM chat_conversation)"
        )
        conversations, messages, assignments, ooh, requests, first = cursor.fetchone()

    today = timezone.localdate()
    whole = dashboard.period_parse(
        raw_from=timezone.localtime(first).date().isoformat(),
        raw_to=(today + timedelta(days=1)).isoformat(),
    )
    month = dashboard.period_parse(
        raw_from=(today - timedelta(days=30)).isoformat(),
        raw_to=(today + timedelta(days=1)).isoformat(),
    )
    filtered = dashboard.period_parse(
        raw_from=month.start.date().isoformat(),
        raw_to=(today + timedelta(days=1)).isoformat(),
        raw_type=str(types[1].pk),
        raw_channel="whatsapp",
    )

    def timed(call: Any) -> tuple[float, Any]:
        t0 = time.perf_counter()
        value = call()
        json.dumps(value, cls=DjangoJSONEncoder)
        return time.perf_counter() - t0, value

    def baseline() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM chat_message")
            return cursor.fetchone()[0]

    parts = {
        "live": lambda: dashboard.dashboard_live(actor=admin),
        "period_whole_range": lambda: dashboard.dashboard_period(actor=admin, period=whole),
        "period_last_month": lambda: dashboard.dashboard_period(actor=admin, period=month),
    }
    extra = {
        "period_month_filtered": lambda: dashboard.dashboard_period(actor=admin, period=filtered),
        "baseline_count_messages": baseline,
    }
    for call in (*parts.values(), *extra.values()):  # warm up caches and plans
        call()
    samples: dict[str, list[float]] = {name: [] for name in (*parts, "full", *extra)}
    for _ in range(ROUNDS):
        full = 0.0
        for name, call in parts.items():
            seconds, _value = timed(call)
            samples[name].append(seconds)
            full += seconds
        samples["full"].append(full)
        for name, call in extra.items():
            samples[name].append(timed(call)[0])
    live = dashboard.dashboard_live(actor=admin)
    # Where the whole range's time goes: every statement of one run, slowest first.
    statements: list[tuple[float, str]] = []

    def clock(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((time.perf_counter() - t0, " ".join(sql.split())[:160]))

    with connection.execute_wrapper(clock):
        whole_data = dashboard.dashboard_period(actor=admin, period=whole)
    slowest = [
        {"ms": round(seconds * 1000, 1), "sql": sql}
        for seconds, sql in sorted(statements, reverse=True)[:6]
    ]
    with connection.cursor() as cursor:
        plans = {}
        for label, sql in (
            (
                "month_opened_count",
                "SELECT count(*) FROM chat_conversation WHERE created_at >= %s AND created_at < %s",
            ),
        ):
            cursor.execute("EXPLAIN " + sql, [month.start, month.end])
            plans[label] = [row[0] for row in cursor.fetchall()]
    figures = {
        name: {
            "median_s": round(statistics.median(values), 4),
            "worst_s": round(max(values), 4),
            "best_s": round(min(values), 4),
        }
        for name, values in samples.items()
    }
    base = figures["baseline_count_messages"]["median_s"]
    print(
        json.dumps(
            {
                "vendor": connection.vendor,
                "rows": {
                    "conversations": conversations,
                    "messages": messages,
                    "assignments": assignments,
                    "out_of_hours_records": ooh,
                    "backoffice_requests": requests,
                },
                "seed_seconds": round(seeded_s, 1),
                "waited_for_quiet_machine_seconds": waited,
                "loadavg_at_start": load_at_start,
                "seed_steps": seed_timings,
                "rounds": ROUNDS,
                "figures": figures,
                "full_over_baseline": round(figures["full"]["median_s"] / base, 2),
                "target_s": TARGET_S,
                "meets_target": figures["full"]["worst_s"] < TARGET_S,
                "check": {
                    "whole_range_conversations": whole_data["conversations"]["total"],
                    "whole_range_closes": whole_data["resolution"]["count"],
                    "first_response_median_s": whole_data["first_response"]["median_s"],
                    "queued_now": live["queued_total"],
                    "held_now": live["held_total"],
                    "operators_online": live["online"],
                },
                "plans": plans,
                "whole_range_statements": len(statements),
                "whole_range_slowest": slowest,
            },
            cls=DjangoJSONEncoder,
        )
    )


def _quiet_machine(limit: float = 60.0) -> float:
    """Other work on this machine skews every figure: wait (bounded) for a quiet moment."""
    started = time.monotonic()
    while time.monotonic() - started < limit and os.getloadavg()[0] > 1.0:
        time.sleep(2)
    return round(time.monotonic() - started, 1)


def run_dashboard() -> dict[str, Any]:
    """A fresh PostgreSQL database, migrated, seeded and timed by the worker process."""
    with fresh_postgres("hub_bench_dash") as db_url:
        results = run_worker("bench.dashboard", hub_env(db_url, None), what="dashboard")
    results["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def render(results: dict[str, Any]) -> str:
    rows = results["rows"]
    lines = [
        f"## Dashboard ({rows['conversations']:,} conversations, {rows['messages']:,} "
        f"messages, PostgreSQL; {results['rounds']} rounds)",
        "",
        "| part | median s | worst s |",
        "|---|---|---|",
    ]
    for name, figures in results["figures"].items():
        lines.append(f"| {name} | {figures['median_s']:.3f} | {figures['worst_s']:.3f} |")
    lines += [
        "",
        f"full = live + whole range + last month; full / baseline (median): "
        f"{results['full_over_baseline']}x; target < {results['target_s']} s: "
        f"{'met' if results['meets_target'] else 'NOT met'} (worst round).",
        f"Seeded in {results['seed_seconds']} s; load average {results['loadavg_at_start'][0]} "
        f"when the timing started, {results['loadavg_at_end'][0]} at the end (2 CPUs).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    results = run_dashboard()
    results["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dashboard.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render(results)
    (RESULTS / "latest-dashboard.md").write_text(markdown)
    print(markdown)
    print(f"written to {RESULTS / 'dashboard.json'}")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        main()
