"""HTTP transport of payment cases (``/api/cases/…``, docs/backoffice.md "Payment cases").

Opening a case is an action type (``payment_inquiry``, ``payment_claim``) and goes through
``POST /api/backoffice/conversations/<id>/requests/``.  These views parse, let
``case_api`` check the login, call one service or selector of ``backoffice_bridge.cases`` /
``case_selectors`` and serialize; errors are HubErrors rendered by the hub's middleware.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice_bridge import case_selectors, cases
from hub.errors import parse_json_body
from hub.roles import is_staff_member
from hub.views import login_api, query_int


def _may_use(user: Any) -> bool:
    # Back-office agents need not handle conversations: a case permission is enough.
    return is_staff_member(user) or case_selectors.may_use_cases(user)


#: 401 without a login or token; 403 for a user who is neither customer-service staff nor
#: holds a case permission.
case_api = login_api(_may_use, "Only staff and payment agents may use this API.")


def _csv(request: HttpRequest, name: str) -> list[str] | None:
    raw = request.GET.get(name, "")
    return [s.strip() for s in raw.split(",") if s.strip()] or None


@require_GET
@case_api
def api_cases(request: HttpRequest) -> JsonResponse:
    """``?view=all|opened|assigned|queue&state=open,in_progress&conversation_id=&limit=``"""
    rows = case_selectors.cases_list(
        actor=request.user,
        view=request.GET.get("view") or "all",
        states=_csv(request, "state"),
        conversation_id=request.GET.get("conversation_id") or None,
        limit=query_int(request, "limit", 200) or 200,
    )
    return JsonResponse({"cases": rows})


@require_GET
@case_api
def api_case(request: HttpRequest, case_id: int) -> JsonResponse:
    return JsonResponse({"case": case_selectors.case_get(actor=request.user, case_id=case_id)})


@require_GET
@case_api
def api_tasks(request: HttpRequest) -> JsonResponse:
    """My tasks (``?state=assigned,in_progress`` by default), or ``?view=queue``: the
    queued tasks I may take."""
    limit = query_int(request, "limit", 200) or 200
    if request.GET.get("view") == "queue":
        rows = case_selectors.case_tasks_queue(actor=request.user, limit=limit)
    else:
        rows = case_selectors.case_tasks_mine(
            actor=request.user, states=_csv(request, "state"), limit=limit
        )
    return JsonResponse({"tasks": rows})


@require_POST
@case_api
def api_task_claim(request: HttpRequest, task_id: int) -> JsonResponse:
    return JsonResponse({"case": cases.case_task_claim(actor=request.user, task_id=task_id)})


@require_POST
@case_api
def api_task_complete(request: HttpRequest, task_id: int) -> JsonResponse:
    """``{note?, customer_message?}`` (the message only with the step that resolves)."""
    body = parse_json_body(request, empty_ok=True)
    done = cases.case_task_complete(
        actor=request.user,
        task_id=task_id,
        note=body.get("note"),
        customer_message=body.get("customer_message"),
    )
    return JsonResponse({"case": done})


@require_POST
@case_api
def api_debit_approve(request: HttpRequest, task_id: int) -> JsonResponse:
    """``{note?}``"""
    body = parse_json_body(request, empty_ok=True)
    approved = cases.case_debit_approve(actor=request.user, task_id=task_id, note=body.get("note"))
    return JsonResponse({"case": approved})


@require_POST
@case_api
def api_debit_reject(request: HttpRequest, task_id: int) -> JsonResponse:
    """``{reason, customer_message?}``"""
    body = parse_json_body(request, empty_ok=True)
    rejected = cases.case_debit_reject(
        actor=request.user,
        task_id=task_id,
        reason=body.get("reason"),
        customer_message=body.get("customer_message"),
    )
    return JsonResponse({"case": rejected})


@require_http_methods(["GET", "POST"])
@case_api
def api_rules(request: HttpRequest) -> JsonResponse:
    """GET the rules in order; POST a rule (payment admins)."""
    if request.method == "GET":
        return JsonResponse({"rules": case_selectors.case_rules_list(actor=request.user)})
    rule = cases.case_rule_create(actor=request.user, data=parse_json_body(request))
    return JsonResponse({"rule": rule}, status=201)


@require_http_methods(["PUT", "DELETE"])
@case_api
def api_rule(request: HttpRequest, rule_id: int) -> JsonResponse:
    """PUT replaces the rule; DELETE removes it."""
    if request.method == "DELETE":
        return JsonResponse({"rule": cases.case_rule_delete(actor=request.user, rule_id=rule_id)})
    rule = cases.case_rule_update(
        actor=request.user, rule_id=rule_id, data=parse_json_body(request)
    )
    return JsonResponse({"rule": rule})


@require_http_methods(["GET", "POST"])
@case_api
def api_agent_accounts(request: HttpRequest, agent_id: int) -> JsonResponse:
    """GET a connector's accounts (payment admins; an agent their own); POST
    ``{bank_user_id}`` adds one."""
    if request.method == "GET":
        return JsonResponse(
            case_selectors.agent_accounts_list(actor=request.user, agent_id=agent_id)
        )
    body = parse_json_body(request)
    account = cases.agent_account_add(
        actor=request.user, agent_id=agent_id, bank_user_id=body.get("bank_user_id")
    )
    return JsonResponse({"account": account}, status=201)


@require_http_methods(["DELETE"])
@case_api
def api_agent_account(request: HttpRequest, agent_id: int, bank_user_id: str) -> JsonResponse:
    removed = cases.agent_account_remove(
        actor=request.user, agent_id=agent_id, bank_user_id=bank_user_id
    )
    return JsonResponse({"account": removed})
