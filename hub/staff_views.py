"""HTTP transport of the staff pages: users and roles (``/staff/users/``), batch derivation
and scheduled absences (``/staff/derivations/``), the audit log viewer (``/staff/audit/``),
and the JSON API they are built on (``/api/staff/…``, ``/api/audit/verify/``).

Each API view parses the request, lets ``staff_api`` check the login and calls one service
or selector of ``hub.staff`` (which checks the permission); HubErrors become ``{code,
message, data}`` in ``hub.errors.HubErrorMiddleware``.  The pages are shells: their scripts
read and write through the API (and the existing derivation and audit endpoints), so the
rules live in one place.  A page refused for lack of permission is an HTML 403 saying why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hub import staff
from hub.errors import parse_json_body
from hub.exceptions import ValidationFailed
from hub.roles import PERM_BATCH_DERIVE, PERM_MANAGE_USERS, PERM_READ_AUDIT, role_of
from hub.schemas import field
from hub.views import staff_api

_FORBIDDEN = {
    PERM_MANAGE_USERS: (
        "users and roles",
        "Admins manage staff users. A coordinator may do so only when an admin has granted "
        "them user management.",
    ),
    PERM_BATCH_DERIVE: (
        "derivations and absences",
        "Only admins derive an operator's conversations in batch and plan absences.",
    ),
    PERM_READ_AUDIT: ("the audit log", "Only admins read the audit log."),
}


def _page(request: HttpRequest, perm: str, template: str, **context: Any) -> HttpResponse:
    """Render a staff page, or the 403 page naming what is missing."""
    if not request.user.has_perm(perm):
        what, why = _FORBIDDEN[perm]
        return render(request, "hub/forbidden.html", {"what": what, "why": why}, status=403)
    return render(request, template, {"role": role_of(request.user), **context})


@require_GET
@login_required
def users_page(request: HttpRequest) -> HttpResponse:
    return _page(request, PERM_MANAGE_USERS, "hub/staff_users.html")


@require_GET
@login_required
def derivations_page(request: HttpRequest) -> HttpResponse:
    return _page(request, PERM_BATCH_DERIVE, "hub/staff_derivations.html")


@require_GET
@login_required
def audit_page(request: HttpRequest) -> HttpResponse:
    return _page(request, PERM_READ_AUDIT, "hub/staff_audit.html")


# --- users -----------------------------------------------------------------------------------
def _profile_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "query_type_codes": field(body, "query_types", list, required=False),
        "capacity": field(body, "capacity", int, required=False),
    }


@require_http_methods(["GET", "POST"])
@staff_api
def api_users(request: HttpRequest) -> JsonResponse:
    """GET the users the actor manages; POST creates one."""
    if request.method == "GET":
        return JsonResponse(staff.staff_users_list(actor=request.user))
    body = parse_json_body(request)
    user = staff.staff_user_create(
        actor=request.user,
        username=field(body, "username", str, max_length=150),
        password=field(body, "password", str, max_length=4096),
        role=field(body, "role", str, max_length=40),
        first_name=field(body, "first_name", str, required=False, default="", max_length=150),
        last_name=field(body, "last_name", str, required=False, default="", max_length=150),
        email=field(body, "email", str, required=False, default="", max_length=254),
        can_manage_users=field(body, "can_manage_users", bool, required=False, default=False),
        **_profile_fields(body),
    )
    return JsonResponse({"user": user}, status=201)


@require_http_methods(["PATCH", "DELETE"])
@staff_api
def api_user(request: HttpRequest, user_id: int) -> JsonResponse:
    """PATCH changes the fields given; DELETE deletes the user."""
    if request.method == "DELETE":
        return JsonResponse(staff.staff_user_delete(actor=request.user, user_id=user_id))
    body = parse_json_body(request)
    user = staff.staff_user_update(
        actor=request.user,
        user_id=user_id,
        username=field(body, "username", str, required=False, max_length=150),
        first_name=field(body, "first_name", str, required=False, max_length=150),
        last_name=field(body, "last_name", str, required=False, max_length=150),
        email=field(body, "email", str, required=False, max_length=254),
        is_active=field(body, "is_active", bool, required=False),
        role=field(body, "role", str, required=False, max_length=40),
        can_manage_users=field(body, "can_manage_users", bool, required=False),
        **_profile_fields(body),
    )
    return JsonResponse({"user": user})


@require_POST
@staff_api
def api_user_password(request: HttpRequest, user_id: int) -> JsonResponse:
    """POST ``{password}``: the user's new password."""
    body = parse_json_body(request)
    user = staff.staff_user_password_reset(
        actor=request.user,
        user_id=user_id,
        password=field(body, "password", str, max_length=4096),
    )
    if user_id == request.user.pk and isinstance(request.user, AbstractBaseUser):
        update_session_auth_hash(request, request.user)  # stay signed in here
    return JsonResponse({"user": user})


# --- derivations and absences ----------------------------------------------------------------
@require_GET
@staff_api
def api_derivation_operators(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"operators": staff.derivation_operators(actor=request.user)})


@require_GET
@staff_api
def api_operator_conversations(request: HttpRequest, operator_id: int) -> JsonResponse:
    return JsonResponse(
        staff.operator_conversations_list(actor=request.user, operator_id=operator_id)
    )


def _moment(body: dict[str, Any], name: str) -> datetime:
    raw = field(body, name, str, max_length=64)
    try:
        parsed = parse_datetime(raw)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationFailed(
            f"'{name}' must be an ISO 8601 date and time with an offset, "
            "e.g. 2026-12-01T09:00:00+01:00.",
            field=name,
        )
    return parsed


@require_http_methods(["GET", "POST"])
@staff_api
def api_absences(request: HttpRequest) -> JsonResponse:
    """GET running, planned and recently ended absences; POST plans one."""
    if request.method == "GET":
        return JsonResponse({"absences": staff.scheduled_absences_list(actor=request.user)})
    body = parse_json_body(request)
    absence = staff.scheduled_absence_create(
        actor=request.user,
        operator_id=field(body, "operator_id", int, minimum=1),
        starts_at=_moment(body, "starts_at"),
        ends_at=_moment(body, "ends_at"),
        to_operator_id=field(body, "to_operator_id", int, required=False, minimum=1),
        reason=field(body, "reason", str, required=False, default="", max_length=200),
    )
    return JsonResponse({"absence": absence}, status=201)


@require_http_methods(["DELETE"])
@staff_api
def api_absence(request: HttpRequest, absence_id: int) -> JsonResponse:
    """DELETE cancels a planned absence or ends a running one now."""
    return JsonResponse(
        {"absence": staff.scheduled_absence_cancel(actor=request.user, absence_id=absence_id)}
    )


# --- the audit log ---------------------------------------------------------------------------
@require_GET
@staff_api
def api_audit_verify(request: HttpRequest) -> JsonResponse:
    """Walk the hash chain now: ``{ok, checked, sequence, reason, problem}``."""
    return JsonResponse(staff.audit_chain_report(actor=request.user))


@require_GET
@staff_api
def api_audit_choices(request: HttpRequest) -> JsonResponse:
    return JsonResponse(staff.audit_filter_choices(actor=request.user))
