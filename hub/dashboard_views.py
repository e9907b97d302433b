"""HTTP transport of the analytics dashboard: the page, its two JSON endpoints and the CSV
export.  Each view parses the query string, checks the login, and calls one selector of
``hub.dashboard`` (which checks ``hub.view_dashboard``)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from hub import dashboard
from hub.exceptions import NotAuthenticated, PermissionDenied
from hub.roles import role_of


def _period(request: HttpRequest) -> dashboard.PeriodFilter:
    return dashboard.period_parse(
        raw_from=request.GET.get("from"),
        raw_to=request.GET.get("to"),
        raw_type=request.GET.get("type"),
        raw_channel=request.GET.get("channel"),
    )


def _authenticated(request: HttpRequest) -> None:
    if not request.user.is_authenticated:
        raise NotAuthenticated()


@require_GET
@login_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    """``/dashboard/``: the page draws everything from the JSON endpoints; 403 (a page
    saying why) without ``hub.view_dashboard``."""
    try:
        dashboard.dashboard_access(request.user)
    except PermissionDenied:
        return render(
            request,
            "hub/forbidden.html",
            {
                "what": "the dashboard",
                "why": "You are not allowed to read the dashboard:"
                " it is for coordinators and admins.",
                "permission": "hub.view_dashboard",
            },
            status=403,
        )
    start, end = dashboard.default_period()
    from chat.models import Channel
    from routing.models import QueryType

    return render(
        request,
        "hub/dashboard.html",
        {
            "role": role_of(request.user),
            "default_from": start.isoformat(),
            # The picker shows the last day included; the API's ``to`` is exclusive.
            "default_to_inclusive": (end - timedelta(days=1)).isoformat(),
            "query_types": QueryType.objects.order_by("menu_position", "name").values("id", "name"),
            "channels": Channel.choices,
        },
    )


@require_GET
def api_dashboard_live(request: HttpRequest) -> JsonResponse:
    """``GET /api/dashboard/live/``: the queue, held conversations, operators' load."""
    _authenticated(request)
    return JsonResponse(dashboard.dashboard_live(actor=request.user))


@require_GET
def api_dashboard_period(request: HttpRequest) -> JsonResponse:
    """``GET /api/dashboard/period/?from=&to=&type=&channel=``: the period's figures."""
    _authenticated(request)
    dashboard.dashboard_access(request.user)
    period = _period(request)
    return JsonResponse(dashboard.dashboard_period(actor=request.user, period=period))


@require_GET
def api_dashboard_period_csv(request: HttpRequest) -> HttpResponse:
    """``GET /api/dashboard/period.csv?…``: the same figures as ``section,item,detail,value``
    rows, as a download."""
    _authenticated(request)
    dashboard.dashboard_access(request.user)
    period = _period(request)
    data = dashboard.dashboard_period(actor=request.user, period=period)
    out = io.StringIO()
    csv.writer(out).writerows(dashboard.dashboard_period_rows(data))
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"dashboard_{period.start.date().isoformat()}_{period.end.date().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
