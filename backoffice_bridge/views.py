"""HTTP transport of the back-office bridge (``/api/backoffice/…``, docs/backoffice.md).
Each view parses, lets ``staff_api`` check the login, calls one service or selector and
serializes; errors are HubErrors rendered by the hub's middleware."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice_bridge import selectors, services
from hub.errors import parse_json_body
from hub.schemas import field
from hub.views import query_int, staff_api


@require_GET
@staff_api
def api_action_types(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"action_types": selectors.action_types_for(actor=request.user)})


@require_GET
@staff_api
def api_bank_users(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """``GET …/bank-users/?q=&field=``: search the back office."""
    users = services.bank_users_search(
        actor=request.user,
        conversation_id=conversation_id,
        query=request.GET.get("q", ""),
        field=request.GET.get("field") or None,
    )
    return JsonResponse({"bank_users": users})


@require_http_methods(["GET", "POST", "DELETE"])
@staff_api
def api_link(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """GET the link (``null`` when none); POST ``{bank_user_id}`` links; DELETE unlinks."""
    if request.method == "GET":
        link = selectors.customer_link_get(actor=request.user, conversation_id=conversation_id)
        return JsonResponse({"link": link})
    if request.method == "DELETE":
        link = services.customer_unlink(actor=request.user, conversation_id=conversation_id)
        return JsonResponse({"link": link})
    body = parse_json_body(request)
    link = services.customer_link(
        actor=request.user,
        conversation_id=conversation_id,
        bank_user_id=field(body, "bank_user_id", str, max_length=64),
    )
    return JsonResponse({"link": link}, status=201)


@require_http_methods(["GET", "POST"])
@staff_api
def api_conversation_requests(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """GET the conversation's requests; POST ``{action_type, params}`` starts one."""
    if request.method == "GET":
        rows = selectors.action_requests_for_conversation(
            actor=request.user, conversation_id=conversation_id
        )
        return JsonResponse({"requests": rows})
    body = parse_json_body(request)
    created = services.action_request_create(
        actor=request.user,
        conversation_id=conversation_id,
        action_type=field(body, "action_type", str, max_length=64),
        params=field(body, "params", dict, required=False, default={}),
    )
    return JsonResponse({"request": created}, status=201)


@require_GET
@staff_api
def api_requests(request: HttpRequest) -> JsonResponse:
    """The checkers' list; ``?status=pending,picked`` (default), ``&limit=``."""
    raw = request.GET.get("status", "")
    statuses = [s.strip() for s in raw.split(",") if s.strip()] or None
    rows = selectors.action_requests_for_approval(
        actor=request.user, statuses=statuses, limit=query_int(request, "limit", 200) or 200
    )
    return JsonResponse({"requests": rows})


@require_GET
@staff_api
def api_request(request: HttpRequest, request_id: int) -> JsonResponse:
    return JsonResponse(
        {"request": selectors.action_request_get(actor=request.user, request_id=request_id)}
    )


@require_POST
@staff_api
def api_request_pick(request: HttpRequest, request_id: int) -> JsonResponse:
    return JsonResponse(
        {"request": services.action_request_pick(actor=request.user, request_id=request_id)}
    )


@require_POST
@staff_api
def api_request_release(request: HttpRequest, request_id: int) -> JsonResponse:
    return JsonResponse(
        {"request": services.action_request_release(actor=request.user, request_id=request_id)}
    )


@require_POST
@staff_api
def api_request_approve(request: HttpRequest, request_id: int) -> JsonResponse:
    return JsonResponse(
        {"request": services.action_request_approve(actor=request.user, request_id=request_id)}
    )


@require_POST
@staff_api
def api_request_reject(request: HttpRequest, request_id: int) -> JsonResponse:
    body = parse_json_body(request)
    rejected = services.action_request_reject(
        actor=request.user,
        request_id=request_id,
        reason=field(body, "reason", str, max_length=2000),
    )
    return JsonResponse({"request": rejected})
