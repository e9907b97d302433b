"""HTTP transport for scheduling: the coordinators' REST API for opening hours, and the
coordinators' opening-hours page that is built on it.

Each API view parses the request, lets ``staff_api`` check the login and calls one service
or selector, which checks ``scheduling.manage_hours``; HubErrors become ``{code, message,
data}`` in ``hub.errors.HubErrorMiddleware``.  The scope is ``?query_type=<code>`` (a type's
override) or nothing (the global schedule).

The page (``/coordinator/hours/``) is a shell: its script reads and writes everything
through the API above, so the rules live in one place (the services).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hub.errors import parse_json_body
from hub.exceptions import ErrorCode, PermissionDenied, ValidationFailed
from hub.roles import role_of
from hub.schemas import field
from hub.views import staff_api
from scheduling import selectors, services


def _scope(request: HttpRequest) -> str | None:
    return request.GET.get("query_type") or None


def _int_param(request: HttpRequest, name: str) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        raise ValidationFailed(
            f"Query parameter '{name}' is required.", code=ErrorCode.MISSING_FIELD, field=name
        )
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(
            f"Query parameter '{name}' must be an integer.", field=name
        ) from None


def _special_day_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "day": field(body, "date", str, max_length=10),
        "closed": field(body, "closed", bool, required=False, default=True),
        "intervals": body.get("intervals") or [],
        "recurring_yearly": field(body, "recurring_yearly", bool, required=False, default=False),
        "label": field(body, "label", str, required=False, default="", max_length=120),
    }


@require_GET
@login_required
def hours_page(request: HttpRequest) -> HttpResponse:
    """The coordinators' opening-hours page; 403 (an HTML page saying why) without
    ``scheduling.manage_hours``."""
    try:
        selectors.hours_access(request.user)
    except PermissionDenied:
        return render(
            request,
            "hub/forbidden.html",
            {
                "what": "opening hours",
                "why": "Only coordinators and admins can change the service's opening hours.",
            },
            status=403,
        )
    return render(
        request,
        "scheduling/hours.html",
        {"role": role_of(request.user), "time_zones": selectors.time_zone_names()},
    )


@require_GET
@staff_api
def api_hours(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"schedules": selectors.schedules_list(actor=request.user)})


@require_http_methods(["GET", "PUT", "DELETE"])
@staff_api
def api_schedule(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    if request.method == "GET":
        return JsonResponse(selectors.schedule_get(actor=request.user, query_type_code=scope))
    if request.method == "DELETE":
        services.schedule_delete(
            actor=request.user, query_type_code=scope, version=_int_param(request, "version")
        )
        return HttpResponse(status=204)
    body = parse_json_body(request)
    schedule = services.schedule_save(
        actor=request.user,
        query_type_code=scope,
        version=field(body, "version", int, minimum=0),
        time_zone=field(body, "time_zone", str, max_length=64),
        weekly=field(body, "weekly", list),
        refer_when_open=field(body, "refer_when_open", bool, required=False, default=True),
        closed_resolution_id=field(body, "closed_resolution_id", int, required=False, minimum=1),
        default_language=field(body, "default_language", str, required=False, default="en"),
        autoreplies=field(body, "autoreplies", dict, required=False, default={}),
    )
    return JsonResponse(schedule)


@require_http_methods(["GET", "POST"])
@staff_api
def api_special_days(request: HttpRequest) -> JsonResponse:
    scope = _scope(request)
    if request.method == "GET":
        days = selectors.special_days_list(actor=request.user, query_type_code=scope)
        return JsonResponse({"special_days": days})
    body = parse_json_body(request)
    day = services.special_day_create(
        actor=request.user, query_type_code=scope, **_special_day_fields(body)
    )
    return JsonResponse({"special_day": day}, status=201)


@require_http_methods(["PUT", "DELETE"])
@staff_api
def api_special_day(request: HttpRequest, special_day_id: int) -> HttpResponse:
    if request.method == "DELETE":
        services.special_day_delete(actor=request.user, special_day_id=special_day_id)
        return HttpResponse(status=204)
    body = parse_json_body(request)
    day = services.special_day_update(
        actor=request.user,
        special_day_id=special_day_id,
        version=field(body, "version", int, minimum=1),
        **_special_day_fields(body),
    )
    return JsonResponse({"special_day": day})


@require_POST
@staff_api
def api_holidays_import(request: HttpRequest) -> JsonResponse:
    body = parse_json_body(request)
    result = services.holidays_import(
        actor=request.user,
        query_type_code=_scope(request),
        country=field(body, "country", str, max_length=8),
        year=field(body, "year", int),
        subdivision=field(body, "subdivision", str, required=False, max_length=16),
        language=field(body, "language", str, required=False, max_length=16),
    )
    return JsonResponse(result, status=201)


@require_GET
@staff_api
def api_preview(request: HttpRequest) -> JsonResponse:
    raw = request.GET.get("at") or None
    at = None
    if raw is not None:
        try:
            at = datetime.fromisoformat(raw.replace(" ", "+"))
        except ValueError:
            raise ValidationFailed(
                "Query parameter 'at' must be an ISO 8601 date and time, "
                "e.g. 2026-12-24T17:30 (the schedule's time zone) or 2026-12-24T16:30Z.",
                field="at",
            ) from None
    return JsonResponse(
        selectors.hours_preview(actor=request.user, query_type_code=_scope(request), at=at)
    )


def _holidays_query(request: HttpRequest) -> dict[str, Any]:
    country = request.GET.get("country", "").strip()
    if not country:
        raise ValidationFailed(
            "Query parameter 'country' is required.", code=ErrorCode.MISSING_FIELD, field="country"
        )
    return {
        "country": country[:8],
        "year": _int_param(request, "year"),
        "subdivision": request.GET.get("subdivision", "")[:16] or None,
        "language": request.GET.get("language", "")[:16] or None,
    }


@require_GET
@staff_api
def api_holidays_preview(request: HttpRequest) -> JsonResponse:
    """What the holidays import would add (nothing is written)."""
    return JsonResponse(
        selectors.holidays_preview(
            actor=request.user, query_type_code=_scope(request), **_holidays_query(request)
        )
    )


@require_GET
@staff_api
def api_holiday_countries(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"countries": selectors.holiday_countries(actor=request.user)})
