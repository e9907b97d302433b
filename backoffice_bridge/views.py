"""HTTP transport of the back-office bridge (``/api/backoffice/…``, docs/backoffice.md).
Each view parses, lets ``staff_api`` check the login, calls one service or selector and
serializes; errors are HubErrors rendered by the hub's middleware."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice_bridge import audit, consent, selectors, services
from hub.errors import parse_json_body
from hub.exceptions import ValidationFailed
from hub.schemas import field
from hub.views import query_int, staff_api


@require_GET
@staff_api
def api_action_types(request: HttpRequest) -> JsonResponse:
    """``?conversation_id=``: with each type's eligibility for that conversation."""
    types = selectors.action_types_for(
        actor=request.user, conversation_id=request.GET.get("conversation_id") or None
    )
    return JsonResponse({"action_types": types})


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
        notify_customer=field(body, "notify_customer", bool, required=False),
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
def api_request_cancel(request: HttpRequest, request_id: int) -> JsonResponse:
    """The maker withdraws their undecided request; ``{reason?}`` (an empty body too)."""
    body = parse_json_body(request, empty_ok=True)
    cancelled = services.action_request_cancel(
        actor=request.user,
        request_id=request_id,
        reason=field(body, "reason", str, required=False, default="", max_length=2000),
    )
    return JsonResponse({"request": cancelled})


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


@require_POST
@staff_api
def api_link_refresh(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """Re-read the linked bank user (status) from the back office."""
    link = services.customer_link_refresh(actor=request.user, conversation_id=conversation_id)
    return JsonResponse({"link": link})


@require_http_methods(["GET", "POST"])
@staff_api
def api_consents(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """GET the linked customer's consents; POST ``{evidence, evidence_reference?, scope?,
    expires_at?}`` records one."""
    if request.method == "GET":
        return JsonResponse(
            selectors.consents_for_conversation(actor=request.user, conversation_id=conversation_id)
        )
    body = parse_json_body(request)
    raw_expiry = field(body, "expires_at", str, required=False, max_length=64)
    expires_at = None
    if raw_expiry is not None:
        expires_at = parse_datetime(raw_expiry)
        if expires_at is None or expires_at.tzinfo is None:
            raise ValidationFailed(
                "expires_at must be an ISO date-time with its offset.",
                field="expires_at",
                reason="not_a_date",
            )
    recorded = consent.consent_record(
        actor=request.user,
        conversation_id=conversation_id,
        evidence=field(body, "evidence", str, max_length=5000),
        evidence_reference=field(body, "evidence_reference", str, required=False, default=""),
        scope=field(body, "scope", list, required=False),
        expires_at=expires_at,
    )
    return JsonResponse({"consent": recorded}, status=201)


@require_POST
@staff_api
def api_consent_revoke(request: HttpRequest, conversation_id: str, consent_id: int) -> JsonResponse:
    body = parse_json_body(request)
    revoked = consent.consent_revoke(
        actor=request.user,
        conversation_id=conversation_id,
        consent_id=consent_id,
        reason=field(body, "reason", str, max_length=2000),
    )
    return JsonResponse({"consent": revoked})


def _audit_filters(request: HttpRequest) -> dict[str, Any]:
    return {
        "actor_id": query_int(request, "actor", None),
        "action": request.GET.get("action") or None,
        "conversation_id": request.GET.get("conversation") or None,
        "since": request.GET.get("since") or None,
        "until": request.GET.get("until") or None,
        "outcome": request.GET.get("outcome") or None,
    }


@require_GET
@staff_api
def api_audit(request: HttpRequest) -> JsonResponse:
    """``GET /api/audit/?actor=&action=&conversation=&since=&until=&outcome=&page=&page_size=``
    (admins), newest first."""
    page = audit.audit_entries_page(
        actor=request.user,
        page=query_int(request, "page", 1) or 1,
        page_size=query_int(request, "page_size", 100) or 100,
        **_audit_filters(request),
    )
    return JsonResponse(page)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@staff_api
def api_audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The same filters as ``api_audit``, every matching entry as CSV (streamed)."""
    rows = audit.audit_entries_rows(actor=request.user, **_audit_filters(request))
    first = next(rows)  # the permission check runs here, before the response starts
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(first)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response
