"""The analytics dashboard (hub/dashboard.py, hub/dashboard_views.py) on a small known
dataset: counts per type, channel, operator and reason, medians and p90 (percentile_cont's
linear interpolation), the filters, the live queue and load, the CSV export, the permission
and every malformed query string.

The same scenario runs on the embedded default: ``python -m tests.hub.test_dashboard`` is
the SQLite probe (``test_same_figures_on_sqlite`` starts it on a freshly migrated SQLite
file through ``tests.harness.sqlite_probe_results``), so both databases must give the same
numbers — in particular the SQLite percentile fallback.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
PERIOD = {"from": "2026-03-02", "to": "2026-03-09"}  # [T0, T0 + 7 days)
LIVE_NOW = T0 + timedelta(days=10, seconds=1000)


def _at(days: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(days=days, seconds=seconds)


def scenario_build() -> dict[str, Any]:
    """Users, types, reasons, eleven conversations, out-of-hours records and back-office
    requests with fixed timestamps.  Returns the ids the checks need."""
    from django.contrib.auth import get_user_model

    from backoffice_bridge.models import ActionRequest
    from chat.models import Conversation, Customer
    from hub.roles import Role, role_groups_ensure
    from routing.models import Assignment, OperatorState, QueryType, ResolutionReason
    from scheduling.models import OutOfHoursRecord

    # Users without a password hash (hashing is the slow part of a scenario); the HTTP
    # tests sign in with force_login.
    groups = role_groups_ensure()
    User = get_user_model()
    users = {}
    for name, role in [
        ("ana", Role.OPERATOR),
        ("ben", Role.OPERATOR),
        ("carl", Role.OPERATOR),
        ("dora", Role.OPERATOR),
        ("coord", Role.COORDINATOR),
        ("boss", Role.ADMIN),
    ]:
        users[name] = User.objects.create(username=name, first_name=name.title())
        users[name].groups.set([groups[role]])
    for name, presence, capacity in [
        ("ana", "online", 3),
        ("ben", "online", 5),
        ("carl", "away", 4),
        ("dora", "offline", 2),
    ]:
        OperatorState.objects.update_or_create(
            user=users[name], defaults={"presence": presence, "capacity": capacity}
        )
    payments = QueryType.objects.create(code="payments", name="Payments", is_default=True)
    cards = QueryType.objects.create(code="cards", name="Cards", menu_position=1)
    solved = ResolutionReason.objects.create(name="Solved")
    duplicate = ResolutionReason.objects.create(name="Duplicate")

    # n: (type, channel, operator, status, opened, first reply s, closed s, reason)
    plan = {
        1: (payments, "webchat", "ana", "closed", _at(seconds=3600), 60, 600, solved),
        2: (payments, "webchat", "ana", "closed", _at(seconds=7200), 120, 1200, solved),
        3: (payments, "whatsapp", "ben", "closed", _at(days=1), 180, 1800, duplicate),
        4: (cards, "whatsapp", "ben", "closed", _at(days=2), 240, 3600, solved),
        5: (cards, "webchat", "ben", "assigned", _at(days=3), 600, None, None),
        6: (cards, "webchat", None, "queued", _at(days=4), None, None, None),
        # opened before the period, closed in it: a close of the period, not a conversation
        7: (payments, "webchat", "ana", "closed", _at(days=-1), 30, 90000, duplicate),
        # after the period
        8: (payments, "webchat", "ana", "closed", _at(days=8), 10, 100, solved),
        10: (cards, "webchat", None, "queued", _at(days=10), None, None, None),
        11: (payments, "webchat", None, "queued", _at(days=10, seconds=500), None, None, None),
    }
    conversations = {}
    for n, (qtype, channel, operator, status, opened, reply, closed, reason) in plan.items():
        customer = Customer.objects.create(display_name=f"Customer {n}")
        conversation = Conversation.objects.create(
            customer=customer,
            channel=channel,
            status=status,
            operator=users[operator] if operator else None,
            query_type=qtype,
            resolution=reason,
        )
        Conversation.objects.filter(pk=conversation.pk).update(
            created_at=opened,
            assigned_at=opened + timedelta(seconds=5) if operator else None,
            first_operator_reply_at=opened + timedelta(seconds=reply) if reply else None,
            closed_at=opened + timedelta(seconds=closed) if closed else None,
        )
        conversations[n] = conversation
    # Conversation 10 went back to the queue 600 s after it opened: it waits since then.
    hand_over = Assignment.objects.create(conversation=conversations[10], kind="requeued")
    Assignment.objects.filter(pk=hand_over.pk).update(created_at=_at(days=10, seconds=600))

    # Out of hours: 6 held and waiting (autoreply sent), 5 held then released, 1 closed by
    # the hub without an autoreply (already told), 8 outside the period.
    for n, action, released, message_id, created in [
        (6, "held", None, 9001, _at(days=4)),
        (5, "held", _at(days=3, seconds=3600), 9002, _at(days=3)),
        (1, "closed", None, None, _at(seconds=3600)),
        (8, "held", _at(days=8, seconds=60), 9003, _at(days=8)),
    ]:
        c = conversations[n]
        record = OutOfHoursRecord.objects.create(
            conversation=c,
            customer_id=c.customer_id,
            channel=c.channel,
            query_type_id=c.query_type_id,
            closed_since=created - timedelta(hours=3),
            action=action,
            released_at=released,
            message_id=message_id,
        )
        OutOfHoursRecord.objects.filter(pk=record.pk).update(created_at=created)

    # Back office: checker decisions after 300, 900 and 60 s; one expired after a checker
    # picked it up (nobody's decision); one pending; one outside the period.
    for k, (n, action, status, decided, checker) in enumerate(
        [
            (3, "block_user", "done", 300, "coord"),
            (3, "block_user", "rejected", 900, "coord"),
            (4, "reset_password", "failed", 60, "boss"),
            (1, "temporary_limits", "expired", 86400, "coord"),  # picked up, then expired
            (1, "stop_cheque", "pending", None, None),
            (8, "block_user", "done", 30, "coord"),
        ]
    ):
        c = conversations[n]
        created = Conversation.objects.get(pk=c.pk).created_at + timedelta(minutes=10)
        ActionRequest.objects.create(
            action_type=action,
            conversation=c,
            customer_id=c.customer_id,
            bank_user_id=f"BU{k}",
            conflict_group=action,
            status=status,
            business_status=status,
            maker=users["ana"],
            checker=users[checker] if checker else None,
            created_at=created,
            expires_at=created + timedelta(days=1),
            decided_at=created + timedelta(seconds=decided) if decided else None,
            idempotency_key=f"key-{k}",
        )
    return {
        "users": {name: user.pk for name, user in users.items()},
        "types": {"payments": payments.pk, "cards": cards.pk},
    }


def _figures(actor: Any, ids: dict[str, Any], **query: str) -> dict[str, Any]:
    from hub import dashboard

    period = dashboard.period_parse(
        raw_from=PERIOD["from"],
        raw_to=PERIOD["to"],
        raw_type=query.get("type"),
        raw_channel=query.get("channel"),
    )
    return dashboard.dashboard_period(actor=actor, period=period)


def scenario_run() -> dict[str, Any]:
    """Build the scenario and compute every figure the checks compare."""
    from django.contrib.auth import get_user_model

    from hub import dashboard

    ids = scenario_build()
    boss = get_user_model().objects.get(pk=ids["users"]["boss"])
    return {
        "ids": ids,
        "all": _figures(boss, ids),
        "payments": _figures(boss, ids, type=str(ids["types"]["payments"])),
        "whatsapp": _figures(boss, ids, channel="whatsapp"),
        "live": dashboard.dashboard_live(actor=boss, now=LIVE_NOW),
    }


# --- expectations (one place for both databases) -----------------------------------------
def pct(values: list[float], p: float) -> float:
    """percentile_cont: linear interpolation at p·(n-1), like statistics' inclusive method."""
    if p == 0.5:
        return statistics.median(values)
    return statistics.quantiles(values, n=10, method="inclusive")[round(p * 10) - 1]


def check_period(figures: dict[str, Any], ids: dict[str, Any]) -> None:
    users, types = ids["users"], ids["types"]
    volume = figures["conversations"]
    assert volume["total"] == 6
    assert [(e["type"], e["count"]) for e in volume["by_type"]] == [("Cards", 3), ("Payments", 3)]
    assert [(e["channel"], e["count"]) for e in volume["by_channel"]] == [
        ("webchat", 4),
        ("whatsapp", 2),
    ]
    assert sorted(
        (e["type_id"], e["channel"], e["count"]) for e in volume["by_type_channel"]
    ) == sorted(
        [
            (types["payments"], "webchat", 2),
            (types["payments"], "whatsapp", 1),
            (types["cards"], "whatsapp", 1),
            (types["cards"], "webchat", 2),
        ]
    )
    assert figures["period"]["bucket"] == "day"
    assert [(e["start"], e["count"]) for e in volume["over_time"]] == [
        ("2026-03-02", 2),
        ("2026-03-03", 1),
        ("2026-03-04", 1),
        ("2026-03-05", 1),
        ("2026-03-06", 1),
        ("2026-03-07", 0),
        ("2026-03-08", 0),
    ]
    replies = [60, 120, 180, 240, 600]
    assert figures["first_response"] == {
        "count": 5,
        "mean_s": 240.0,
        "median_s": 180.0,
        "p90_s": round(pct(replies, 0.9), 1),
        "unanswered": 1,
    }
    assert figures["first_response"]["p90_s"] == 456.0
    # closed in the period: 1, 2, 3, 4 and 7 (opened the day before)
    resolutions = [600, 1200, 1800, 3600, 90000]
    assert figures["resolution"] == {
        "count": 5,
        "mean_s": 19440.0,
        "median_s": 1800.0,
        "p90_s": 55440.0,
    }
    assert pct(resolutions, 0.9) == 55440.0
    assert [
        (e["id"], e["conversations"], e["closed"], e["answered"]) for e in figures["operators"]
    ] == [
        (users["ben"], 3, 2, 3),
        (users["ana"], 2, 2, 2),
    ]
    assert [(e["reason"], e["count"]) for e in figures["closes_by_reason"]] == [
        ("Solved", 3),
        ("Duplicate", 2),
    ]
    assert figures["out_of_hours"] == {
        "total": 3,
        "conversations": 3,
        "held": 2,
        "closed": 1,
        "released": 1,
        "autoreplies": 2,
    }
    backoffice = figures["backoffice"]
    assert backoffice["total"] == 5
    assert {e["action_type"]: e["by_status"] for e in backoffice["by_type"]} == {
        "block_user": {"done": 1, "rejected": 1},
        "reset_password": {"failed": 1},
        "temporary_limits": {"expired": 1},
        "stop_cheque": {"pending": 1},
    }
    assert backoffice["by_type"][0]["label"] == "Inactivate (block) user"
    assert backoffice["by_status"] == {
        "done": 1,
        "expired": 1,
        "failed": 1,
        "pending": 1,
        "rejected": 1,
    }
    # decided by a checker: 300, 900, 60 s (not the expired one, although picked up)
    assert backoffice["approval_turnaround"] == {
        "count": 3,
        "mean_s": 420.0,
        "median_s": 300.0,
        "p90_s": 780.0,
    }


def check_filtered(payments: dict[str, Any], whatsapp: dict[str, Any], ids: dict) -> None:
    assert payments["period"]["type"] == ids["types"]["payments"]
    assert payments["conversations"]["total"] == 3
    assert [e["type"] for e in payments["conversations"]["by_type"]] == ["Payments"]
    assert payments["first_response"]["median_s"] == 120.0
    assert payments["first_response"]["p90_s"] == 168.0
    assert [(e["reason"], e["count"]) for e in payments["closes_by_reason"]] == [
        ("Duplicate", 2),
        ("Solved", 2),
    ]
    assert payments["out_of_hours"]["total"] == 1
    assert payments["backoffice"]["total"] == 4  # on conversations 1 and 3

    assert whatsapp["period"]["channel"] == "whatsapp"
    assert whatsapp["conversations"]["total"] == 2
    assert whatsapp["first_response"]["median_s"] == 210.0
    assert whatsapp["first_response"]["p90_s"] == 234.0
    assert whatsapp["resolution"]["count"] == 2
    assert whatsapp["out_of_hours"]["total"] == 0
    assert whatsapp["backoffice"]["by_status"] == {"done": 1, "failed": 1, "rejected": 1}


def check_live(live: dict[str, Any], ids: dict[str, Any]) -> None:
    users = ids["users"]
    assert live["at"] == LIVE_NOW.isoformat()
    queue = {e["type"]: e for e in live["queue"]}
    # Cards: 10 waits since its requeue (T0+10d+600s → 400 s), 6 is held out of hours.
    assert queue["Cards"]["queued"] == 1
    assert queue["Cards"]["longest_wait_s"] == 400.0
    assert queue["Cards"]["held"] == 1
    assert queue["Payments"]["queued"] == 1
    assert queue["Payments"]["longest_wait_s"] == 500.0
    assert queue["Payments"]["held"] == 0
    assert (live["queued_total"], live["held_total"], live["longest_wait_s"]) == (2, 1, 500.0)
    assert [(o["id"], o["presence"], o["load"], o["capacity"]) for o in live["operators"]] == [
        (users["ana"], "online", 0, 3),
        (users["ben"], "online", 1, 5),
        (users["carl"], "away", 0, 4),
    ]
    assert (live["online"], live["away"], live["load"], live["capacity"]) == (2, 1, 1, 8)


# --- PostgreSQL, in process ---------------------------------------------------------------
@pytest.fixture
def scenario(db) -> dict[str, Any]:
    return scenario_run()


def test_period_figures(scenario):
    check_period(scenario["all"], scenario["ids"])


def test_filters(scenario):
    check_filtered(scenario["payments"], scenario["whatsapp"], scenario["ids"])


def test_live(scenario):
    check_live(scenario["live"], scenario["ids"])


def test_same_figures_on_sqlite(tmp_path):
    from tests.harness import sqlite_probe_results

    results = sqlite_probe_results("tests.hub.test_dashboard", tmp_path)
    check_period(results["all"], results["ids"])
    check_filtered(results["payments"], results["whatsapp"], results["ids"])
    check_live(results["live"], results["ids"])


def test_empty_period_has_no_percentiles(db, staff):
    from hub import dashboard
    from hub.roles import Role

    period = dashboard.period_parse(raw_from="2020-01-01", raw_to="2020-02-01")
    figures = dashboard.dashboard_period(actor=staff("boss", Role.ADMIN), period=period)
    assert figures["conversations"]["total"] == 0
    assert figures["first_response"] == {
        "count": 0,
        "mean_s": None,
        "median_s": None,
        "p90_s": None,
        "unanswered": 0,
    }
    assert figures["backoffice"]["approval_turnaround"]["median_s"] is None


def test_long_periods_count_by_week_then_by_month(db, staff):
    from hub import dashboard
    from hub.roles import Role

    boss = staff("boss", Role.ADMIN)
    year = dashboard.period_parse(raw_from="2026-01-01", raw_to="2026-12-31")
    weeks = dashboard.dashboard_period(actor=boss, period=year)["conversations"]["over_time"]
    assert (year.bucket, len(weeks), weeks[0], weeks[-1]["start"]) == (
        "week",
        53,
        {"start": "2025-12-29", "count": 0},  # the Monday of the week holding 1 January
        "2026-12-28",
    )
    longer = dashboard.period_parse(raw_from="2026-01-15", raw_to="2027-02-01")
    months = dashboard.dashboard_period(actor=boss, period=longer)["conversations"]
    assert longer.bucket == "month"
    assert [e["start"] for e in months["over_time"]][:3] == [
        "2026-01-01",
        "2026-02-01",
        "2026-03-01",
    ]
    assert len(months["over_time"]) == 13


def test_query_count_does_not_grow_with_rows(scenario, django_assert_max_num_queries):
    from django.contrib.auth import get_user_model

    from hub import dashboard

    boss = get_user_model().objects.get(pk=scenario["ids"]["users"]["boss"])
    period = dashboard.period_parse(raw_from=PERIOD["from"], raw_to=PERIOD["to"])
    with django_assert_max_num_queries(14):
        dashboard.dashboard_period(actor=boss, period=period)
    with django_assert_max_num_queries(5):
        dashboard.dashboard_live(actor=boss, now=LIVE_NOW)


# --- HTTP ---------------------------------------------------------------------------------
@pytest.fixture
def signed_in(db, client):
    """``signed_in("op", "Operator")``: a user of that role (no password hash: the slow
    part) signed in on ``client``."""
    from django.contrib.auth import get_user_model

    from hub.roles import Role, role_groups_ensure

    def sign_in(username: str, role: str) -> Any:
        user = get_user_model().objects.create(username=username)
        user.groups.set([role_groups_ensure()[Role(role)]])
        client.force_login(user)
        return user

    return sign_in


def test_endpoints_serve_the_figures_and_the_csv(client, scenario):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="coord"))
    period = client.get("/api/dashboard/period/", PERIOD)
    assert period.status_code == 200
    assert period.json()["closes_by_reason"][0] == {
        "reason_id": period.json()["closes_by_reason"][0]["reason_id"],
        "reason": "Solved",
        "count": 3,
    }
    live = client.get("/api/dashboard/live/")
    assert live.status_code == 200
    assert {"queue", "operators", "online", "load", "capacity"} <= set(live.json())
    exported = client.get("/api/dashboard/period.csv", {**PERIOD, "channel": "whatsapp"})
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("text/csv")
    assert 'filename="dashboard_2026-03-02_2026-03-09.csv"' in exported["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    assert rows[0] == ["section", "item", "detail", "value"]
    assert ["period", "channel", "", "whatsapp"] in rows
    assert ["conversations", "total", "", "2"] in rows
    assert ["first_response", "median_s", "", "210.0"] in rows
    assert ["closes_by_reason", "Solved", "", "1"] in rows
    assert ["backoffice_by_type", "Inactivate (block) user", "rejected", "1"] in rows
    assert ["approval_turnaround", "count", "", "3"] in rows
    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert b'id="dashboard-main"' in page.content


def test_csv_cells_never_start_a_formula():
    from hub.dashboard import dashboard_period_rows

    data = {
        "period": {"from": "a", "to": "b", "type": None, "channel": None, "bucket": "day"},
        "conversations": {"total": 0, "by_type": [], "by_channel": [], "over_time": []},
        "first_response": {},
        "resolution": {},
        "operators": [{"name": "=HYPERLINK(1)", "conversations": 1, "closed": 0, "answered": 0}],
        "closes_by_reason": [{"reason": "+cmd", "count": 1}],
        "out_of_hours": {},
        "backoffice": {"total": 0, "by_type": [], "approval_turnaround": {}},
    }
    rows = dashboard_period_rows(data)
    assert ["operators", "'=HYPERLINK(1)", "conversations", 1] in rows
    assert ["closes_by_reason", "'+cmd", "", 1] in rows


@pytest.mark.parametrize(
    "url", ["/api/dashboard/live/", "/api/dashboard/period/", "/api/dashboard/period.csv"]
)
def test_operators_are_refused(client, signed_in, url):
    signed_in("op", "Operator")
    response = client.get(url, PERIOD)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_operator_gets_the_forbidden_page_and_anonymous_the_login(client, signed_in):
    anonymous = client.get("/dashboard/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert client.get("/api/dashboard/live/").json()["code"] == "not_authenticated"
    assert client.get("/api/dashboard/period/", PERIOD).status_code == 401
    signed_in("op", "Operator")
    page = client.get("/dashboard/")
    assert page.status_code == 403
    assert b"not allowed" in page.content


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ({"to": "2026-03-09"}, "missing_field", "from"),
        ({"from": "2026-03-02"}, "missing_field", "to"),
        ({"from": "2026-13-02", "to": "2026-03-09"}, "invalid_value", "from"),
        ({"from": "2026-02-30", "to": "2026-03-09"}, "invalid_value", "from"),
        ({"from": "yesterday", "to": "2026-03-09"}, "invalid_value", "from"),
        ({"from": "2026-03-02", "to": "2026-03-09T25:00"}, "invalid_value", "to"),
        ({"from": "2026-03-09", "to": "2026-03-09"}, "invalid_value", "to"),
        ({"from": "2026-03-09", "to": "2026-03-02"}, "invalid_value", "to"),
        ({"from": "2024-01-01", "to": "2026-03-02"}, "invalid_value", "to"),
        ({**PERIOD, "type": "cards"}, "invalid_value", "type"),
        ({**PERIOD, "type": "999999"}, "invalid_value", "type"),
        ({**PERIOD, "channel": "fax"}, "invalid_value", "channel"),
    ],
)
def test_bad_input_is_refused_precisely(client, signed_in, query, code, field):
    signed_in("coord", "Coordinator")
    for url in ("/api/dashboard/period/", "/api/dashboard/period.csv"):
        response = client.get(url, query)
        assert response.status_code == 400, response.content
        body = response.json()
        assert (body["code"], body["data"]["field"]) == (code, field), body
        assert body["message"]


def test_datetimes_with_offsets_are_accepted(client, signed_in):
    signed_in("coord", "Coordinator")
    response = client.get(
        "/api/dashboard/period/",
        {"from": "2026-03-02T00:00:00+01:00", "to": "2026-03-02T12:30:00Z"},
    )
    assert response.status_code == 200
    period = response.json()["period"]
    assert (period["from"], period["to"]) == (
        "2026-03-02T00:00:00+01:00",
        "2026-03-02T12:30:00+00:00",
    )


def test_post_is_not_allowed(client, signed_in):
    signed_in("coord", "Coordinator")
    assert client.post("/api/dashboard/live/").status_code == 405


# --- the SQLite probe ---------------------------------------------------------------------
def main() -> None:
    """``python -m tests.hub.test_dashboard``: the scenario on the database the
    environment names (a fresh SQLite file), printed as JSON."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    from django.core.serializers.json import DjangoJSONEncoder
    from django.db import connection

    results = json.loads(json.dumps(scenario_run(), cls=DjangoJSONEncoder))
    print(json.dumps({"vendor": connection.vendor, "results": results}))


if __name__ == "__main__":
    main()
