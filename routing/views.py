"""HTTP transport for routing: the REST twins of the console's routing frames.

Each view parses the JSON body, lets ``staff_api`` check the login and calls the same
service or selector as its frame; HubErrors become ``{code, message, data}`` in
``hub.errors.HubErrorMiddleware``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from hub.errors import parse_json_body
from hub.schemas import field
from hub.views import staff_api
from routing import selectors, services


def _target(body: dict[str, Any]) -> int | None:
    """``to_operator_id``: must be present; an explicit null means the queue (transfer) or a
    spread (derivation)."""
    return field(body, "to_operator_id", int, nullable=True, minimum=1)


def _derivation_args(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "from_operator_id": field(body, "from_operator_id", int, minimum=1),
        "to_operator_id": _target(body),
        "force": field(body, "force", bool, required=False, default=False),
    }


@require_POST
@staff_api
def api_transfer(request: HttpRequest, conversation_id: str) -> JsonResponse:
    body = parse_json_body(request)
    conversation = services.conversation_transfer(
        actor=request.user,
        conversation_id=conversation_id,
        to_operator_id=_target(body),
        note=field(body, "note", str, required=False, default="", max_length=2000),
        force=field(body, "force", bool, required=False, default=False),
    )
    return JsonResponse({"conversation": conversation})


@require_POST
@staff_api
def api_conversation_type(request: HttpRequest, conversation_id: str) -> JsonResponse:
    body = parse_json_body(request)
    conversation = services.conversation_type_set(
        actor=request.user,
        conversation_id=conversation_id,
        query_type_id=field(body, "query_type_id", int, minimum=1),
    )
    return JsonResponse({"conversation": conversation})


@require_GET
@staff_api
def api_routing_options(request: HttpRequest) -> JsonResponse:
    return JsonResponse(selectors.routing_options(actor=request.user))


@require_GET
@staff_api
def api_routing_queue(request: HttpRequest) -> JsonResponse:
    return JsonResponse(selectors.queue_waiting_for(actor=request.user))


@require_POST
@staff_api
def api_derivation_preview(request: HttpRequest) -> JsonResponse:
    body = parse_json_body(request)
    return JsonResponse(services.derivation_preview(actor=request.user, **_derivation_args(body)))


@require_POST
@staff_api
def api_derivations(request: HttpRequest) -> JsonResponse:
    body = parse_json_body(request)
    summary = services.operator_conversations_derive(
        actor=request.user,
        note=field(body, "note", str, required=False, default="", max_length=2000),
        **_derivation_args(body),
    )
    return JsonResponse({"derivation": summary}, status=201)
