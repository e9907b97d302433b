"""Scheduling REST endpoints (scheduling/views.py): parsing, status codes, error bodies, and
that each call reached its service.  The rules are tested at the service level."""

from __future__ import annotations

import json

import pytest

from hub.roles import Role
from routing.models import QueryType
from scheduling.models import Schedule, SpecialDay, WeeklyInterval
from tests.scheduling.factories import OFFICE, REPLIES

pytestmark = pytest.mark.django_db

SCHEDULE = {
    "version": 0,
    "time_zone": "Europe/Madrid",
    "weekly": OFFICE,
    "refer_when_open": True,
    "autoreplies": REPLIES,
}


def send(client, method, url, body=None):
    return getattr(client, method)(
        url, data=json.dumps(body or {}), content_type="application/json"
    )


@pytest.fixture
def coordinator(client, staff):
    client.force_login(staff("carla", Role.COORDINATOR))
    return client


def error(response) -> tuple[int, str, dict]:
    body = response.json()
    return response.status_code, body["code"], body["data"]


def test_put_then_get_schedule_with_versions(coordinator):
    created = send(coordinator, "put", "/api/hours/schedule/", SCHEDULE)
    assert created.status_code == 200
    assert created.json()["version"] == 1
    got = coordinator.get("/api/hours/schedule/").json()
    assert got["time_zone"] == "Europe/Madrid" and len(got["weekly"]) == 10
    assert set(got["now"]) >= {"open", "until", "next_opening", "rule", "summary"}
    # A second coordinator still holding version 0 (or 1 after someone saved 2).
    send(coordinator, "put", "/api/hours/schedule/", {**SCHEDULE, "version": 1})
    stale = send(coordinator, "put", "/api/hours/schedule/", {**SCHEDULE, "version": 1})
    assert error(stale) == (409, "stale_version", {"field": "version", "current_version": 2})
    listed = coordinator.get("/api/hours/").json()["schedules"]
    assert [s["query_type"] for s in listed] == [None]


def test_type_override_and_delete(coordinator):
    QueryType.objects.create(code="claims", name="Claims")
    send(coordinator, "put", "/api/hours/schedule/", SCHEDULE)
    typed = send(
        coordinator, "put", "/api/hours/schedule/?query_type=claims", {**SCHEDULE, "weekly": []}
    )
    assert typed.json()["query_type"]["code"] == "claims"
    assert error(send(coordinator, "put", "/api/hours/schedule/?query_type=nope", SCHEDULE))[
        :2
    ] == (404, "not_found")
    stale = coordinator.delete("/api/hours/schedule/?query_type=claims&version=9")
    assert error(stale)[:2] == (409, "stale_version")
    assert coordinator.delete("/api/hours/schedule/?query_type=claims&version=1").status_code == 204
    assert Schedule.objects.count() == 1
    assert error(coordinator.delete("/api/hours/schedule/"))[:2] == (400, "missing_field")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"time_zone": "Europe/Madird"}, ("invalid_value", "time_zone", "unknown_time_zone")),
        (
            {"weekly": [{"weekday": 0, "start": "10:00", "end": "10:00"}]},
            ("invalid_value", "weekly[0]", "empty"),
        ),
        (
            {"weekly": [{"weekday": 0, "start": "18:00", "end": "09:00"}]},
            ("invalid_value", "weekly[0]", "end_before_start"),
        ),
        (
            {
                "weekly": [
                    {"weekday": 0, "start": "09:00", "end": "14:00"},
                    {"weekday": 0, "start": "13:00", "end": "18:00"},
                ]
            },
            ("invalid_value", "weekly[1]", "overlap"),
        ),
        ({"weekly": "9-18"}, ("wrong_type", "weekly", None)),
        ({"version": None}, ("missing_field", "version", None)),
    ],
)
def test_bad_schedule_is_refused_and_nothing_saved(coordinator, change, expected):
    response = send(coordinator, "put", "/api/hours/schedule/", {**SCHEDULE, **change})
    status, code, data = error(response)
    assert status == 400
    assert (code, data["field"], data.get("reason")) == expected
    assert not Schedule.objects.exists() and not WeeklyInterval.objects.exists()


def test_special_days_endpoints(coordinator):
    send(coordinator, "put", "/api/hours/schedule/", SCHEDULE)
    created = send(
        coordinator,
        "post",
        "/api/hours/special-days/",
        {
            "date": "2026-12-24",
            "closed": False,
            "intervals": [{"start": "09:00", "end": "14:00"}],
            "label": "Christmas Eve",
        },
    )
    assert created.status_code == 201
    day = created.json()["special_day"]
    clash = send(coordinator, "post", "/api/hours/special-days/", {"date": "2026-12-24"})
    assert error(clash)[:2] == (409, "conflict")
    updated = send(
        coordinator,
        "put",
        f"/api/hours/special-days/{day['id']}/",
        {"version": 1, "date": "2026-12-24", "closed": True, "label": "Closed after all"},
    )
    assert updated.json()["special_day"]["closed"] is True
    again = send(
        coordinator,
        "put",
        f"/api/hours/special-days/{day['id']}/",
        {"version": 1, "date": "2026-12-24"},
    )
    assert error(again)[:2] == (409, "stale_version")
    assert len(coordinator.get("/api/hours/special-days/").json()["special_days"]) == 1
    assert coordinator.delete(f"/api/hours/special-days/{day['id']}/").status_code == 204
    assert not SpecialDay.objects.exists()
    missing = coordinator.delete(f"/api/hours/special-days/{day['id']}/")
    assert error(missing)[:2] == (404, "not_found")


def test_holidays_import_endpoint(coordinator):
    send(coordinator, "put", "/api/hours/schedule/", SCHEDULE)
    response = send(
        coordinator, "post", "/api/hours/holidays/import/", {"country": "ES", "year": 2026}
    )
    assert response.status_code == 201
    assert "2026-10-12" in {d["date"] for d in response.json()["created"]}
    bad = send(coordinator, "post", "/api/hours/holidays/import/", {"country": "XX", "year": 2026})
    assert error(bad) == (
        400,
        "invalid_value",
        {"field": "country", "reason": "unknown_country"},
    )


def test_preview_endpoint(coordinator):
    send(coordinator, "put", "/api/hours/schedule/", SCHEDULE)
    response = coordinator.get("/api/hours/preview/?at=2026-12-24T17:30")
    body = response.json()  # a Thursday: the weekday's hours
    assert (body["open"], body["summary"]) == (True, "open now until 18:00")
    assert body["rule"]["kind"] == "weekly" and body["until"] == "2026-12-24T18:00:00+01:00"
    utc = coordinator.get("/api/hours/preview/?at=2026-12-24T10:00Z").json()
    assert utc["open"] is True and utc["summary"] == "open now until 13:00"
    plus = coordinator.get("/api/hours/preview/?at=2026-12-24T11:00+01:00").json()
    assert plus["at"] == "2026-12-24T11:00:00+01:00"
    assert error(coordinator.get("/api/hours/preview/?at=tomorrow"))[:2] == (400, "invalid_value")
    send(coordinator, "post", "/api/hours/special-days/", {"date": "2026-12-24", "label": "Eve"})
    body = coordinator.get("/api/hours/preview/?at=2026-12-24T17:30").json()
    assert (body["open"], body["summary"]) == (False, "closed; next opening Friday 09:00")
    assert (body["rule"]["kind"], body["rule"]["label"]) == ("special_day", "Eve")


def test_operators_and_anonymous_are_refused(client, staff):
    assert error(client.get("/api/hours/"))[:2] == (401, "not_authenticated")
    client.force_login(staff("omar", Role.OPERATOR))
    for response in (
        client.get("/api/hours/"),
        client.get("/api/hours/preview/"),
        send(client, "put", "/api/hours/schedule/", SCHEDULE),
        send(client, "post", "/api/hours/special-days/", {"date": "2026-12-24"}),
    ):
        assert error(response)[:2] == (403, "permission_denied")
    assert not Schedule.objects.exists()
