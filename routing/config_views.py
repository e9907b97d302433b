"""HTTP transport for the routing configuration (the coordinators' routing page and any
other client): query types, resolution reasons, operators' skills and capacity, and the
type menu.  Each view parses the JSON body, lets ``staff_api`` check the login and calls one
function of ``routing.config``, which checks ``routing.manage_routing`` and every rule."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hub.errors import parse_json_body
from hub.schemas import field, id_list
from hub.views import staff_api
from routing import config

ETAG_MAX = 64


def _etag(payload: dict[str, Any]) -> str:
    return field(payload, "etag", str, max_length=ETAG_MAX)


def _type_fields(body: dict[str, Any], *, required: bool) -> dict[str, Any]:
    return {
        "code": field(body, "code", str, required=required, max_length=200),
        "name": field(body, "name", str, required=required, max_length=500),
        "priority": field(body, "priority", int, required=False),
        "menu_position": field(body, "menu_position", int, required=False),
        "keywords": field(body, "keywords", list, required=False),
        "is_default": field(body, "is_default", bool, required=False),
        "active": field(body, "active", bool, required=False),
    }


def _reason_fields(body: dict[str, Any], *, required: bool) -> dict[str, Any]:
    return {
        "name": field(body, "name", str, required=required, max_length=500),
        "position": field(body, "position", int, required=False),
        "active": field(body, "active", bool, required=False),
        "query_type_ids": id_list(body, "query_type_ids", required=False),
    }


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


@require_GET
@staff_api
def api_routing_config(request: HttpRequest) -> JsonResponse:
    return JsonResponse(config.routing_config_get(actor=request.user))


@require_POST
@staff_api
def api_query_types(request: HttpRequest) -> JsonResponse:
    fields = _given(_type_fields(parse_json_body(request), required=True))
    query_type = config.query_type_create(actor=request.user, **fields)
    return JsonResponse({"query_type": query_type}, status=201)


@require_http_methods(["PATCH"])
@staff_api
def api_query_type(request: HttpRequest, query_type_id: int) -> JsonResponse:
    body = parse_json_body(request)
    query_type = config.query_type_update(
        actor=request.user,
        query_type_id=query_type_id,
        etag=_etag(body),
        **_type_fields(body, required=False),
    )
    return JsonResponse({"query_type": query_type})


@require_POST
@staff_api
def api_resolutions(request: HttpRequest) -> JsonResponse:
    fields = _given(_reason_fields(parse_json_body(request), required=True))
    reason = config.resolution_create(actor=request.user, **fields)
    return JsonResponse({"resolution": reason}, status=201)


@require_http_methods(["PATCH"])
@staff_api
def api_resolution(request: HttpRequest, resolution_id: int) -> JsonResponse:
    body = parse_json_body(request)
    reason = config.resolution_update(
        actor=request.user,
        resolution_id=resolution_id,
        etag=_etag(body),
        **_reason_fields(body, required=False),
    )
    return JsonResponse({"resolution": reason})


@require_http_methods(["PATCH"])
@staff_api
def api_operator_profile(request: HttpRequest, user_id: int) -> JsonResponse:
    body = parse_json_body(request)
    operator = config.operator_skills_set(
        actor=request.user,
        user_id=user_id,
        etag=_etag(body),
        query_type_ids=id_list(body, "query_type_ids", required=False),
        capacity=field(body, "capacity", int, required=False),
    )
    return JsonResponse({"operator": operator})


@require_http_methods(["PATCH"])
@staff_api
def api_routing_menu(request: HttpRequest) -> JsonResponse:
    body = parse_json_body(request)
    settings_row = config.routing_menu_set(
        actor=request.user,
        version=field(body, "version", int, minimum=1),
        type_menu_enabled=field(body, "type_menu_enabled", bool, required=False),
        type_menu_intro=field(body, "type_menu_intro", str, required=False, max_length=2000),
    )
    return JsonResponse({"settings": settings_row})
