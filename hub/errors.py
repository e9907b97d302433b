"""HTTP transport: renders HubError (and malformed JSON bodies) as ``{code, message, data}``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse

from hub.exceptions import ErrorCode, HubError, ValidationFailed


def error_response(error: HubError) -> JsonResponse:
    return JsonResponse(error.as_dict(), status=error.status)


class HubErrorMiddleware:
    """Turns a HubError raised by any view into its JSON error response.  Sync and async
    capable, so an async view's chain stays on the event loop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, HubError):
            return error_response(exception)
        return None


def parse_json_body(request: HttpRequest, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or a precise ValidationFailed.  With
    ``empty_ok``, an empty body is ``{}`` (endpoints whose fields are all optional)."""
    if empty_ok and not request.body:
        return {}
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            f"The body is not valid JSON: {exc}", code=ErrorCode.INVALID_JSON
        ) from None
    if not isinstance(body, dict):
        raise ValidationFailed("The body must be a JSON object.", code=ErrorCode.INVALID_FRAME)
    return body
