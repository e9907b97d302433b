"""scheduling.services and selectors: schedules with optimistic versions, special days,
the holidays import, today's hours for the knowledge base, and bad input that saves
nothing."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from django.utils import timezone

from hub.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from hub.roles import Role
from routing.models import QueryType, ResolutionReason
from scheduling import selectors, services
from scheduling.models import Autoreply, Schedule, SpecialDay, WeeklyInterval
from tests.scheduling.factories import ALWAYS_OPEN, CLOSED, OFFICE, REPLIES, hours_set

pytestmark = pytest.mark.django_db


def _save(**fields):
    values = {
        "actor": None,
        "query_type_code": None,
        "version": 0,
        "time_zone": "Europe/Madrid",
        "weekly": OFFICE,
        "autoreplies": REPLIES,
    }
    values.update(fields)
    return services.schedule_save(**values)


def test_save_creates_then_replaces_with_versions(staff):
    coordinator = staff("carla", Role.COORDINATOR)
    first = _save(actor=coordinator)
    assert first["version"] == 1
    assert [(w["weekday"], w["start"], w["end"]) for w in first["weekly"][:2]] == [
        (0, "09:00", "13:00"),
        (0, "14:00", "18:00"),
    ]
    assert first["autoreplies"] == REPLIES
    assert first["now"]["rule"]["kind"] in {"weekly", "special_day", "recurring_special_day"}
    second = _save(actor=coordinator, version=1, weekly=ALWAYS_OPEN, time_zone="UTC")
    assert second["version"] == 2 and second["time_zone"] == "UTC"
    assert WeeklyInterval.objects.count() == 7
    assert Schedule.objects.get().updated_by == coordinator


def test_second_coordinator_with_an_old_version_gets_stale_version_and_nothing_is_saved():
    _save()
    _save(version=1, time_zone="UTC")  # coordinator A saves first
    with pytest.raises(Conflict) as caught:  # coordinator B loaded version 1 too
        _save(version=1, weekly=ALWAYS_OPEN, time_zone="America/Santiago")
    assert caught.value.code == "stale_version"
    assert caught.value.data == {"field": "version", "current_version": 2}
    schedule = Schedule.objects.get()
    assert (schedule.version, schedule.time_zone) == (2, "UTC")
    assert WeeklyInterval.objects.count() == len(OFFICE)
    # Creating over an existing schedule (version 0) is stale too, and so is saving one
    # that was deleted meanwhile.
    with pytest.raises(Conflict):
        _save(version=0)
    services.schedule_delete(actor=None, query_type_code=None, version=2)
    with pytest.raises(Conflict):
        _save(version=2)


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "unknown_time_zone", "time_zone"),
        (
            {"weekly": [{"weekday": 0, "start": "09:00", "end": "09:00"}]},
            "empty",
            "weekly[0]",
        ),
        (
            {"weekly": [{"weekday": 0, "start": "18:00", "end": "09:00"}]},
            "end_before_start",
            "weekly[0]",
        ),
        (
            {
                "weekly": [
                    {"weekday": 2, "start": "09:00", "end": "14:00"},
                    {"weekday": 2, "start": "13:00", "end": "18:00"},
                ]
            },
            "overlap",
            "weekly[1]",
        ),
        (
            {"weekly": [{"weekday": 0, "start": "9:00", "end": "18:00"}]},
            "bad_time",
            "weekly[0].start",
        ),
        ({"autoreplies": {"en": "Back {tomorrow}"}}, "unknown_placeholder", "autoreplies.en"),
        ({"autoreplies": {"english": "Closed"}}, "bad_language", "autoreplies.english"),
        ({"autoreplies": {"en": "  "}}, "empty", "autoreplies.en"),
    ],
)
def test_bad_input_is_refused_precisely_and_nothing_is_saved(fields, reason, field):
    before = _save(weekly=ALWAYS_OPEN, time_zone="UTC")
    with pytest.raises(ValidationFailed) as caught:
        _save(version=before["version"], **fields)
    assert caught.value.code == "invalid_value"
    assert (caught.value.data["reason"], caught.value.data["field"]) == (reason, field)
    schedule = Schedule.objects.get()
    assert (schedule.version, schedule.time_zone) == (1, "UTC")
    assert WeeklyInterval.objects.count() == 7
    assert Autoreply.objects.count() == 2


def test_crossing_midnight_must_be_asked_for_and_24_00_means_midnight():
    saved = _save(
        weekly=[
            {"weekday": 4, "start": "22:00", "end": "02:00", "crosses_midnight": True},
            {"weekday": 5, "start": "18:00", "end": "24:00"},
        ]
    )
    assert saved["weekly"][1] == {
        "weekday": 5,
        "start": "18:00",
        "end": "00:00",
        "crosses_midnight": True,
    }


def test_closing_out_of_hours_needs_a_valid_resolution():
    reason = ResolutionReason.objects.create(name="Out of hours")
    claims = QueryType.objects.create(code="claims", name="Claims")
    only_claims = ResolutionReason.objects.create(name="Claim registered")
    only_claims.query_types.set([claims])
    with pytest.raises(ValidationFailed) as caught:
        _save(refer_when_open=False)
    assert caught.value.code == "resolution_required"
    with pytest.raises(ValidationFailed):  # not valid for every type
        _save(refer_when_open=False, closed_resolution_id=only_claims.pk)
    saved = _save(refer_when_open=False, closed_resolution_id=reason.pk)
    assert saved["closed_resolution_id"] == reason.pk
    typed = _save(
        query_type_code="claims", refer_when_open=False, closed_resolution_id=only_claims.pk
    )
    assert typed["query_type"]["code"] == "claims"


def test_only_coordinators_and_admins_manage_hours(staff):
    operator = staff("omar", Role.OPERATOR)
    for call in (
        lambda: _save(actor=operator),
        lambda: selectors.schedule_get(actor=operator, query_type_code=None),
        lambda: selectors.hours_preview(actor=operator, query_type_code=None, at=None),
        lambda: services.holidays_import(
            actor=operator, query_type_code=None, country="ES", year=2026
        ),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert not Schedule.objects.exists()
    admin = staff("ada", Role.ADMIN)
    assert _save(actor=admin)["version"] == 1


def test_unknown_query_type_and_missing_schedule_are_not_found():
    with pytest.raises(NotFound):
        _save(query_type_code="nope")
    with pytest.raises(NotFound):
        selectors.schedule_get(actor=None, query_type_code=None)


# --- special days -------------------------------------------------------------------------------
def test_special_days_crud_with_versions_and_clashes():
    _save()
    eve = services.special_day_create(
        actor=None,
        query_type_code=None,
        day="2026-12-24",
        closed=False,
        intervals=[{"start": "09:00", "end": "14:00"}],
        label="Christmas Eve",
    )
    assert eve["intervals"] == [{"start": "09:00", "end": "14:00", "crosses_midnight": False}]
    christmas = services.special_day_create(
        actor=None, query_type_code=None, day="2020-12-25", recurring_yearly=True, label="Xmas"
    )
    with pytest.raises(Conflict):  # same date
        services.special_day_create(actor=None, query_type_code=None, day="2026-12-24")
    with pytest.raises(Conflict):  # another recurring 25 December
        services.special_day_create(
            actor=None, query_type_code=None, day="2024-12-25", recurring_yearly=True
        )
    # A one-off day may override the recurring one in its year.
    services.special_day_create(
        actor=None, query_type_code=None, day="2026-12-25", label="This year too"
    )
    updated = services.special_day_update(
        actor=None,
        special_day_id=christmas["id"],
        version=1,
        day="2020-12-25",
        recurring_yearly=True,
        label="Christmas",
    )
    assert (updated["label"], updated["version"]) == ("Christmas", 2)
    with pytest.raises(Conflict) as caught:
        services.special_day_update(
            actor=None, special_day_id=christmas["id"], version=1, day="2020-12-25"
        )
    assert caught.value.code == "stale_version"
    services.special_day_delete(actor=None, special_day_id=eve["id"])
    with pytest.raises(NotFound):
        services.special_day_delete(actor=None, special_day_id=eve["id"])
    listed = selectors.special_days_list(actor=None, query_type_code=None)
    assert [d["date"] for d in listed] == ["2020-12-25", "2026-12-25"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"day": "2026-02-30"}, "bad_date"),
        ({"day": "2026-12-24", "closed": False}, "empty"),
        (
            {
                "day": "2026-12-24",
                "closed": True,
                "intervals": [{"start": "09:00", "end": "10:00"}],
            },
            "closed_with_intervals",
        ),
        (
            {
                "day": "2026-12-24",
                "closed": False,
                "intervals": [
                    {"start": "09:00", "end": "12:00"},
                    {"start": "11:00", "end": "13:00"},
                ],
            },
            "overlap",
        ),
        (
            {
                "day": "2026-12-24",
                "closed": False,
                "intervals": [{"start": "12:00", "end": "11:00"}],
            },
            "end_before_start",
        ),
    ],
)
def test_bad_special_days_are_refused(fields, reason):
    _save()
    with pytest.raises(ValidationFailed) as caught:
        services.special_day_create(actor=None, query_type_code=None, **fields)
    assert caught.value.data["reason"] == reason
    assert not SpecialDay.objects.exists()


def test_special_day_needs_a_schedule():
    with pytest.raises(NotFound):
        services.special_day_create(actor=None, query_type_code=None, day="2026-12-24")


# --- holidays -------------------------------------------------------------------------------------
def test_holidays_import_adds_closed_days_once():
    _save()
    services.special_day_create(
        actor=None, query_type_code=None, day="2026-12-25", label="Our own Christmas"
    )
    result = services.holidays_import(
        actor=None, query_type_code=None, country="es", year=2026, subdivision="MD"
    )
    dates = {d["date"] for d in result["created"]}
    assert {"2026-01-01", "2026-01-06", "2026-05-02"} <= dates  # 2 May: Madrid's day
    assert result["skipped"] == [{"date": "2026-12-25", "label": "Christmas Day"}]
    assert result["source"] == "holidays:ES-MD"
    assert SpecialDay.objects.get(date=date(2026, 1, 6)).closed
    again = services.holidays_import(
        actor=None, query_type_code=None, country="ES", year=2026, subdivision="MD"
    )
    assert again["created"] == [] and len(again["skipped"]) == len(dates) + 1
    # The imported day closes the service.
    preview = selectors.hours_preview(actor=None, query_type_code=None, at=datetime(2026, 1, 6, 10))
    assert not preview["open"] and preview["rule"]["label"] == "Epiphany"


def test_holidays_import_unknown_country_or_region():
    _save()
    with pytest.raises(ValidationFailed) as caught:
        services.holidays_import(actor=None, query_type_code=None, country="XX", year=2026)
    assert caught.value.data["reason"] == "unknown_country"
    with pytest.raises(ValidationFailed) as caught:
        services.holidays_import(
            actor=None, query_type_code=None, country="ES", year=2026, subdivision="ZZ"
        )
    assert caught.value.data["reason"] == "unknown_subdivision"
    assert "MD" in caught.value.data["allowed"]
    assert not SpecialDay.objects.exists()


def test_holidays_import_command(capsys):
    from django.core.management import call_command

    _save()
    call_command("holidays_import", "--country", "CL", "--year", "2026")
    out = capsys.readouterr().out
    assert "2026-09-18" in out and "holidays added" in out
    assert SpecialDay.objects.filter(source="holidays:CL").exists()


# --- reads used elsewhere -------------------------------------------------------------------------
def test_service_open_for_follows_the_type_override_else_the_global_hours():
    claims = QueryType.objects.create(code="claims", name="Claims")
    payments = QueryType.objects.create(code="payments", name="Payments")
    assert selectors.service_open_for(claims.pk)  # nothing configured: always open
    hours_set(ALWAYS_OPEN)
    hours_set(CLOSED, query_type="claims")
    assert not selectors.service_open_for(claims.pk)
    assert selectors.service_open_for(payments.pk)
    assert selectors.service_open_for(None)
    hours_set(CLOSED)
    assert not selectors.service_open_for(payments.pk)


def test_today_text_for_the_knowledge_base():
    assert selectors.opening_hours_today_text() == ""  # nothing configured: the fallback
    weekday = timezone.now().astimezone(__import__("zoneinfo").ZoneInfo("UTC")).weekday()
    hours_set(
        [
            {"weekday": weekday, "start": "09:00", "end": "13:00"},
            {"weekday": weekday, "start": "14:00", "end": "18:00"},
        ],
        time_zone="UTC",
    )
    assert selectors.opening_hours_today_text() == "09:00\u201313:00, 14:00\u201318:00"
    hours_set(CLOSED, time_zone="UTC")
    assert selectors.opening_hours_today_text() == "closed today"
    hours_set(ALWAYS_OPEN, time_zone="UTC")
    assert selectors.opening_hours_today_text() == "00:00\u201324:00"


def test_preview_reads_a_naive_time_in_the_schedules_zone():
    _save(weekly=OFFICE)
    services.special_day_create(
        actor=None,
        query_type_code=None,
        day="2026-12-24",
        closed=False,
        intervals=[{"start": "09:00", "end": "14:00"}],
        label="Christmas Eve",
    )
    result = selectors.hours_preview(
        actor=None, query_type_code=None, at=datetime(2026, 12, 24, 17, 30)
    )
    assert result["at"] == "2026-12-24T17:30:00+01:00"
    assert result["open"] is False
    assert result["next_opening"] == "2026-12-25T09:00:00+01:00"
    assert result["rule"]["kind"] == "special_day"
    assert result["summary"] == "closed; next opening Friday 09:00"
