"""Scheduling selectors (reads): the hours that govern a query type, whether the service is
open for it, today's hours as text, and the serialized schedules and previews of the API.

``service_open_for`` is the one question routing asks ("may a query of this type reach an
operator now?"); ``opening_hours_today_text`` feeds the knowledge base's reply variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import available_timezones

import holidays as holidays_lib
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from hub.exceptions import NotFound, PermissionDenied, ValidationFailed
from hub.roles import PERM_MANAGE_HOURS
from routing.models import QueryType
from scheduling import hours as logic
from scheduling.models import Schedule, SpecialDay


def hours_access(actor: AbstractBaseUser | None) -> None:
    """Coordinators and admins (``scheduling.manage_hours``); None: a management command."""
    if actor is not None and not actor.has_perm(PERM_MANAGE_HOURS):
        raise PermissionDenied("Only coordinators and admins can manage the opening hours.")


def _with_rules(schedules: QuerySet[Schedule]) -> QuerySet[Schedule]:
    return schedules.prefetch_related("weekly", "special_days")


def hours_of(schedule: Schedule) -> logic.Hours:
    """A schedule (with ``weekly`` and ``special_days`` prefetched) as a pure ``Hours``."""
    weekly: dict[int, list[logic.Span]] = {}
    for row in schedule.weekly.all():
        weekly.setdefault(row.weekday, []).append(
            logic.Span(row.start, row.end, row.crosses_midnight)
        )
    special: dict[Any, logic.SpecialRule] = {}
    recurring: dict[tuple[int, int], logic.SpecialRule] = {}
    for day in schedule.special_days.all():
        spans = () if day.closed else tuple(span_from_json(item) for item in day.intervals)
        rule = logic.SpecialRule(day.date, spans, day.label, day.recurring_yearly)
        if day.recurring_yearly:
            recurring[(day.date.month, day.date.day)] = rule
        else:
            special[day.date] = rule
    return logic.Hours(
        time_zone=schedule.time_zone,
        weekly={weekday: tuple(spans) for weekday, spans in weekly.items()},
        special=special,
        recurring=recurring,
    )


def span_from_json(item: dict[str, Any]) -> logic.Span:
    """A stored special-day interval (already validated when saved)."""
    start, _ = logic.time_parse(item["start"], field_name="start")
    end, to_midnight = logic.time_parse(item["end"], field_name="end", end=True)
    return logic.Span(start, end, bool(item.get("crosses_midnight")) or to_midnight)


def schedule_governing(*, query_type_id: int | None) -> Schedule | None:
    """The schedule that governs a query type: its own, else the global one (None: no hours
    are configured and the service is always open).  Rules prefetched."""
    scope = Q(query_type__isnull=True)
    if query_type_id is not None:
        scope |= Q(query_type_id=query_type_id)
    found = list(_with_rules(Schedule.objects.filter(scope)))
    own = [s for s in found if s.query_type_id is not None]
    return own[0] if own else (found[0] if found else None)


def service_open_for(query_type_id: int | None, at: datetime | None = None) -> bool:
    """Whether queries of this type may reach operators at ``at`` (now): the governing
    schedule is open, or no hours are configured.  Routing asks this before assigning."""
    schedule = schedule_governing(query_type_id=query_type_id)
    if schedule is None:
        return True
    return logic.is_open(hours_of(schedule), at or timezone.now())


def open_types_filter(at: datetime | None = None) -> Q | None:
    """A filter on conversations (``query_type_id``) keeping those whose service is open at
    ``at``, for routing's queue drain; None when every type is open (no filter needed)."""
    at = at or timezone.now()
    schedules = list(_with_rules(Schedule.objects.all()))
    if not schedules:
        return None
    global_open = True
    per_type: dict[int, bool] = {}
    for schedule in schedules:
        is_open = logic.is_open(hours_of(schedule), at)
        if schedule.query_type_id is None:
            global_open = is_open
        else:
            per_type[schedule.query_type_id] = is_open
    if global_open:
        closed = [type_id for type_id, is_open in per_type.items() if not is_open]
        return ~Q(query_type_id__in=closed) if closed else None
    return Q(query_type_id__in=[type_id for type_id, is_open in per_type.items() if is_open])


def opening_hours_today_text(query_type_id: int | None = None) -> str:
    """Today's hours (in the schedule's time zone) as the knowledge base shows them:
    ``"09:00-13:00, 14:00-18:00"`` or ``"closed today"``; ``""`` when no hours are
    configured, so a reply variable's fallback applies."""
    schedule = schedule_governing(query_type_id=query_type_id)
    if schedule is None:
        return ""
    rules = hours_of(schedule)
    today = timezone.now().astimezone(rules.tz).date()
    spans = logic.spans_on(rules, today)
    return ", ".join(span.label() for span in spans) if spans else "closed today"


# --- the API's reads -------------------------------------------------------------------------
def query_type_by_code(code: str | None) -> QueryType | None:
    """None for the global scope; NotFound for an unknown code."""
    if not code:
        return None
    query_type = QueryType.objects.filter(code=code).first()
    if query_type is None:
        raise NotFound(f"No query type with code '{code}'.", field="query_type", code_value=code)
    return query_type


def _scope_name(query_type: QueryType | None) -> str:
    return f"query type '{query_type.code}'" if query_type else "the global scope"


def schedule_for_scope(*, query_type: QueryType | None) -> Schedule | None:
    return _with_rules(
        Schedule.objects.filter(query_type=query_type).prefetch_related("autoreplies")
    ).first()


def schedule_require(*, query_type: QueryType | None) -> Schedule:
    schedule = schedule_for_scope(query_type=query_type)
    if schedule is None:
        raise NotFound(
            f"No opening hours are set for {_scope_name(query_type)}.",
            field="query_type",
            query_type=query_type.code if query_type else None,
        )
    return schedule


def span_dict(span: logic.Span) -> dict[str, Any]:
    return {
        "start": f"{span.start:%H:%M}",
        "end": f"{span.end:%H:%M}",
        "crosses_midnight": span.crosses_midnight,
    }


def special_day_dict(day: SpecialDay) -> dict[str, Any]:
    return {
        "id": day.pk,
        "date": day.date.isoformat(),
        "recurring_yearly": day.recurring_yearly,
        "closed": day.closed,
        "intervals": [] if day.closed else list(day.intervals),
        "label": day.label,
        "source": day.source,
        "version": day.version,
    }


def schedule_dict(schedule: Schedule, *, at: datetime | None = None) -> dict[str, Any]:
    """The API's schedule, with a preview of now (or ``at``)."""
    rules = hours_of(schedule)
    query_type = schedule.query_type
    return {
        "id": schedule.pk,
        "query_type": (
            {"id": query_type.pk, "code": query_type.code, "name": query_type.name}
            if query_type
            else None
        ),
        "time_zone": schedule.time_zone,
        "version": schedule.version,
        "refer_when_open": schedule.refer_when_open,
        "closed_resolution_id": schedule.closed_resolution_id,
        "default_language": schedule.default_language,
        "weekly": [
            {
                "weekday": row.weekday,
                **span_dict(logic.Span(row.start, row.end, row.crosses_midnight)),
            }
            for row in schedule.weekly.all()
        ],
        "autoreplies": {reply.language: reply.text for reply in schedule.autoreplies.all()},
        "special_days": [special_day_dict(day) for day in schedule.special_days.all()],
        "updated_at": schedule.updated_at.isoformat(),
        "now": logic.preview(rules, at or timezone.now()).as_dict(),
    }


def schedule_get(*, actor: AbstractBaseUser | None, query_type_code: str | None) -> dict[str, Any]:
    """One scope's schedule; NotFound when none is set (the global one: always open)."""
    hours_access(actor)
    schedule = schedule_require(query_type=query_type_by_code(query_type_code))
    return schedule_dict(schedule)


def schedules_list(*, actor: AbstractBaseUser | None) -> list[dict[str, Any]]:
    """Every schedule: the global one first, then the per-type overrides."""
    hours_access(actor)
    schedules = _with_rules(
        Schedule.objects.select_related("query_type")
        .prefetch_related("autoreplies")
        .order_by(F("query_type__code").asc(nulls_first=True))
    )
    now = timezone.now()
    return [schedule_dict(schedule, at=now) for schedule in schedules]


def special_days_list(
    *, actor: AbstractBaseUser | None, query_type_code: str | None
) -> list[dict[str, Any]]:
    hours_access(actor)
    schedule = schedule_require(query_type=query_type_by_code(query_type_code))
    return [special_day_dict(day) for day in schedule.special_days.all()]


def hours_preview(
    *, actor: AbstractBaseUser | None, query_type_code: str | None, at: datetime | None
) -> dict[str, Any]:
    """What happens at ``at`` (now) for a scope: open/closed, until when or the next
    opening, and the rule that applied.  A naive ``at`` is read in the schedule's time
    zone ("24 December at 17:30" as the bank means it)."""
    hours_access(actor)
    query_type = query_type_by_code(query_type_code)
    schedule = schedule_governing(query_type_id=query_type.pk if query_type else None)
    if schedule is None:
        moment = at or timezone.now()
        return {
            "at": moment.isoformat(),
            "open": True,
            "until": None,
            "next_opening": None,
            "rule": None,
            "summary": "open: no opening hours are configured",
            "schedule_id": None,
        }
    rules = hours_of(schedule)
    moment = at or timezone.now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=rules.tz)
    return {**logic.preview(rules, moment).as_dict(), "schedule_id": schedule.pk}


# --- public holidays ---------------------------------------------------------------------------
@dataclass(frozen=True)
class HolidayLookup:
    """A country's (and region's) public holidays of a year, as the ``holidays`` package
    names them; ``source`` is what imported special days record (``holidays:ES-MD``)."""

    country: str
    subdivision: str | None
    year: int
    source: str
    days: tuple[tuple[date, str], ...]


def holidays_lookup(
    *, country: str, year: int, subdivision: str | None = None, language: str | None = None
) -> HolidayLookup:
    """Ask the ``holidays`` package.  Raises ValidationFailed: year outside 1900-2200,
    unknown country or subdivision (``data.allowed``: the country's subdivisions)."""
    if not 1900 <= year <= 2200:
        raise ValidationFailed("year must be between 1900 and 2200.", field="year")
    country = country.strip().upper()
    subdivision = (subdivision or "").strip().upper() or None
    try:
        found = holidays_lib.country_holidays(
            country, subdiv=subdivision, years=year, language=language
        )
    except NotImplementedError as exc:
        wrong = "subdivision" if subdivision and "subdiv" in str(exc).lower() else "country"
        supported = holidays_lib.list_supported_countries()
        data: dict[str, Any] = {"field": wrong, "reason": f"unknown_{wrong}"}
        if wrong == "subdivision":
            data["allowed"] = sorted(supported.get(country, []))
        raise ValidationFailed(
            f"The holidays package does not know {wrong} "
            f"'{subdivision if wrong == 'subdivision' else country}'.",
            **data,
        ) from None
    source = f"holidays:{country}" + (f"-{subdivision}" if subdivision else "")
    days = tuple((day, name[:120]) for day, name in sorted(found.items()))
    return HolidayLookup(country, subdivision, year, source, days)


def special_day_dates_in_year(*, schedule_id: int, year: int) -> set[date]:
    """The dates of a year that already have a (one-off) special day: an import skips them."""
    return set(
        SpecialDay.objects.filter(schedule_id=schedule_id, date__year=year).values_list(
            "date", flat=True
        )
    )


def holidays_preview(
    *,
    actor: AbstractBaseUser | None,
    query_type_code: str | None,
    country: str,
    year: int,
    subdivision: str | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """What ``services.holidays_import`` would do now, without writing: each holiday with
    ``taken`` (a special day already covers its date, so it would be skipped) and the
    counts.  Raises PermissionDenied, NotFound (no schedule for the scope) and
    ValidationFailed as ``holidays_lookup``."""
    hours_access(actor)
    schedule = schedule_require(query_type=query_type_by_code(query_type_code))
    lookup = holidays_lookup(country=country, year=year, subdivision=subdivision, language=language)
    taken = special_day_dates_in_year(schedule_id=schedule.pk, year=year)
    days = [
        {"date": day.isoformat(), "label": name, "taken": day in taken} for day, name in lookup.days
    ]
    skipped = sum(1 for item in days if item["taken"])
    return {
        "country": lookup.country,
        "subdivision": lookup.subdivision,
        "year": year,
        "source": lookup.source,
        "holidays": days,
        "new": len(days) - skipped,
        "skipped": skipped,
    }


def time_zone_names() -> list[str]:
    """The IANA time zones a schedule accepts, sorted (the page's suggestions)."""
    return sorted(name for name in available_timezones() if "/" in name or name == "UTC")


def _country_name(module: str, code: str) -> str:
    return module.replace("_", " ").title() if module else code


def holiday_countries(*, actor: AbstractBaseUser | None) -> list[dict[str, Any]]:
    """The countries the ``holidays`` package knows (ISO 3166 alpha-2), by name, with their
    subdivision codes: the choices of the holidays import."""
    hours_access(actor)
    names: dict[str, str] = {}
    try:  # the registry is the package's own table of module → (class, alpha-2, alpha-3)
        from holidays.registry import COUNTRIES

        for module, entry in COUNTRIES.items():
            names[entry[1]] = _country_name(module, entry[1])
    except (ImportError, AttributeError, IndexError):  # another layout: codes only
        names = {}
    supported = holidays_lib.list_supported_countries(include_aliases=False)
    countries = [
        {"code": code, "name": names.get(code, code), "subdivisions": sorted(subdivisions)}
        for code, subdivisions in supported.items()
        if len(code) == 2
    ]
    return sorted(countries, key=lambda item: item["name"])
