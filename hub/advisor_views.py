"""HTTP transport for external advisors (seed 003): the admins' page ``/staff/advisors/``,
the advisors' page ``/advisor/`` and their JSON endpoints under ``/api/advisors/``.

Each view parses the request, checks the login and calls one service or selector of
``hub.advisors`` (which checks ``hub.manage_advisors`` or the advisor role and audits);
HubErrors become ``{code, message, data}`` in ``hub.errors.HubErrorMiddleware``.  The pages
are shells: their script (``hub/static/hub/advisors.js``) reads and writes through the API.
"""

from __future__ import annotations

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from hub import advisors
from hub.errors import parse_json_body
from hub.roles import PERM_MANAGE_ADVISORS, role_of
from hub.schemas import field
from hub.views import login_api, query_int

#: 401 without a login or token; the services decide who may do what.
_logged_in = login_api()


def _by_session(request: HttpRequest) -> bool:
    return getattr(request, "hub_auth", None) != "token" and hasattr(request, "session")


# --- pages ------------------------------------------------------------------------------


@require_GET
@login_required
def advisors_admin_page(request: HttpRequest) -> HttpResponse:
    """``/staff/advisors/``: the code, the advisors with access, assign, remove, create;
    403 (a page saying why) without ``hub.manage_advisors``."""
    if not request.user.has_perm(PERM_MANAGE_ADVISORS):
        return render(
            request,
            "hub/forbidden.html",
            {
                "what": "external advisors",
                "why": "Only administrators show the advisor access code and assign or remove"
                " external advisors.",
                "permission": "hub.manage_advisors",
            },
            status=403,
        )
    return render(request, "hub/advisors.html", {"role": role_of(request.user)})


@require_GET
@login_required
def advisor_portal_page(request: HttpRequest) -> HttpResponse:
    """``/advisor/``: join with a code, one's own access, leave, the read-only areas."""
    if not advisors.is_advisor(request.user):
        return render(
            request,
            "hub/forbidden.html",
            {
                "heading": "This page is for external advisors",
                "account_note": "which is not an external advisor account."
                " Staff work in the console.",
            },
            status=403,
        )
    return render(request, "hub/advisors_portal.html")


# --- the admins' API --------------------------------------------------------------------


@require_GET
@_logged_in
def api_advisors(request: HttpRequest) -> JsonResponse:
    """``GET /api/advisors/``: {code, advisors, history, temporary_hours}."""
    return JsonResponse(advisors.advisors_overview(actor=request.user))


@require_POST
@_logged_in
def api_code_rotate(request: HttpRequest) -> JsonResponse:
    """``POST /api/advisors/code/rotate/``: a new code now; the old one stops working."""
    return JsonResponse({"code": advisors.advisor_code_rotate(actor=request.user)})


@require_POST
@_logged_in
def api_accounts(request: HttpRequest) -> JsonResponse:
    """``POST /api/advisors/accounts/`` {username, password, first_name?, last_name?, email?}."""
    body = parse_json_body(request)
    advisor = advisors.advisor_account_create(
        actor=request.user,
        username=field(body, "username", str, max_length=150),
        password=field(body, "password", str, max_length=4096),
        first_name=field(body, "first_name", str, required=False, default="", max_length=150),
        last_name=field(body, "last_name", str, required=False, default="", max_length=150),
        email=field(body, "email", str, required=False, default="", max_length=254),
    )
    return JsonResponse({"advisor": advisor}, status=201)


@require_POST
@_logged_in
def api_permanent(request: HttpRequest, advisor_id: int) -> JsonResponse:
    """``POST /api/advisors/<id>/permanent/``: assign as the permanent advisor."""
    return JsonResponse(
        {"advisor": advisors.advisor_assign_permanent(actor=request.user, advisor_id=advisor_id)}
    )


@require_POST
@_logged_in
def api_remove(request: HttpRequest, advisor_id: int) -> JsonResponse:
    """``POST /api/advisors/<id>/remove/``: end the advisor's access now."""
    return JsonResponse(
        {"advisor": advisors.advisor_remove(actor=request.user, advisor_id=advisor_id)}
    )


# --- the advisors' API ------------------------------------------------------------------


@require_GET
@_logged_in
def api_me(request: HttpRequest) -> JsonResponse:
    """``GET /api/advisors/me/``: {advisor, access, areas, temporary_hours}."""
    return JsonResponse(advisors.advisor_me(actor=request.user))


@require_POST
@_logged_in
def api_join(request: HttpRequest) -> JsonResponse:
    """``POST /api/advisors/join/`` {code} → 201 {access}.  A browser session is bound to
    the access, so it ends with it."""
    body = parse_json_body(request)
    access = advisors.advisor_join(actor=request.user, code=field(body, "code", str, max_length=32))
    if _by_session(request):
        request.session[advisors.SESSION_KEY] = access["id"]
    return JsonResponse({"access": access}, status=201)


@require_POST
@_logged_in
def api_leave(request: HttpRequest) -> JsonResponse:
    """``POST /api/advisors/leave/`` → {access} (ended); the session is logged out."""
    access = advisors.advisor_leave(actor=request.user)
    if _by_session(request):
        logout(request)
    return JsonResponse({"access": access, "logged_out": True})


@require_GET
@_logged_in
def api_conversations(request: HttpRequest) -> JsonResponse:
    """``GET /api/advisors/conversations/``: {conversations, truncated} (audited)."""
    return JsonResponse(advisors.advisor_conversations_list(actor=request.user))


@require_GET
@_logged_in
def api_conversation_messages(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """``GET /api/advisors/conversations/<id>/messages/?before_id=&limit=`` (audited)."""
    return JsonResponse(
        advisors.advisor_conversation_read(
            actor=request.user,
            conversation_id=conversation_id,
            before_id=query_int(request, "before_id", None),
            limit=query_int(request, "limit", 50),
        )
    )
