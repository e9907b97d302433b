"""The coordinators' opening-hours page (scheduling/views.py ``hours_page``) and the two
endpoints it added: the holidays import preview and the list of countries.  The page's
behaviour in a browser is tested in tests/browser/test_hours_page.py."""

from __future__ import annotations

import pytest

from hub.roles import Role
from scheduling.models import SpecialDay
from scheduling.services import special_day_create
from tests.scheduling.factories import OFFICE, hours_set

pytestmark = pytest.mark.django_db

PAGE = "/coordinator/hours/"


def test_coordinator_gets_the_page(client, staff):
    client.force_login(staff("carla", Role.COORDINATOR))
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="schedule-form"' in html and 'id="calendar"' in html
    assert "scheduling/hours.js" in html and "scheduling/hours.css" in html
    assert '<option value="Europe/Madrid">' in html  # the time zone suggestions


def test_admin_gets_the_page(client, staff):
    client.force_login(staff("ada", Role.ADMIN))
    assert client.get(PAGE).status_code == 200


def test_operator_is_refused_with_a_clear_page(client, staff):
    client.force_login(staff("omar", Role.OPERATOR))
    response = client.get(PAGE)
    assert response.status_code == 403
    html = response.content.decode()
    assert "No access to opening hours" in html
    assert "Only coordinators and admins" in html
    assert 'id="schedule-form"' not in html


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/coordinator/hours/"


def test_console_links_the_page_only_for_those_who_may_edit_hours(client, staff):
    client.force_login(staff("carla", Role.COORDINATOR))
    assert 'href="/coordinator/hours/"' in client.get("/console/").content.decode()
    client.force_login(staff("omar", Role.OPERATOR))
    assert 'href="/coordinator/hours/"' not in client.get("/console/").content.decode()


# --- GET /api/hours/holidays/ (the import's preview) -------------------------------------------
@pytest.fixture
def coordinator(client, staff):
    client.force_login(staff("carla", Role.COORDINATOR))
    return client


def test_holidays_preview_counts_new_and_taken_dates_and_writes_nothing(coordinator):
    hours_set(OFFICE)
    special_day_create(actor=None, query_type_code=None, day="2026-12-25", label="Ours")
    response = coordinator.get("/api/hours/holidays/?country=es&year=2026")
    assert response.status_code == 200
    body = response.json()
    assert body["country"] == "ES" and body["source"] == "holidays:ES" and body["year"] == 2026
    by_date = {item["date"]: item for item in body["holidays"]}
    new_year = {"date": "2026-01-01", "label": "New Year's Day", "taken": False}
    assert by_date["2026-01-01"] == new_year
    assert by_date["2026-12-25"]["taken"] is True
    assert body["skipped"] == 1
    assert body["new"] == len(body["holidays"]) - 1
    assert SpecialDay.objects.count() == 1
    # The import then does what the preview announced.
    imported = coordinator.post(
        "/api/hours/holidays/import/",
        data={"country": "ES", "year": 2026},
        content_type="application/json",
    ).json()
    assert len(imported["created"]) == body["new"]
    assert [item["date"] for item in imported["skipped"]] == ["2026-12-25"]


def test_holidays_preview_errors(coordinator, staff, client):
    unknown_scope = coordinator.get("/api/hours/holidays/?country=ES&year=2026")
    assert unknown_scope.status_code == 404  # no schedule yet
    hours_set(OFFICE)
    cases = {
        "country=XX&year=2026": (400, "invalid_value", "country"),
        "country=ES&subdivision=ZZ&year=2026": (400, "invalid_value", "subdivision"),
        "country=ES&year=1800": (400, "invalid_value", "year"),
        "country=ES&year=soon": (400, "invalid_value", "year"),
        "year=2026": (400, "missing_field", "country"),
        "country=ES": (400, "missing_field", "year"),
    }
    for query, (status, code, field) in cases.items():
        response = coordinator.get(f"/api/hours/holidays/?{query}")
        body = response.json()
        assert (response.status_code, body["code"], body["data"]["field"]) == (
            status,
            code,
            field,
        ), query
    region = coordinator.get("/api/hours/holidays/?country=ES&subdivision=ZZ&year=2026").json()
    assert "MD" in region["data"]["allowed"]
    client.force_login(staff("omar", Role.OPERATOR))
    assert client.get("/api/hours/holidays/?country=ES&year=2026").status_code == 403


def test_holiday_countries(coordinator, staff, client):
    response = coordinator.get("/api/hours/holidays/countries/")
    assert response.status_code == 200
    countries = {item["code"]: item for item in response.json()["countries"]}
    assert countries["ES"]["name"] == "Spain"
    assert "MD" in countries["ES"]["subdivisions"]
    assert countries["CL"]["name"] == "Chile"
    assert all(len(code) == 2 for code in countries)
    client.force_login(staff("omar", Role.OPERATOR))
    assert client.get("/api/hours/holidays/countries/").status_code == 403
