"""HTTP transport of the hub package: health, API tokens, the landing page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from hub.auth import api_token_issue
from hub.errors import parse_json_body
from hub.exceptions import NotAuthenticated, PermissionDenied, ValidationFailed
from hub.health import channel_layer_health, database_health
from hub.roles import is_staff_member
from hub.schemas import field


@csrf_exempt
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the channel layer answer; 503 naming what is down."""
    if request.method not in ("GET", "HEAD"):
        error = {"code": "method_not_allowed", "message": "Use GET.", "data": {}}
        return JsonResponse(error, status=405)
    database = await sync_to_async(database_health)()
    layer = await channel_layer_health()
    down = [
        name for name, part in (("database", database), ("channel_layer", layer)) if not part["ok"]
    ]
    body = {
        "status": "ok" if not down else "down",
        "down": down,
        "database": database,
        "channel_layer": layer,
    }
    return JsonResponse(body, status=503 if down else 200)


@csrf_exempt
@require_POST
def token_create(request: HttpRequest) -> JsonResponse:
    """``POST /api/auth/token/`` {username, password} → {token, expires_at}."""
    body = parse_json_body(request)
    raw, token = api_token_issue(
        username=field(body, "username", str, max_length=150),
        password=field(body, "password", str, max_length=4096),
    )
    return JsonResponse(
        {"token": raw, "token_type": "Bearer", "expires_at": token.expires_at.isoformat()},
        status=201,
    )


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return redirect("/console/")


ApiView = Callable[..., HttpResponse]


def login_api(
    may_use: Callable[[Any], bool] | None = None, refusal: str = ""
) -> Callable[[ApiView], ApiView]:
    """The door of a JSON API view: 401 (``not_authenticated``) without a login or token;
    with ``may_use``, 403 (``permission_denied``, ``refusal``) for a user it turns away.
    Only who may knock: the services still decide who may do what."""

    def decorate(view: ApiView) -> ApiView:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                raise NotAuthenticated()
            if may_use is not None and not may_use(request.user):
                raise PermissionDenied(refusal)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


#: 401 without a login or token, 403 for a user who is not customer-service staff.
staff_api = login_api(is_staff_member, "Only customer-service staff may use this API.")


def query_int(request: HttpRequest, name: str, default: int | None) -> int | None:
    """An integer query-string parameter, or a precise 400 (``invalid_value``)."""
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(
            f"Query parameter '{name}' must be an integer.", field=name
        ) from None
